"""Searching and sorting: argmax/argmin, nonzero, searchsorted, count_nonzero, and
sort/argsort/topk/kthvalue (set functions live in `sets.py`).

Only `sort` and `topk` have gradients: both move values through a permutation, so their vjp
scatters the cotangent back to where each value came from with `scatter_add` (whose own vjp
is a gather, so double backward works). Everything else returns indices or counts.
"""
from __future__ import annotations

import math
from collections import namedtuple

from ember._core import dtypes
from ember._core.errors import EmberError, user_frame
from ember._core.primitive import AbstractValue, Primitive, apply, shape_error
from ember._core.shapes import normalize_axes, normalize_axis, reduced_shape
from ember._core.tensor import Tensor
from ember.ops._util import as_tensor, cast, torch_axis_names
from ember.ops.creation import zeros_like
from ember.ops.movement import reshape, split, squeeze, stack
from ember.ops.scatter import scatter_add
from ember.ops.sets import unique

__all__ = ["ValuesIndices", "argmax", "argmin", "argsort", "count_nonzero", "kthvalue",
           "nonzero", "searchsorted", "sort", "topk"]

ValuesIndices = namedtuple("ValuesIndices", ["values", "indices"])


def _tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else as_tensor(x)


def _check_nonempty(op: str, x, axis):
    if math.prod(x.shape) == 0 and (axis is None or x.shape[axis] == 0):
        where = "the tensor" if axis is None else f"axis {axis}"
        raise shape_error(op, f"{where} is empty, so it has no {op[3:]}imum", x)


def _argsort(xp, x, axis, descending):
    """Stable argsort as int64; descending keeps equal elements in their original order."""
    if not descending:
        return xp.argsort(x, axis=axis, kind="stable").astype(xp.int64, copy=False)
    # Reversing an ascending stable sort would reverse the ties too. Sorting the reversed
    # input instead and mapping positions back keeps ties first-come-first-served.
    reversed_order = xp.argsort(xp.flip(x, axis=axis), axis=axis, kind="stable")
    return (x.shape[axis] - 1) - xp.flip(reversed_order, axis=axis).astype(xp.int64)


def _lane_index(xp, indices, axis):
    """Advanced index taking `indices` along `axis` and the matching position elsewhere."""
    index = []
    for dim, size in enumerate(indices.shape):
        shape = [1] * indices.ndim
        shape[dim] = size
        index.append(indices if dim == axis else xp.arange(size).reshape(shape))
    return tuple(index)


# ---- primitives -------------------------------------------------------------------------------
class Sort(Primitive):
    def infer(self, x, axis, descending):
        return AbstractValue(x.shape, x.dtype, x.device)

    def forward(self, xp, x, axis, descending):
        values = xp.sort(x, axis=axis)  # stability cannot change values: any algorithm will do
        return xp.flip(values, axis=axis) if descending else values

    def vjp(self, ctx, gy):
        # The permutation is recomputed here rather than saved, so inference pays only for the
        # value sort. Any permutation that sorts x gives a valid (sub)gradient under ties.
        x = ctx.inputs[0]
        axis = ctx.params["axis"]
        order = apply(ARGSORT, x.detach(), axis=axis, descending=ctx.params["descending"])
        return (scatter_add(zeros_like(gy), axis, order, gy),)


class TopK(Primitive):
    """(values, indices) of the k largest (or smallest) along axis, ties lowest index first."""

    def infer(self, x, k, axis, largest):
        shape = x.shape[:axis] + (k,) + x.shape[axis + 1:]
        return (AbstractValue(shape, x.dtype, x.device),
                AbstractValue(shape, dtypes.int64, x.device))

    def forward(self, xp, x, k, axis, largest):
        order = _argsort(xp, x, axis, descending=largest)
        # A copy, not a view: the autograd node keeps `indices`, and a view would pin all of
        # `order` (n indices per lane) in memory.
        indices = xp.ascontiguousarray(order[(slice(None),) * axis + (slice(0, k),)])
        return x[_lane_index(xp, indices, axis)], indices

    def vjp(self, ctx, gy_values, gy_indices):
        x = ctx.inputs[0]
        gx = zeros_like(x, dtype=gy_values.dtype)
        return (scatter_add(gx, ctx.params["axis"], ctx.output(1), gy_values),)


