"""Gather/scatter along an axis, masked fill and padding, built on indexing's primitives.

Each function lowers to `Index` or `IndexPut` (ember/ops/indexing.py) with a key of index
grids, so all of them are differentiable to any order without primitives of their own.
"""
from __future__ import annotations

import numpy as np

from ember._core.errors import DTypeError, EmberError, user_frame
from ember._core.primitive import apply, shape_error
from ember._core.shapes import broadcast_shapes, normalize_axis
from ember._core.tensor import Tensor
from ember.ops import movement
from ember.ops._util import cast
from ember.ops.elementwise import where
from ember.ops.indexing import (
    ARRAY,
    FULL_SLICE,
    INDEX,
    INDEX_PUT,
    InvalidIndex,
    as_index_tensor,
    check_in_range,
    getitem,
    tensor_of,
    values_for,
)

__all__ = ["take", "take_along_axis", "gather", "scatter_add", "index_add", "masked_fill",
           "pad"]


def _integer_index(value, x: Tensor, op: str) -> Tensor:
    index = as_index_tensor(value, x, op)
    if index._data.dtype.kind == "b":
        raise InvalidIndex(f"{op}: indices must be integers, got a bool tensor at "
                           f"{user_frame()}; use x[mask] or masked_fill for masks")
    return index


def _axis_of(x: Tensor, axis: int, op: str) -> int:
    if x.ndim == 0:
        raise shape_error(op, "needs a tensor with at least one dimension", x)
    return normalize_axis(axis, x.ndim, op)


def _grid(x: Tensor, size: int, axis: int, ndim: int) -> Tensor:
    """arange(size) shaped to broadcast along `axis` of an ndim-d key."""
    shape = [1] * ndim
    shape[axis] = size
    return Tensor(x._device.xp.arange(size).reshape(shape), x._device)


def _along_axis(x: Tensor, index: Tensor, axis: int, sizes: tuple) -> list:
    """Index tensors for x[i0, .., index[i0, .., in], .., in] over positions of shape sizes."""
    return [index if d == axis else _grid(x, size, d, len(sizes)) for d, size in enumerate(sizes)]


def take(x, indices, /, *, axis=None) -> Tensor:
    """Elements at `indices` along `axis` (of the flattened x when axis is None).

    >>> import ember
    >>> ember.take(ember.tensor([[1, 2], [3, 4]]), ember.tensor([1, 1]), axis=1)
    tensor([[2, 2],
            [4, 4]])
    """
    x = tensor_of(x)
    if axis is None:
        x, axis = movement.reshape(x, (-1,)), 0
    axis = _axis_of(x, axis, "take")
    indices = _integer_index(indices, x, "take")
    check_in_range("take", indices, x.shape[axis], axis)
    return apply(INDEX, x, indices, spec=(FULL_SLICE,) * axis + (ARRAY,))


def take_along_axis(x, indices, axis: int = -1) -> Tensor:
    """NumPy's take_along_axis: pick `indices` along `axis`, broadcasting the other axes.

    >>> import ember
    >>> ember.take_along_axis(ember.tensor([[10, 30, 20]]), ember.tensor([[1, 2]]), 1)
    tensor([[30, 20]])
    """
    x = tensor_of(x)
    axis = _axis_of(x, axis, "take_along_axis")
    indices = _integer_index(indices, x, "take_along_axis")
    if indices.ndim != x.ndim:
        raise shape_error("take_along_axis", f"indices need {x.ndim} dimensions like x", x,
                          indices)
    broadcast_shapes(x.shape[:axis] + x.shape[axis + 1:],
                     indices.shape[:axis] + indices.shape[axis + 1:], op="take_along_axis")
    check_in_range("take_along_axis", indices, x.shape[axis], axis)
    key = _along_axis(x, indices, axis, x.shape)
    return apply(INDEX, x, *key, spec=(ARRAY,) * x.ndim)


def _fits(op: str, index: Tensor, limit: Tensor, axis, *operands):
    """PyTorch's rule: index.shape[d] <= limit.shape[d] (for every d other than `axis`)."""
    for d, (size, bound) in enumerate(zip(index.shape, limit.shape)):
        if d != axis and size > bound:
            raise shape_error(op, f"index has size {size} on axis {d}, more than {bound}",
                              *operands)


