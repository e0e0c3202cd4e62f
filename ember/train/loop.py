"""The `fit` / `evaluate` / `predict` loops: thin loops over `model.train_step(batch) -> logs`,
`model.test_step(batch) -> logs` and `model.predict_step(batch) -> outputs`, with callbacks.

Data arrive as NumPy arrays or Tensors (x may be a tuple of them for a multi-input model), an
`ember.data.Dataset` (batched by `ember.data.DataLoader`), a `DataLoader`, or any iterable of
batches. Every source becomes the same batches: tuples `(x, y, sample_weight)` of Tensors on
the model's device (y and sample_weight may be None), which is what `train_step` receives.
"""
from __future__ import annotations

import itertools
import math
import warnings

import numpy as np

from ember._core.autograd import no_grad
from ember._core.device import CPU
from ember._core.errors import EmberError, ShapeError
from ember._core.tensor import Tensor
from ember.train.callbacks import CallbackList
from ember.train.history import History
from ember.train.metrics import host_array
from ember.train.progress import ProgressBar, resolve_verbose
from ember.train.resume import TrainingCheckpoint


# ---- data ------------------------------------------------------------------------------------
def _is_array(value) -> bool:
    """An array-like of samples (a list of (x, y) pairs is an iterable of batches instead)."""
    if isinstance(value, list):
        return not value or not isinstance(value[0], (tuple, dict))
    return isinstance(value, (np.ndarray, Tensor)) or np.isscalar(value)


def _as_host(value, what: str):
    """Arrays on the host (a tuple: one per model input); float64 data become float32
    (ember's default float), as Keras does."""
    if isinstance(value, tuple):
        return tuple(_as_host(part, what) for part in value)
    array = host_array(value)
    if array.ndim == 0:
        raise ShapeError(f"{what} must have a batch axis, got a scalar")
    return array.astype(np.float32) if array.dtype == np.float64 else array


def _length(value) -> int:
    return len(value[0]) if isinstance(value, tuple) else len(value)


def _take(value, index):
    return tuple(part[index] for part in value) if isinstance(value, tuple) else value[index]


class ArrayBatches:
    """Batches of in-memory arrays; shuffled each epoch by ember's global generator, so
    `ember.manual_seed` makes the order reproducible."""

    def __init__(self, x, y=None, sample_weight=None, batch_size: int = 32,
                 shuffle: bool = False):
        self.x = _as_host(x, "x")
        self.y = None if y is None else _as_host(y, "y")
        self.sample_weight = None if sample_weight is None else _as_host(sample_weight,
                                                                         "sample_weight")
        self.size = _length(self.x)
        for name, value in (("y", self.y), ("sample_weight", self.sample_weight)):
            if value is not None and _length(value) != self.size:
                raise ShapeError(f"fit: x has {self.size} samples but {name} has "
                                 f"{_length(value)}")
        self.batch_size, self.shuffle = batch_size, shuffle

    def __len__(self):
        return math.ceil(self.size / self.batch_size)

    def split(self, fraction: float) -> tuple[ArrayBatches, ArrayBatches]:
        """(train, validation): the last `fraction` of the samples is held out, taken before
        any shuffling (Keras's validation_split)."""
        cut = int(math.floor(self.size * (1.0 - fraction)))
        if cut <= 0 or cut >= self.size:
            raise EmberError(f"validation_split={fraction} of {self.size} samples leaves no "
                             f"training or no validation samples")

        def part(index):
            return ArrayBatches(_take(self.x, index),
                                None if self.y is None else _take(self.y, index),
                                None if self.sample_weight is None
                                else _take(self.sample_weight, index),
                                self.batch_size, self.shuffle)
        return part(slice(0, cut)), part(slice(cut, None))

    def first_x(self):
        return _take(self.x, slice(0, self.batch_size))

    def __iter__(self):
        if self.shuffle:
            from ember.random import default_generator

            order = default_generator.permutation(self.size).numpy()
        else:
            order = None
        for start in range(0, self.size, self.batch_size):
            index = slice(start, start + self.batch_size) if order is None else \
                order[start:start + self.batch_size]
            yield tuple(None if value is None else _take(value, index)
                        for value in (self.x, self.y, self.sample_weight))


def _data_loader(dataset, batch_size: int, shuffle: bool):
    try:
        from ember.data import DataLoader
    except ImportError as error:
        raise EmberError("fit on a Dataset needs ember.data.DataLoader") from error
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle)


