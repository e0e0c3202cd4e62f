"""Set functions: the unique_* family of the Array API plus a PyTorch-style `unique`.

The results' sizes depend on the data, so these have no gradient and no static shape: a
compiled graph must treat them as a boundary (their `infer` reports the length as None).
"""
from __future__ import annotations

from collections import namedtuple

from ember._core import dtypes
from ember._core.primitive import AbstractValue, Primitive, apply
from ember._core.tensor import Tensor
from ember.ops._util import as_tensor

__all__ = ["UniqueAllResult", "UniqueCountsResult", "UniqueInverseResult", "unique",
           "unique_all", "unique_counts", "unique_inverse", "unique_values"]

UniqueAllResult = namedtuple("UniqueAllResult", ["values", "indices", "inverse_indices",
                                                 "counts"])
UniqueCountsResult = namedtuple("UniqueCountsResult", ["values", "counts"])
UniqueInverseResult = namedtuple("UniqueInverseResult", ["values", "inverse_indices"])


class Unique(Primitive):
    """Sorted distinct values of the flattened input (each NaN distinct), plus the requested
    first-occurrence indices, inverse indices (shaped like the input) and counts."""

    differentiable = False

    def infer(self, x, return_index, return_inverse, return_counts):
        values = AbstractValue((None,), x.dtype, x.device)
        index = AbstractValue((None,), dtypes.int64, x.device)
        inverse = AbstractValue(x.shape, dtypes.int64, x.device)
        wanted = ((True, values), (return_index, index), (return_inverse, inverse),
                  (return_counts, index))
        return tuple(aval for flag, aval in wanted if flag)

    def forward(self, xp, x, return_index, return_inverse, return_counts):
        result = xp.unique(x.reshape(-1), return_index=return_index,
                           return_inverse=return_inverse, return_counts=return_counts,
                           equal_nan=False)
        values, *extras = result if isinstance(result, tuple) else (result,)
        extras = [extra.astype(xp.int64, copy=False) for extra in extras]
        if return_inverse:
            position = 1 if return_index else 0
            extras[position] = extras[position].reshape(x.shape)
        return (values, *extras)


UNIQUE = Unique()


def _unique(x, index: bool, inverse: bool, counts: bool) -> tuple:
    x = x if isinstance(x, Tensor) else as_tensor(x)
    return apply(UNIQUE, x, return_index=index, return_inverse=inverse, return_counts=counts)


def unique_values(x, /) -> Tensor:
    """Sorted distinct values of x (flattened); every NaN counts as distinct.

    >>> import ember
    >>> ember.unique_values(ember.tensor([3, 1, 3, 2]))
    tensor([1, 2, 3])
    """
    return _unique(x, False, False, False)[0]


def unique_counts(x, /) -> UniqueCountsResult:
    """Distinct values and how often each occurs.

    >>> import ember
    >>> ember.unique_counts(ember.tensor([3, 1, 3])).counts
    tensor([1, 2])
    """
    return UniqueCountsResult(*_unique(x, False, False, True))


def unique_inverse(x, /) -> UniqueInverseResult:
    """Distinct values and, for each element of x, the index of its value (x's shape):
    `values[inverse_indices]` rebuilds x.

    >>> import ember
    >>> ember.unique_inverse(ember.tensor([3, 1, 3])).inverse_indices
    tensor([1, 0, 1])
    """
    return UniqueInverseResult(*_unique(x, False, True, False))


def unique_all(x, /) -> UniqueAllResult:
    """Distinct values, first-occurrence indices, inverse indices and counts.

    >>> import ember
    >>> ember.unique_all(ember.tensor([3, 1, 3])).indices
    tensor([1, 0])
    """
    return UniqueAllResult(*_unique(x, True, True, True))


def unique(x, /, *, sorted: bool = True, return_inverse: bool = False,
           return_counts: bool = False):
    """PyTorch-style `unique`: the values, or (values[, inverse][, counts]). Results are always
    sorted; `sorted` is accepted for compatibility.

    >>> import ember
    >>> ember.unique(ember.tensor([2, 2, 5]), return_counts=True)
    (tensor([2, 5]), tensor([2, 1]))
    """
    result = _unique(x, False, bool(return_inverse), bool(return_counts))
    return result[0] if len(result) == 1 else result