class Argsort(Primitive):
    differentiable = False

    def infer(self, x, axis, descending):
        return AbstractValue(x.shape, dtypes.int64, x.device)

    def forward(self, xp, x, axis, descending):
        return _argsort(xp, x, axis, descending)


class ArgExtreme(Primitive):
    """argmax / argmin over one axis (or the flattened tensor when axis is None)."""

    differentiable = False

    def __init__(self, name: str):
        self.name = name

    def infer(self, x, axis, keepdims):
        _check_nonempty(self.name, x, axis)
        axes = tuple(range(x.ndim)) if axis is None else (axis,)
        return AbstractValue(reduced_shape(x.shape, axes, keepdims), dtypes.int64, x.device)

    def forward(self, xp, x, axis, keepdims):
        result = getattr(xp, self.name)(x, axis=axis, keepdims=keepdims)
        return result.astype(xp.int64, copy=False)


class CountNonzero(Primitive):
    differentiable = False

    def infer(self, x, axes, keepdims):
        return AbstractValue(reduced_shape(x.shape, axes, keepdims), dtypes.int64, x.device)

    def forward(self, xp, x, axes, keepdims):
        return xp.sum(x != 0, axis=axes, keepdims=keepdims, dtype=xp.int64)


class Nonzero(Primitive):
    """One int64 index tensor per dimension; their length depends on the data."""

    differentiable = False

    def infer(self, x):
        return tuple(AbstractValue((None,), dtypes.int64, x.device) for _ in range(x.ndim))

    def forward(self, xp, x):
        return tuple(index.astype(xp.int64, copy=False) for index in xp.nonzero(x))


class Searchsorted(Primitive):
    differentiable = False

    def infer(self, x1, x2, sorter, side):
        return AbstractValue(x2.shape, dtypes.int64, x2.device)

    def forward(self, xp, x1, x2, sorter, side):
        return xp.searchsorted(x1, x2, side=side, sorter=sorter).astype(xp.int64, copy=False)


SORT, TOPK, ARGSORT = Sort(), TopK(), Argsort()
ARGMAX, ARGMIN = ArgExtreme("argmax"), ArgExtreme("argmin")
COUNT_NONZERO, NONZERO, SEARCHSORTED = CountNonzero(), Nonzero(), Searchsorted()


# ---- searching --------------------------------------------------------------------------------
def _arg_extreme(prim, x, axis, keepdims) -> Tensor:
    x = _tensor(x)
    if axis is not None:
        axis = normalize_axis(axis, x.ndim, prim.name) if x.ndim else None
    _check_nonempty(prim.name, x, axis)
    return apply(prim, x, axis=axis, keepdims=bool(keepdims))


