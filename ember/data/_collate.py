"""Collation: a list of samples -> one batch of ember Tensors, following the samples' structure."""
from __future__ import annotations

import collections.abc
import numbers

import numpy as np

from ember._core.errors import DTypeError, EmberError, ShapeError
from ember._core.tensor import Tensor
from ember.ops.creation import asarray
from ember.ops.movement import stack

_NUMERIC_KINDS = "biuf"


class StackedSamples(collections.abc.Sequence):
    """A batch fetched already stacked (by `TensorDataset.__getitems__`).

    It reads as the usual list of samples, `(t[i] for t in columns)`, so any collate_fn works;
    default_collate returns the columns as they are instead of unstacking and restacking them.
    """

    def __init__(self, columns: tuple):
        self.columns = columns

    def __len__(self):
        return self.columns[0].shape[0]

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return tuple(column[index] for column in self.columns)


def _where(path: str) -> str:
    return f" at {path}" if path else ""


def _stack_tensors(batch: list, path: str) -> Tensor:
    shapes = {tuple(t.shape) for t in batch}
    if len(shapes) > 1:
        raise ShapeError(f"default_collate: samples{_where(path)} have different shapes "
                         f"{sorted(shapes)}; pad them to one shape or pass a collate_fn")
    if all(t.device.type == "cpu" and not t.requires_grad for t in batch):
        # One np.stack instead of one ember op per sample: collation is on the hot path.
        return asarray(np.stack([t.numpy() for t in batch]))
    return stack(batch)


def _stack_arrays(batch: list, path: str) -> Tensor:
    if batch[0].dtype.kind not in _NUMERIC_KINDS:
        raise DTypeError(f"default_collate: NumPy arrays{_where(path)} have dtype "
                         f"{batch[0].dtype}, which cannot become a tensor")
    shapes = {a.shape for a in batch}
    if len(shapes) > 1:
        raise ShapeError(f"default_collate: samples{_where(path)} have different shapes "
                         f"{sorted(shapes)}; pad them to one shape or pass a collate_fn")
    return asarray(np.stack(batch))


def _collate(batch: list, path: str):
    first = batch[0]
    if isinstance(first, Tensor):
        return _stack_tensors(batch, path)
    if isinstance(first, np.ndarray):
        return _stack_arrays(batch, path)
    if isinstance(first, np.generic):
        return _stack_arrays([np.asarray(x) for x in batch], path)
    if isinstance(first, bool):
        return asarray(np.array(batch, dtype=np.bool_))
    if isinstance(first, numbers.Integral):
        return asarray(np.array(batch, dtype=np.int64))
    if isinstance(first, numbers.Real):
        # float32, ember's default float (PyTorch gives float64 here; ember never upcasts).
        return asarray(np.array(batch, dtype=np.float32))
    if isinstance(first, (str, bytes)) or first is None:
        return list(batch)
    if isinstance(first, collections.abc.Mapping):
        collated = {key: _collate([sample[key] for sample in batch], f"{path}[{key!r}]")
                    for key in first}
        return collated if type(first) is dict else _rebuild(type(first), collated)
    if isinstance(first, tuple) and hasattr(first, "_fields"):  # namedtuple
        return type(first)(*(_collate(list(field), f"{path}.{name}")
                             for name, field in zip(first._fields, zip(*batch))))
    if isinstance(first, collections.abc.Sequence):
        lengths = {len(sample) for sample in batch}
        if len(lengths) > 1:
            raise ShapeError(f"default_collate: sequences{_where(path)} have different lengths "
                             f"{sorted(lengths)}; every sample needs the same structure")
        columns = [_collate(list(column), f"{path}[{i}]") for i, column in enumerate(zip(*batch))]
        return tuple(columns) if isinstance(first, tuple) else columns
    raise EmberError(f"default_collate: cannot batch samples of type {type(first).__name__}"
                     f"{_where(path)}; expected Tensors, NumPy arrays, numbers, strings, or "
                     f"dicts/tuples/lists of them (or pass a collate_fn)")


def _rebuild(mapping_type, collated: dict):
    try:
        return mapping_type(collated)
    except TypeError:  # a Mapping whose constructor takes something else
        return collated


def default_collate(batch: list):
    """Stack a list of samples into a batch, keeping the samples' structure.

    Tensors and NumPy arrays are stacked along a new first axis; Python ints become an int64
    tensor, floats float32, bools bool; strings stay a list; tuples, lists, namedtuples and
    dicts are collated field by field.

    >>> import ember
    >>> images, labels = ember.data.default_collate([(ember.ones(2), 0), (ember.zeros(2), 1)])
    >>> images.shape, labels
    ((2, 2), tensor([0, 1]))
    """
    if not isinstance(batch, collections.abc.Sequence) or len(batch) == 0:
        raise EmberError(f"default_collate needs a non-empty list of samples, got {batch!r}")
    if isinstance(batch, StackedSamples):
        return batch.columns
    return _collate(list(batch), "")


def default_convert(sample):
    """Turn NumPy arrays and scalars in one sample into Tensors (used when batch_size=None).

    >>> import numpy as np, ember
    >>> ember.data.default_convert({"x": np.zeros(2, np.float32), "name": "a"})
    {'x': tensor([0., 0.]), 'name': 'a'}
    """
    if isinstance(sample, np.ndarray) and sample.dtype.kind in _NUMERIC_KINDS:
        return asarray(sample)
    if isinstance(sample, np.generic) and sample.dtype.kind in _NUMERIC_KINDS:
        return asarray(np.asarray(sample))
    if isinstance(sample, collections.abc.Mapping):
        converted = {key: default_convert(value) for key, value in sample.items()}
        return converted if type(sample) is dict else _rebuild(type(sample), converted)
    if isinstance(sample, tuple) and hasattr(sample, "_fields"):
        return type(sample)(*(default_convert(value) for value in sample))
    if isinstance(sample, (tuple, list)):
        return type(sample)(default_convert(value) for value in sample)
    return sample