def gather(x, axis: int, index) -> Tensor:
    """PyTorch's gather: `out[i][j] = x[index[i][j]][j]` for axis 0; out has index's shape.

    >>> import ember
    >>> ember.gather(ember.tensor([[1, 2], [3, 4]]), 1, ember.tensor([[0, 0], [1, 0]]))
    tensor([[1, 1],
            [4, 3]])
    """
    x = tensor_of(x)
    axis = _axis_of(x, axis, "gather")
    index = _integer_index(index, x, "gather")
    if index.ndim != x.ndim:
        raise shape_error("gather", f"index needs {x.ndim} dimensions like x", x, index)
    _fits("gather", index, x, axis, x, index)
    check_in_range("gather", index, x.shape[axis], axis)
    return apply(INDEX, x, *_along_axis(x, index, axis, index.shape), spec=(ARRAY,) * x.ndim)


def scatter_add(x, axis: int, index, src) -> Tensor:
    """PyTorch's scatter_add, out of place: `out[index[i][j]][j] += src[i][j]` for axis 0.

    Repeated indices add up; only the leading `index.shape` block of src is used.

    >>> import ember
    >>> ember.scatter_add(ember.zeros(3), 0, ember.tensor([0, 2, 0]), ember.ones(3))
    tensor([2., 0., 1.])
    """
    x = tensor_of(x)
    axis = _axis_of(x, axis, "scatter_add")
    index = _integer_index(index, x, "scatter_add")
    src = values_for(x, src, "scatter_add")
    if not index.ndim == x.ndim == src.ndim:
        raise shape_error("scatter_add", "x, index and src need the same number of "
                          "dimensions", x, index, src)
    _fits("scatter_add", index, x, axis, x, index, src)
    _fits("scatter_add", index, src, None, x, index, src)
    check_in_range("scatter_add", index, x.shape[axis], axis)
    if src.shape != index.shape:
        src = getitem(src, tuple(slice(0, size) for size in index.shape))
    return apply(INDEX_PUT, x, src, *_along_axis(x, index, axis, index.shape),
                 spec=(ARRAY,) * x.ndim, accumulate=True)


def index_add(x, axis: int, index, source, *, alpha=1) -> Tensor:
    """PyTorch's index_add, out of place: `out[.., index[i], ..] += alpha * source[.., i, ..]`.

    >>> import ember
    >>> ember.index_add(ember.zeros((3, 2)), 0, ember.tensor([2, 2]), ember.ones((2, 2)))
    tensor([[0., 0.],
            [0., 0.],
            [2., 2.]])
    """
    x = tensor_of(x)
    axis = _axis_of(x, axis, "index_add")
    index = _integer_index(index, x, "index_add")
    if index.ndim != 1:
        raise shape_error("index_add", "index must be 1-d", index)
    source = values_for(x, source, "index_add")
    expected = x.shape[:axis] + index.shape + x.shape[axis + 1:]
    if source.shape != expected:
        raise shape_error("index_add", f"source must have shape {expected}", x, index, source)
    check_in_range("index_add", index, x.shape[axis], axis)
    if alpha != 1:
        source = cast(source * alpha, x.dtype)
    return apply(INDEX_PUT, x, source, index, spec=(FULL_SLICE,) * axis + (ARRAY,),
                 accumulate=True)


def masked_fill(x, mask, value) -> Tensor:
    """x with `value` (a number or 0-d tensor) wherever the boolean `mask` (broadcast) is true.

    >>> import ember
    >>> ember.masked_fill(ember.ones(3), ember.tensor([True, False, True]), 0.0)
    tensor([0., 1., 0.])
    """
    x = tensor_of(x)
    mask = tensor_of(mask)
    if mask._data.dtype.kind != "b":
        raise DTypeError(f"masked_fill: mask must be a bool tensor, got {mask.dtype.name} at "
                         f"{user_frame()}; compare first, e.g. x > 0")
    if broadcast_shapes(mask.shape, x.shape, op="masked_fill") != x.shape:
        raise shape_error("masked_fill", "mask must broadcast to x's shape", x, mask)
    value = values_for(x, value, "masked_fill")
    if value.ndim != 0:
        raise shape_error("masked_fill", "value must be a number or a 0-d tensor", value)
    return where(mask, value, x)


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "symmetric": "symmetric",
              "edge": "edge", "replicate": "edge", "wrap": "wrap", "circular": "wrap"}


