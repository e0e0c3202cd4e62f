"""Exact resume for `Model.fit(..., checkpoint_dir=..., resume=True, checkpoint_every=...)`.

`TrainingCheckpoint` is a callback that saves the full training state (see
`ember/train/checkpoint.py`) every N optimizer steps or at every epoch end, and whose `begin`
restores the newest checkpoint before fit's loop starts. After `begin`, the loop runs from the
returned epoch and step: a DataLoader source has been told (`load_state_dict`) to yield only
the rest of the interrupted epoch, and array data come back wrapped so that their first pass
does the same. Every RNG is where it was when the checkpoint was taken, so the continued run
draws the same dropout masks and shuffles as an uninterrupted one: bit for bit on CPU.

A save that falls on the last step of an epoch is taken at the epoch's end instead, after
validation and History saw the epoch, so a resumed run never repeats or skips epoch-end work.
"""
from __future__ import annotations

from itertools import islice

from ember import random as ember_random
from ember._core.errors import EmberError
from ember.train.callbacks import Callback, LearningRateScheduler
from ember.train.checkpoint import Checkpointer, training_state

_PLAIN = (type(None), bool, int, float, str)


class TrainingCheckpoint(Callback):
    """Save the training state to `directory` every `every` steps (an int) or at every epoch
    end ('epoch'), keeping the newest `keep_last`. `fit(checkpoint_dir=...)` creates one; it
    also works by hand: `source, epoch, step = callback.begin(model, source)`, then
    `fit(source, initial_epoch=epoch, callbacks=[callback])`.

    Saved along with the model: its optimizer, `schedulers` and the lr_scheduler of any
    `LearningRateScheduler` callback, every RNG, the data position, the running metrics of the
    epoch and History.

    >>> import tempfile
    >>> TrainingCheckpoint(tempfile.mkdtemp(), every=100).every
    100
    """

    def __init__(self, directory, every="epoch", keep_last: int | None = 3, schedulers=()):
        super().__init__()
        if every != "epoch" and (isinstance(every, bool) or not isinstance(every, int)
                                 or every < 1):
            raise EmberError(f"checkpoint_every must be 'epoch' or a positive number of steps, "
                             f"got {every!r}")
        self.checkpointer = Checkpointer(directory, keep_last)
        self.every = every
        self.schedulers = list(schedulers)
        self.source = None
        self.history = None
        self.epoch = self.step = self.global_step = 0
        self._resumed = None  # the restored state until the loop has consumed it
        self._epoch_rng = None  # ember's RNG at the start of an epoch over arrays
        self._save_at_epoch_end = False

    # ---- before the loop ---------------------------------------------------------------------
    def begin(self, model, source, history=None, callbacks=(), resume: bool = True,
              initial_epoch: int = 0):
        """Attach to fit's model, data source and History; with `resume`, restore the newest
        intact checkpoint. Returns `(source, epoch, step)`: iterate that source from that epoch,
        numbering steps from `step` (it yields only the rest of the epoch). Without a
        checkpoint: `(source, initial_epoch, 0)`. Call after the optimizer exists."""
        self.set_model(model)
        self.source, self.history = source, history
        self.schedulers += [callback.schedule for callback in callbacks or ()
                            if isinstance(callback, LearningRateScheduler)
                            and callback._is_scheduler()]
        kind = _source_kind(source)
        if self.every != "epoch" and kind == "other":
            raise EmberError(f"checkpoint_every={self.every} (mid-epoch checkpoints) needs data "
                             f"whose position can be restored: arrays, a Dataset or a "
                             f"DataLoader, not a {type(source).__name__}; use "
                             f"checkpoint_every='epoch'")
        if not resume:
            if self.checkpointer.checkpoints():
                raise EmberError(f"fit: {self.checkpointer.directory} already holds checkpoints "
                                 f"from an earlier run; pass resume=True to continue it, or "
                                 f"choose an empty checkpoint_dir")
            self.epoch = initial_epoch
            return source, initial_epoch, 0
        loader = source if kind == "loader" else None
        state = self.checkpointer.restore(model, None, self.schedulers, loader)
        if state is None:
            self.epoch = initial_epoch
            return source, initial_epoch, 0
        self.epoch, self.step = state["epoch"], state["step_in_epoch"]
        self.global_step = state["global_step"]
        self._resumed = state
        if kind == "arrays" and self.step:
            self._epoch_rng = state["extra"]["epoch_rng"]
            source = _ResumedArrays(source, self._epoch_rng, self.step)
        return source, self.epoch, self.step

    # ---- events ------------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        # After History.on_train_begin (this callback comes last), which empties `epoch`.
        saved = self._resumed["history"] if self._resumed else None
        if saved is not None and self.history is not None:
            self.history.history = {key: list(values) for key, values in saved["history"].items()}
            self.history.epoch = list(saved["epoch"])

    def on_epoch_begin(self, epoch, logs=None):
        resumed, self._resumed = self._resumed, None
        if resumed is not None and resumed["step_in_epoch"] and epoch == resumed["epoch"]:
            # The running loss and metrics of the interrupted epoch: the loop skips its reset
            # for this epoch, and putting them back here is harmless after one.
            _load_metrics(self.model, resumed["extra"].get("metrics", []))
            return
        self.epoch, self.step = epoch, 0
        if _source_kind(self.source) == "arrays":
            self._epoch_rng = ember_random.default_generator.get_state()  # before the shuffle

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        self.global_step += 1
        if self.every == "epoch" or self.global_step % self.every:
            return
        if self.step == self.params.get("steps"):
            self._save_at_epoch_end = True
        else:
            self._save(self.epoch, self.step, mid_epoch=True)

    def on_epoch_end(self, epoch, logs=None):
        due, self._save_at_epoch_end = self._save_at_epoch_end or self.every == "epoch", False
        steps = self.params.get("steps")
        finished = self.step == steps if steps is not None else not self.model.stop_training
        if due and finished:  # a stop mid-epoch keeps the last mid-epoch checkpoint instead
            self._save(epoch + 1, 0, mid_epoch=False, logs=(epoch, logs))

    # ---- saving ------------------------------------------------------------------------------
    def _save(self, epoch: int, step: int, mid_epoch: bool, logs=None):
        extra = {"metrics": _metric_states(self.model) if mid_epoch else []}
        if _source_kind(self.source) == "arrays" and mid_epoch:
            extra["epoch_rng"] = self._epoch_rng
        state = training_state(self.model, None, self.schedulers, None, epoch=epoch,
                               step_in_epoch=step, global_step=self.global_step,
                               history=None, extra=extra)
        state["history"] = self._history_state(logs)
        if _source_kind(self.source) == "loader":
            state["loader"] = self.source.state_dict() if mid_epoch else \
                _next_epoch_state(self.source)
        self.checkpointer.save(state)

    def _history_state(self, logs):
        if self.history is None:
            return None
        history = {key: list(values) for key, values in self.history.history.items()}
        epochs = list(self.history.epoch)
        if logs is not None and epochs[-1:] != [logs[0]]:
            # History comes after this callback (a hand-made callback list): add the epoch.
            epochs.append(logs[0])
            for key, value in (logs[1] or {}).items():
                history.setdefault(key, []).append(value)
        return {"history": history, "epoch": epochs}