def argmax(x, /, *, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """Index of the largest element along axis (of the flattened tensor when None); the first
    one on ties, NaN counts as largest.

    >>> import ember
    >>> ember.argmax(ember.tensor([[1.0, 5.0], [7.0, 2.0]]), axis=1)
    tensor([1, 0])
    """
    return _arg_extreme(ARGMAX, x, axis, keepdims)


def argmin(x, /, *, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """Index of the smallest element along axis (of the flattened tensor when None).

    >>> import ember
    >>> ember.argmin(ember.tensor([3.0, 1.0, 1.0]))
    tensor(1)
    """
    return _arg_extreme(ARGMIN, x, axis, keepdims)


def count_nonzero(x, /, *, axis=None, keepdims: bool = False) -> Tensor:
    """Number of nonzero elements over the given axes (all when None), as int64.

    >>> import ember
    >>> ember.count_nonzero(ember.tensor([[0, 1], [2, 3]]), axis=0)
    tensor([1, 2])
    """
    x = _tensor(x)
    axes = normalize_axes(axis, x.ndim, "count_nonzero") if x.ndim else ()
    return apply(COUNT_NONZERO, x, axes=axes, keepdims=bool(keepdims))


def nonzero(x, /) -> tuple:
    """Indices of the nonzero elements: one int64 tensor per dimension (Array API).

    >>> import ember
    >>> ember.nonzero(ember.tensor([[0, 3], [4, 0]]))
    (tensor([0, 1]), tensor([1, 0]))
    """
    x = _tensor(x)
    if x.ndim == 0:
        raise shape_error("nonzero", "is not defined for a 0-d tensor; reshape it to 1-d "
                          "first, e.g. x.reshape(1)", x)
    return apply(NONZERO, x)


def searchsorted(x1, x2, /, *, side: str = "left", sorter=None) -> Tensor:
    """Insertion points of x2's elements into the sorted 1-d x1 (`sorter` sorts an unsorted
    x1); `side='right'` places equal elements after the existing ones.

    >>> import ember
    >>> ember.searchsorted(ember.tensor([1.0, 2.0, 2.0, 3.0]), ember.tensor([2.0, 9.0]))
    tensor([1, 4])
    """
    x1 = _tensor(x1)
    if side not in ("left", "right"):
        raise EmberError(f"searchsorted: side must be 'left' or 'right', got {side!r} at "
                         f"{user_frame()}")
    if x1.ndim != 1:
        raise shape_error("searchsorted", "x1 must be 1-d", x1)
    if isinstance(x2, (bool, int, float)):
        x2 = Tensor(x1._device.xp.asarray(x2, dtypes.promote_scalar(x1.dtype, x2).np),
                    x1._device)
    x2 = _tensor(x2)
    target = dtypes.promote_types(x1.dtype, x2.dtype)
    x1, x2 = cast(x1, target), cast(x2, target)
    if sorter is not None:
        sorter = _tensor(sorter)
        if sorter.shape != x1.shape or sorter._data.dtype.kind not in "iu":
            raise shape_error("searchsorted", "sorter must be integer indices shaped like x1",
                              x1, sorter)
        sorter = cast(sorter, dtypes.int64)
    return apply(SEARCHSORTED, x1, x2, sorter, side=side)


# ---- sorting ----------------------------------------------------------------------------------
def _along_axis(function, x, axis, op):
    """Run `function(x, axis)` with a 0-d tensor treated as one element along axis 0."""
    x = _tensor(x)
    if x.ndim == 0:
        normalize_axis(axis, 0, op)
        return function(reshape(x, (1,)), 0), True
    return function(x, normalize_axis(axis, x.ndim, op)), False


def sort(x, /, *, axis: int = -1, descending: bool = False, stable: bool = True) -> Tensor:
    """Sorted copy along axis; differentiable (the gradient follows each value home).
    `stable` is accepted for the Array API signature; sorted values do not depend on it.

    >>> import ember
    >>> ember.sort(ember.tensor([3.0, 1.0, 2.0]), descending=True)
    tensor([3., 2., 1.])
    """
    out, scalar = _along_axis(lambda t, a: apply(SORT, t, axis=a, descending=bool(descending)),
                              x, axis, "sort")
    return reshape(out, ()) if scalar else out


def argsort(x, /, *, axis: int = -1, descending: bool = False, stable: bool = True) -> Tensor:
    """Indices that sort x along axis, as int64. Always stable: equal elements keep their
    original order, descending included (so `stable=False` is accepted and changes nothing).

    >>> import ember
    >>> ember.argsort(ember.tensor([2, 1, 2, 3]), descending=True)
    tensor([3, 0, 2, 1])
    """
    out, scalar = _along_axis(
        lambda t, a: apply(ARGSORT, t, axis=a, descending=bool(descending)), x, axis, "argsort")
    return reshape(out, ()) if scalar else out


def topk(x, k: int, /, *, axis: int = -1, largest: bool = True, sorted: bool = True):
    """The k largest (smallest with `largest=False`) elements along axis and their indices,
    in sorted order, ties lowest index first (like `torch.topk`); values are differentiable.

    >>> import ember
    >>> values, indices = ember.topk(ember.tensor([1.0, 4.0, 3.0, 2.0]), 2)
    >>> values, indices
    (tensor([4., 3.]), tensor([1, 2]))
    """
    k = int(k)

    def run(t, a):
        if not 0 <= k <= t.shape[a]:
            raise shape_error("topk", f"k={k} is out of range for axis {a} of size "
                              f"{t.shape[a]}", t)
        return apply(TOPK, t, k=k, axis=a, largest=bool(largest))

    (values, indices), scalar = _along_axis(run, x, axis, "topk")
    if scalar and k == 1:
        values, indices = reshape(values, ()), reshape(indices, ())
    return ValuesIndices(values, indices)


def kthvalue(x, k: int, /, *, axis: int = -1, keepdims: bool = False):
    """The k-th smallest element (1-based) along axis and its index, like `torch.kthvalue`.

    >>> import ember
    >>> ember.kthvalue(ember.tensor([5.0, 1.0, 4.0]), 2).values
    tensor(4.)
    """
    x = _tensor(x)
    axis = normalize_axis(axis, x.ndim, "kthvalue") if x.ndim else -1
    if not 1 <= k <= (x.shape[axis] if x.ndim else 1):
        raise shape_error("kthvalue", f"k={k} is out of range (k counts from 1)", x)
    values, indices = topk(x, k, axis=axis, largest=False)
    if x.ndim == 0:
        return ValuesIndices(values, indices)
    if k > 1:
        values = split(values, (k - 1,), axis=axis)[1]
        indices = split(indices, (k - 1,), axis=axis)[1]
    if not keepdims:
        values, indices = squeeze(values, axis), squeeze(indices, axis)
    return ValuesIndices(values, indices)


# ---- Tensor methods ---------------------------------------------------------------------------
def _sort_method(self, axis=-1, descending=False, *, dim=None, stable=True):
    """Sorted values only (unlike `torch.Tensor.sort`, which also returns indices: use
    `x.argsort()` or `x.topk()` for those)."""
    return sort(self, axis=dim if dim is not None else axis, descending=descending)


def _argsort_method(self, axis=-1, descending=False, *, dim=None, stable=True):
    return argsort(self, axis=dim if dim is not None else axis, descending=descending)


def _topk_method(self, k, axis=-1, largest=True, sorted=True, *, dim=None):
    return topk(self, k, axis=dim if dim is not None else axis, largest=largest)


def _kthvalue_method(self, k, axis=-1, keepdims=False, *, dim=None, keepdim=None):
    return kthvalue(self, k, axis=dim if dim is not None else axis,
                    keepdims=keepdim if keepdim is not None else keepdims)


def _nonzero_method(self, *, as_tuple=True):
    """A tuple of index tensors (NumPy/Array API); `as_tuple=False` stacks them into an
    (n, ndim) tensor like `torch.Tensor.nonzero()`."""
    indices = nonzero(self)
    return indices if as_tuple else stack(indices, axis=1)


def _unique_method(self, sorted=True, return_inverse=False, return_counts=False):
    return unique(self, return_inverse=return_inverse, return_counts=return_counts)


def bind_methods(tensor_class):
    tensor_class.argmax = torch_axis_names(argmax)
    tensor_class.argmin = torch_axis_names(argmin)
    tensor_class.count_nonzero = torch_axis_names(count_nonzero)
    tensor_class.sort = _sort_method
    tensor_class.argsort = _argsort_method
    tensor_class.topk = _topk_method
    tensor_class.kthvalue = _kthvalue_method
    tensor_class.nonzero = _nonzero_method
    tensor_class.unique = _unique_method
    return tensor_class