def _pad_widths(pad_width, x: Tensor) -> tuple:
    """NumPy's pad_width forms (int, (n,), (before, after), per-axis pairs) as pairs."""
    widths = np.asarray(pad_width)
    if widths.dtype.kind not in "iu" or (widths.size and widths.min() < 0):
        raise shape_error("pad", f"pad_width must hold non-negative integers, got "
                          f"{pad_width!r}", x)
    try:
        widths = np.broadcast_to(widths, (x.ndim, 2))
    except ValueError:
        raise shape_error("pad", f"pad_width {pad_width!r} does not fit a {x.ndim}-d tensor; "
                          f"give one (before, after) pair per axis", x) from None
    return tuple((int(before), int(after)) for before, after in widths)


def _pad_source(x: Tensor, mode: str, axis: int, before: int, after: int) -> Tensor:
    """For each padded position along `axis`, the position of x it copies."""
    size = x.shape[axis]
    positions = np.arange(-before, size + after)
    if size == 0 and positions.size:
        raise shape_error("pad", f"cannot pad the empty axis {axis} in mode {mode!r}", x)
    if mode == "edge":
        positions = np.clip(positions, 0, size - 1)
    elif mode == "wrap":
        positions = positions % size
    else:  # reflect and symmetric are periodic; symmetric repeats the edge element
        period = 2 * size if mode == "symmetric" else max(2 * size - 2, 1)
        positions = positions % period
        mirror = period - 1 if mode == "symmetric" else period
        positions = np.where(positions < size, positions, mirror - positions)
    return Tensor(x._device.xp.asarray(positions), x._device)


def pad(x, pad_width, mode: str = "constant", value=0) -> Tensor:
    """Pad with NumPy's `pad_width`: ((before, after), ...) per axis, or one pair/int for all.

    Modes: 'constant' (fill with `value`), 'reflect', 'symmetric', 'edge' (alias
    'replicate'), 'wrap' (alias 'circular'). Differentiable in x in every mode.

    >>> import ember
    >>> ember.pad(ember.tensor([1, 2, 3]), (1, 2), mode="reflect")
    tensor([2, 1, 2, 3, 2, 1])
    """
    x = tensor_of(x)
    if mode not in _PAD_MODES:
        raise EmberError(f"pad: unknown mode {mode!r} at {user_frame()}; choose one of "
                         f"{sorted(_PAD_MODES)}")
    mode = _PAD_MODES[mode]
    widths = _pad_widths(pad_width, x)
    if not any(before or after for before, after in widths):
        return x
    if mode != "constant":  # one `take` per padded axis
        for axis, (before, after) in enumerate(widths):
            if before or after:
                source = _pad_source(x, mode, axis, before, after)
                x = apply(INDEX, x, source, spec=(FULL_SLICE,) * axis + (ARRAY,))
        return x
    xp = x._device.xp
    value = value.item() if isinstance(value, Tensor) else value
    shape = tuple(before + size + after for (before, after), size in zip(widths, x.shape))
    # A zero-stride view of the fill value: IndexPut's copy is the only allocation.
    filled = Tensor(xp.broadcast_to(xp.asarray(value, dtype=x._data.dtype), shape), x._device)
    spec = tuple((before, before + size, None) for (before, _), size in zip(widths, x.shape))
    return apply(INDEX_PUT, filled, x, spec=spec, accumulate=False)


def bind_methods(tensor_class):
    """PyTorch-style methods: x.gather(dim, index), x.scatter_add(dim, index, src), ..."""
    tensor_class.take = take
    tensor_class.take_along_axis = take_along_axis
    tensor_class.gather = lambda self, dim, index: gather(self, dim, index)
    tensor_class.scatter_add = lambda self, dim, index, src: scatter_add(self, dim, index, src)
    tensor_class.index_add = lambda self, dim, index, source, *, alpha=1: index_add(
        self, dim, index, source, alpha=alpha)
    tensor_class.masked_fill = masked_fill
    return tensor_class
