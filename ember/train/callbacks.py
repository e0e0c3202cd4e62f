"""Callbacks: objects `fit`, `evaluate` and `predict` call at fixed points of the loop.

Event order (what `CallbackList` guarantees, and what tests record with a LambdaCallback)::

    fit:       on_train_begin
                 per epoch: on_epoch_begin(epoch)
                              per step: on_train_batch_begin(step), on_train_batch_end(step, logs)
                              [validation: on_test_begin, on_test_batch_begin/end..., on_test_end]
                            on_epoch_end(epoch, logs)   # logs hold the val_ entries and 'lr'
               on_train_end(logs)
    evaluate:  on_test_begin, on_test_batch_begin/end per step, on_test_end(logs)
    predict:   on_predict_begin, on_predict_batch_begin/end per step, on_predict_end

Within one event, callbacks run in list order: the progress bar first, then the user's
callbacks as given, then History (as Keras orders them). Epochs and steps count from 0;
`ModelCheckpoint` formats `{epoch}` from 1 like Keras. A callback stops training by setting
`model.stop_training = True`; the loop finishes the current step, then the epoch.
"""
from __future__ import annotations

import math
import os
import warnings

import numpy as np

from ember._core.errors import EmberError
from ember._core.tensor import Tensor

EVENTS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
          "on_train_batch_begin", "on_train_batch_end", "on_test_begin", "on_test_end",
          "on_test_batch_begin", "on_test_batch_end", "on_predict_begin", "on_predict_end",
          "on_predict_batch_begin", "on_predict_batch_end")


class Callback:
    """Base class: override the events you need; `self.model` and `self.params` (epochs,
    steps, verbose) are set before `on_train_begin`."""

    def __init__(self):
        self.model = None
        self.params: dict = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params: dict):
        self.params = params

    def on_train_begin(self, logs=None): ...
    def on_train_end(self, logs=None): ...
    def on_epoch_begin(self, epoch, logs=None): ...
    def on_epoch_end(self, epoch, logs=None): ...
    def on_train_batch_begin(self, batch, logs=None): ...
    def on_train_batch_end(self, batch, logs=None): ...
    def on_test_begin(self, logs=None): ...
    def on_test_end(self, logs=None): ...
    def on_test_batch_begin(self, batch, logs=None): ...
    def on_test_batch_end(self, batch, logs=None): ...
    def on_predict_begin(self, logs=None): ...
    def on_predict_end(self, logs=None): ...
    def on_predict_batch_begin(self, batch, logs=None): ...
    def on_predict_batch_end(self, batch, logs=None): ...


class CallbackList:
    """Callbacks called together, in order (see the module docstring for the event order)."""

    def __init__(self, callbacks=None, model=None, params: dict | None = None):
        self.callbacks = list(callbacks or [])
        for callback in self.callbacks:
            if not isinstance(callback, Callback):
                raise EmberError(f"callbacks must be ember.train.Callback objects, got "
                                 f"{type(callback).__name__}")
            callback.set_model(model)
            callback.set_params(dict(params or {}))

    def __iter__(self):
        return iter(self.callbacks)

    def __getattr__(self, event):
        if event not in EVENTS:
            raise AttributeError(f"'CallbackList' object has no attribute '{event}'")

        def call(*args):
            for callback in self.callbacks:
                getattr(callback, event)(*args)
        return call


class LambdaCallback(Callback):
    """A callback from functions, one per event: `LambdaCallback(on_epoch_end=fn)`, with the
    event's arguments (`fn(epoch, logs)`, `fn(batch, logs)` or `fn(logs)`).

    >>> seen = []
    >>> callback = LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(epoch))
    >>> callback.on_epoch_end(0, {})
    >>> seen
    [0]
    """

    def __init__(self, **functions):
        super().__init__()
        for event, function in functions.items():
            if event not in EVENTS:
                raise EmberError(f"LambdaCallback: unknown event {event!r}; expected one of "
                                 f"{', '.join(EVENTS)}")
            setattr(self, event, function)