def adapt(x, y=None, sample_weight=None, batch_size=32, shuffle=False, what="fit"):
    """Batches from arrays, a Dataset, a DataLoader or an iterable of batches."""
    if batch_size is None or int(batch_size) <= 0:
        raise EmberError(f"{what}: batch_size must be a positive integer, got {batch_size!r}")
    if isinstance(x, ArrayBatches):
        return x
    if _is_array(x) or (isinstance(x, tuple) and x and _is_array(x[0])):
        return ArrayBatches(x, y, sample_weight, int(batch_size), shuffle)
    if y is not None or sample_weight is not None:
        raise EmberError(f"{what}: y and sample_weight are only accepted with array inputs; "
                         f"a {type(x).__name__} yields its own targets")
    if hasattr(x, "__getitem__") and hasattr(x, "__len__") and not hasattr(x, "batch_size"):
        return _data_loader(x, int(batch_size), shuffle)  # a map-style Dataset
    if hasattr(x, "__iter__"):
        return x  # a DataLoader, an IterableDataset of batches, a generator
    raise EmberError(f"{what}: cannot read data from a {type(x).__name__}; pass NumPy arrays, "
                     f"Tensors, an ember.data.Dataset or a DataLoader")


def _unpack(batch):
    """(x, y, sample_weight) from a batch: a tuple/list of 1-3 items or a bare x."""
    if isinstance(batch, (tuple, list)):
        if len(batch) == 1:
            return batch[0], None, None
        if len(batch) == 2:
            return batch[0], batch[1], None
        if len(batch) == 3:
            return tuple(batch)
        raise EmberError(f"a batch must be x, (x, y) or (x, y, sample_weight); got "
                         f"{len(batch)} items")
    return batch, None, None


def _to_device(value, device):
    if value is None:
        return None
    if isinstance(value, tuple):
        return tuple(_to_device(part, device) for part in value)
    if isinstance(value, dict):
        return {key: _to_device(part, device) for key, part in value.items()}
    if not isinstance(value, Tensor):
        array = np.asarray(value)
        value = Tensor(array.astype(np.float32) if array.dtype == np.float64 else array, CPU)
    return value if value.device == device else value.to(device)


def _class_weights(y, class_weight: dict) -> np.ndarray:
    labels = host_array(y)
    if labels.ndim >= 2 and labels.shape[-1] > 1:
        labels = labels.argmax(axis=-1)  # one-hot rows
    elif labels.dtype.kind == "f":
        labels = np.rint(labels)  # 0/1 targets of a binary classifier
    labels = labels.reshape(len(labels), -1)[:, 0].astype(np.int64)
    missing = set(np.unique(labels).tolist()) - set(class_weight)
    if missing:
        raise EmberError(f"class_weight has no entry for class(es) {sorted(missing)}")
    return np.array([class_weight[label] for label in labels.tolist()], np.float32)


def batches(source, device, class_weight=None, steps=None):
    """Device-ready (x, y, sample_weight) batches of one epoch, at most `steps` of them."""
    # islice stops before drawing batch `steps`, so a generator resumes there next epoch.
    for batch in itertools.islice(source, steps):
        x, y, sample_weight = _unpack(batch)
        if class_weight is not None:
            if y is None:
                raise EmberError("class_weight needs targets y")
            weights = _class_weights(y, class_weight)
            sample_weight = weights if sample_weight is None else \
                host_array(sample_weight) * weights
        yield _to_device(x, device), _to_device(y, device), _to_device(sample_weight, device)


def _steps(source, steps):
    if steps is not None:
        return int(steps)
    return len(source) if hasattr(source, "__len__") else None


def scalars(logs) -> dict:
    """Logs with Tensors and NumPy scalars turned into Python numbers."""
    out = {}
    for key, value in (logs or {}).items():
        if isinstance(value, Tensor):
            value = value.detach().cpu().numpy()
        if np.ndim(value) == 0:
            value = float(value)
        out[key] = value
    return out


def _callbacks(model, callbacks, verbose: int, params: dict, history=None,
               last=()) -> CallbackList:
    user = list(callbacks or [])
    default = [] if verbose == 0 or any(isinstance(c, ProgressBar) for c in user) else \
        [ProgressBar(verbose)]
    # `last` (the training checkpoint) runs after History, so a save includes the epoch.
    return CallbackList(default + user + ([history] if history is not None else [])
                        + list(last), model=model, params=params)