# ---- data sources ----------------------------------------------------------------------------
def _source_kind(source) -> str:
    from ember.train.loop import ArrayBatches  # the loop imports this module

    if isinstance(source, (ArrayBatches, _ResumedArrays)):
        return "arrays"
    if hasattr(source, "state_dict") and hasattr(source, "load_state_dict"):
        return "loader"
    return "other"


def _next_epoch_state(loader) -> dict:
    """The loader's state for a fresh next epoch. fit stops drawing at the epoch's step count
    without asking the loader for one batch more, so the loader may still call the finished
    epoch unfinished; its epoch-start state (the generator as it now is) starts the next."""
    state = loader.state_dict()
    if state["batches_yielded"] == 0:
        return state
    return {"epoch_start": loader._epoch_start_state(), "batches_yielded": 0}


class _ResumedArrays:
    """fit's array batches whose first pass continues an interrupted epoch: the epoch's
    shuffle is replayed from the RNG state it started with, the first `skip` batches are
    dropped, and the RNG is put back where the checkpoint left it."""

    def __init__(self, arrays, epoch_rng: dict, skip: int):
        self.arrays = arrays
        self._pending = (epoch_rng, skip)

    def __len__(self):
        return len(self.arrays)

    def __iter__(self):
        if self._pending is None:
            return iter(self.arrays)
        pending, self._pending = self._pending, None
        return self._rest_of_epoch(*pending)

    def _rest_of_epoch(self, epoch_rng, skip):
        generator = ember_random.default_generator
        resumed = generator.get_state()
        generator.set_state(epoch_rng)
        batches = iter(self.arrays)
        for _ in islice(batches, skip):  # the first draw also shuffles the epoch
            pass
        generator.set_state(resumed)
        yield from batches


# ---- running metrics -------------------------------------------------------------------------
def _plain(value) -> bool:
    import numpy as np

    if isinstance(value, (list, tuple)):
        return all(_plain(item) for item in value)
    return isinstance(value, (*_PLAIN, np.ndarray, np.generic))


def _metric_states(model) -> list:
    """Each tracked metric's plain attributes (totals, counts, confusion arrays)."""
    return [{key: value for key, value in vars(metric).items() if _plain(value)}
            for metric in getattr(model, "metrics", [])]


def _load_metrics(model, states: list):
    for metric, state in zip(getattr(model, "metrics", []), states):
        if state.get("name", getattr(metric, "name", None)) == getattr(metric, "name", None):
            vars(metric).update(state)