def _resolve_mode(owner: str, mode: str, monitor: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise EmberError(f"{owner}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode != "auto":
        return mode
    higher_is_better = ("acc", "auc", "precision", "recall", "f1")
    return "max" if any(word in monitor for word in higher_is_better) else "min"


class _Monitor(Callback):
    """Shared by the callbacks that watch one logged value for improvement."""

    def __init__(self, owner: str, monitor: str, mode: str, min_delta: float):
        super().__init__()
        self.monitor = monitor
        self.mode = _resolve_mode(owner, mode, monitor)
        self.min_delta = abs(min_delta)

    def _improved(self, current: float, reference: float) -> bool:
        if self.mode == "min":
            return current < reference - self.min_delta
        return current > reference + self.min_delta

    def _worst(self) -> float:
        return math.inf if self.mode == "min" else -math.inf

    def _current(self, logs) -> float | None:
        value = (logs or {}).get(self.monitor)
        if value is None:
            warnings.warn(f"{type(self).__name__}: '{self.monitor}' is not in the logs "
                          f"(available: {', '.join(sorted(logs or {}))}); skipping",
                          stacklevel=3)
            return None
        return float(value)


def _snapshot(model) -> dict:
    """Copies of every state-dict entry (on their devices): a best-weights snapshot."""
    return {name: Tensor(value._data.copy(), value.device)
            for name, value in model.state_dict().items()}


class EarlyStopping(_Monitor):
    """Stop when `monitor` has not improved by more than `min_delta` for `patience` epochs.
    `baseline`: the value must beat it or training stops after `patience` epochs;
    `start_from_epoch`: epochs of warm-up not watched. With `restore_best_weights` the model
    gets the best epoch's weights back when training ends.

    >>> EarlyStopping(monitor='val_accuracy').mode
    'max'
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline: float | None = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0):
        super().__init__("EarlyStopping", monitor, mode, min_delta)
        self.patience = patience
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = self._worst()
        self.best_epoch = 0
        self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        current = self._current(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        self.wait += 1
        if self._improved(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = _snapshot(self.model)
            if self.baseline is None or self._improved(current, self.baseline):
                self.wait = 0
                return
        # Improving without beating the baseline still counts toward patience: the documented
        # meaning of `baseline` (Keras's code returns early here and never stops such a run).
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print(f"Restoring model weights from the end of epoch {self.best_epoch + 1}")
            self.model.load_state_dict(self.best_weights)


class ModelCheckpoint(_Monitor):
    """Save the model's weights (or, with `save_weights_only=False`, the whole model) as
    checksummed safetensors (`ember.io`) after every epoch, or only when `monitor` improves
    (`save_best_only`). `filepath` may hold `{epoch}` (from 1) and any logged value,
    e.g. 'ckpt-{epoch:02d}-{val_loss:.3f}.safetensors'. Each file is written to a temporary
    file in the same folder, fsynced, then renamed over the target: a crash mid-save leaves
    the previous checkpoint intact.

    >>> ModelCheckpoint('best-{epoch:02d}.safetensors', save_best_only=True).monitor
    'val_loss'
    """

    def __init__(self, filepath, monitor: str = "val_loss", verbose: int = 0,
                 save_best_only: bool = False, mode: str = "auto",
                 save_weights_only: bool = True, initial_value_threshold: float | None = None):
        super().__init__("ModelCheckpoint", monitor, mode, 0.0)
        self.save_weights_only = save_weights_only
        self.filepath = os.fspath(filepath)
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.best = self._worst() if initial_value_threshold is None else initial_value_threshold

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            current = self._current(logs)
            if current is None or not self._improved(current, self.best):
                return
            if self.verbose:
                print(f"Epoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to "
                      f"{current:.5f}")
            self.best = current
        path = self.filepath.format(epoch=epoch + 1, **logs)
        from ember.io import save_model, save_weights  # ember.io builds on the layers

        if self.save_weights_only:
            save_weights(self.model, path)
        else:
            save_model(self.model, path)


def _optimizer(callback: Callback):
    optimizer = getattr(callback.model, "optimizer", None)
    if optimizer is None or not hasattr(optimizer, "param_groups"):
        raise EmberError(f"{type(callback).__name__} needs a compiled optimizer; call "
                         f"model.compile(optimizer=...) before fit")
    return optimizer


class ReduceLROnPlateau(_Monitor):
    """Multiply every parameter group's lr by `factor` when `monitor` has not improved by more
    than `min_delta` for `patience` epochs, then wait `cooldown` epochs; never below `min_lr`.

    Keras's counting (reduce once `patience` epochs in a row failed to improve), which is one
    epoch earlier than `ember.optim.lr_scheduler.ReduceLROnPlateau` (PyTorch's, reducing after
    more than `patience`): the callback keeps the semantics Keras code was tuned for.

    >>> ReduceLROnPlateau(monitor='val_accuracy', factor=0.5, patience=3).mode
    'max'
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 verbose: int = 0, mode: str = "auto", min_delta: float = 1e-4,
                 cooldown: int = 0, min_lr: float = 0.0):
        super().__init__("ReduceLROnPlateau", monitor, mode, min_delta)
        if not 0 < factor < 1:
            raise EmberError(f"ReduceLROnPlateau: factor must be in (0, 1), got {factor!r}")
        self.factor, self.patience, self.verbose = factor, patience, verbose
        self.cooldown, self.min_lr = cooldown, min_lr

    def on_train_begin(self, logs=None):
        self.best = self._worst()
        self.wait = 0
        self.cooldown_counter = 0

    def on_epoch_end(self, epoch, logs=None):
        current = self._current(logs)
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(current, self.best):
            self.best, self.wait = current, 0
        elif self.cooldown_counter == 0:
            self.wait += 1
            if self.wait >= self.patience:
                self._reduce(epoch)
                self.cooldown_counter = self.cooldown
                self.wait = 0

    def _reduce(self, epoch):
        for group in _optimizer(self).param_groups:
            if group["lr"] > self.min_lr:
                group["lr"] = max(group["lr"] * self.factor, self.min_lr)
                if self.verbose:
                    print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing lr to {group['lr']:g}")


class LearningRateScheduler(Callback):
    """Set the lr each epoch: `schedule(epoch, lr) -> new lr` (called at the start of every
    epoch, epochs from 0, applied to every parameter group), or an
    `ember.optim.lr_scheduler` object on the compiled optimizer, stepped after every epoch.

    >>> callback = LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1))
    """

    def __init__(self, schedule, verbose: int = 0):
        super().__init__()
        self.schedule = schedule
        self.verbose = verbose

    def _is_scheduler(self) -> bool:
        return hasattr(self.schedule, "step") and hasattr(self.schedule, "optimizer")

    def on_train_begin(self, logs=None):
        if self._is_scheduler() and self.schedule.optimizer is not _optimizer(self):
            raise EmberError("LearningRateScheduler: the lr_scheduler steps a different "
                             "optimizer than the model's compiled one")

    def on_epoch_begin(self, epoch, logs=None):
        if self._is_scheduler():
            return
        optimizer = _optimizer(self)
        lr = float(self.schedule(epoch, float(optimizer.param_groups[0]["lr"])))
        if not math.isfinite(lr):
            raise EmberError(f"LearningRateScheduler: schedule returned lr={lr} at epoch {epoch}")
        for group in optimizer.param_groups:
            group["lr"] = lr
        if self.verbose:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting lr to {lr:g}")

    def on_epoch_end(self, epoch, logs=None):
        if self._is_scheduler():
            self.schedule.step()


class CSVLogger(Callback):
    """Append one row per epoch to a CSV file: 'epoch' then the logged values (sorted by
    name); `append=True` continues an existing file without a second header.

    >>> CSVLogger('training.csv', append=True).separator
    ','
    """

    def __init__(self, filename, separator: str = ",", append: bool = False):
        super().__init__()
        self.filename = os.fspath(filename)
        self.separator = separator
        self.append = append
        self.keys = None
        self.file = None

    def on_train_begin(self, logs=None):
        has_rows = self.append and os.path.exists(self.filename) and \
            os.path.getsize(self.filename) > 0
        self.keys = None
        self._write_header = not has_rows
        self.file = open(self.filename, "a" if self.append else "w", encoding="utf-8")

    def on_epoch_end(self, epoch, logs=None):
        logs = {key: value for key, value in (logs or {}).items() if np.ndim(value) == 0}
        if self.keys is None:
            self.keys = sorted(logs)
            if self._write_header:
                self.file.write(self.separator.join(["epoch", *self.keys]) + "\n")
        row = [str(epoch)] + [repr(float(logs[key])) if key in logs else "NA"
                              for key in self.keys]
        self.file.write(self.separator.join(row) + "\n")
        self.file.flush()

    def on_train_end(self, logs=None):
        if self.file is not None:
            self.file.close()
            self.file = None


class TerminateOnNaN(Callback):
    """Stop training as soon as a batch's loss is NaN or infinite (after that batch).

    >>> class FakeModel: stop_training = False
    >>> callback = TerminateOnNaN(); callback.set_model(FakeModel())
    >>> callback.on_train_batch_end(0, {'loss': float('nan')})
    Batch 0: invalid loss nan, terminating training
    >>> callback.model.stop_training
    True
    """

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            print(f"Batch {batch}: invalid loss {loss}, terminating training")
            self.model.stop_training = True


# Defined in their own modules (they subclass Callback); re-exported here so every callback
# is reachable as ember.train.callbacks.X. ember/train/__init__.py imports this module first.
from ember.train.history import History  # noqa: E402
from ember.train.progress import ProgressBar  # noqa: E402

__all__ = ["Callback", "CallbackList", "CSVLogger", "EarlyStopping",
           "History", "LambdaCallback", "LearningRateScheduler", "ModelCheckpoint",
           "ProgressBar", "ReduceLROnPlateau", "TerminateOnNaN"]