# ---- loops -----------------------------------------------------------------------------------
def fit(model, x=None, y=None, batch_size=32, epochs=1, verbose="auto", callbacks=None,
        validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
        sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_batch_size=None,
        checkpoint_dir=None, resume=False, checkpoint_every="epoch", keep_checkpoints=3):
    """Train `model` (see `ember.Model.fit`); returns a History."""
    if x is None:
        raise EmberError("fit needs training data x")
    verbose = resolve_verbose(verbose)
    train = adapt(x, y, sample_weight, batch_size, shuffle)
    if validation_split and validation_data is None:
        if not isinstance(train, ArrayBatches):
            raise EmberError("validation_split works on arrays only; pass validation_data "
                             "for a Dataset or DataLoader")
        train, validation = train.split(validation_split)
        validation.shuffle = False
    elif validation_data is not None:
        validation = _validation_source(validation_data, validation_batch_size or batch_size)
    else:
        validation = None
    device = model._device()
    model._prepare_fit(lambda: _first_x(train, device))
    steps = _steps(train, steps_per_epoch)
    history = History()
    initial_step, last = 0, []
    if checkpoint_dir is not None:
        # After _prepare_fit: the optimizer exists, and a peeked batch cannot move the data.
        last = [TrainingCheckpoint(checkpoint_dir, checkpoint_every, keep_checkpoints)]
        train, initial_epoch, initial_step = last[0].begin(model, train, history, callbacks,
                                                           resume, initial_epoch)
    callback_list = _callbacks(model, callbacks, verbose, {"epochs": epochs, "steps": steps,
                                                           "verbose": verbose}, history, last)
    model.stop_training = False
    callback_list.on_train_begin({})
    logs: dict = {}
    for epoch in range(initial_epoch, epochs):
        first_step = initial_step if epoch == initial_epoch else 0  # > 0: resumed mid-epoch
        if first_step == 0:
            model.reset_metrics()
        model.train()
        callback_list.on_epoch_begin(epoch, {})
        lr = model._current_lr()
        remaining = None if steps is None else steps - first_step
        for step, batch in enumerate(batches(train, device, class_weight, remaining),
                                     start=first_step):
            if step == first_step:
                model._note_input(batch[0])
            callback_list.on_train_batch_begin(step, {})
            logs = scalars(model.train_step(batch))
            callback_list.on_train_batch_end(step, logs)
            if model.stop_training:
                break
        epoch_logs = dict(logs)
        lr = lr if lr is not None else model._current_lr()  # an optimizer made in step 0
        if lr is not None:
            epoch_logs["lr"] = lr
        if validation is not None:
            val_logs = _run_test(model, validation, device, callback_list)
            epoch_logs.update({f"val_{key}": value for key, value in val_logs.items()})
        callback_list.on_epoch_end(epoch, epoch_logs)
        logs = epoch_logs
        if model.stop_training:
            break
    callback_list.on_train_end(logs)
    return history


def _first_x(source, device):
    """x of the first batch, for building lazy layers before the optimizer exists (None
    for a one-shot iterator, which cannot be peeked without losing that batch)."""
    if isinstance(source, ArrayBatches):
        return _to_device(source.first_x(), device)
    if iter(source) is source:
        return None
    for x, _, _ in batches(source, device, steps=1):
        return x
    return None


def _validation_source(data, batch_size):
    if isinstance(data, tuple) and 2 <= len(data) <= 3 and _is_array(data[0]):
        return ArrayBatches(*data, batch_size=batch_size, shuffle=False)
    return adapt(data, batch_size=batch_size, what="validation_data")


def _run_test(model, source, device, callback_list, steps=None) -> dict:
    model.eval()
    model.reset_metrics()
    callback_list.on_test_begin({})
    logs: dict = {}
    with no_grad():
        for step, batch in enumerate(batches(source, device, steps=steps)):
            callback_list.on_test_batch_begin(step, {})
            logs = scalars(model.test_step(batch))
            callback_list.on_test_batch_end(step, logs)
    callback_list.on_test_end(logs)
    return logs


def evaluate(model, x=None, y=None, batch_size=32, verbose="auto", sample_weight=None,
             steps=None, callbacks=None, return_dict=False):
    """Loss and metrics of `model` on data (see `ember.Model.evaluate`)."""
    verbose = resolve_verbose(verbose)
    source = adapt(x, y, sample_weight, batch_size, what="evaluate")
    callback_list = _callbacks(model, callbacks, verbose,
                               {"steps": _steps(source, steps), "verbose": verbose})
    logs = _run_test(model, source, model._device(), callback_list, steps)
    if not logs:
        warnings.warn("evaluate saw no batches", stacklevel=3)
    if return_dict:
        return logs
    values = list(logs.values())
    return values[0] if len(values) == 1 else values


def predict(model, x, batch_size=32, verbose=0, steps=None, callbacks=None):
    """Outputs of `model` on x, concatenated along the batch axis as NumPy arrays."""
    verbose = resolve_verbose(verbose)
    source = adapt(x, None, None, batch_size, what="predict")
    callback_list = _callbacks(model, callbacks, verbose,
                               {"steps": _steps(source, steps), "verbose": verbose})
    model.eval()
    outputs = []
    callback_list.on_predict_begin({})
    with no_grad():
        for step, batch in enumerate(batches(source, model._device(), steps=steps)):
            callback_list.on_predict_batch_begin(step, {})
            output = model.predict_step(batch)
            outputs.append(_host_outputs(output))
            callback_list.on_predict_batch_end(step, {"outputs": outputs[-1]})
    callback_list.on_predict_end({})
    if not outputs:
        raise EmberError("predict saw no batches")
    return _concatenate(outputs)


def _host_outputs(output):
    if isinstance(output, (tuple, list)):
        return tuple(_host_outputs(part) for part in output)
    if isinstance(output, dict):
        return {key: _host_outputs(part) for key, part in output.items()}
    return host_array(output)


def _concatenate(outputs):
    first = outputs[0]
    if isinstance(first, tuple):
        return tuple(_concatenate([out[i] for out in outputs]) for i in range(len(first)))
    if isinstance(first, dict):
        return {key: _concatenate([out[key] for out in outputs]) for key in first}
    return np.concatenate(outputs, axis=0)
