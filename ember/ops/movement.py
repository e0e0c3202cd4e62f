"""Shape manipulation: reshape, broadcast, transpose, concat/split, flip, roll, tile, repeat."""
from __future__ import annotations

import math

from ember._core import dtypes
from ember._core.primitive import AbstractValue, Primitive, apply, shape_error
from ember._core.shapes import broadcast_shapes, normalize_axes, normalize_axis
from ember._core.tensor import Tensor
from ember.ops._util import as_tensor, cast


def _tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else as_tensor(x)


class Reshape(Primitive):
    def infer(self, x, shape):
        if math.prod(shape) != math.prod(x.shape):
            raise shape_error("reshape", f"cannot reshape {math.prod(x.shape)} elements into "
                              f"shape {tuple(shape)}", x)
        return AbstractValue(shape, x.dtype, x.device)

    def forward(self, xp, x, shape):
        return x.reshape(shape)

    def vjp(self, ctx, gy):
        return (reshape(gy, ctx.inputs[0].shape),)


class BroadcastTo(Primitive):
    def infer(self, x, shape):
        result = broadcast_shapes(x.shape, shape, op="broadcast_to")
        if result != tuple(shape):
            raise shape_error("broadcast_to", f"cannot broadcast to {tuple(shape)}", x)
        return AbstractValue(shape, x.dtype, x.device)

    def forward(self, xp, x, shape):
        return xp.broadcast_to(x, shape)

    def vjp(self, ctx, gy):
        from ember.ops.reduce import sum_to_shape

        return (sum_to_shape(gy, ctx.inputs[0].shape),)


class PermuteDims(Primitive):
    def infer(self, x, axes):
        if sorted(axes) != list(range(x.ndim)):
            raise shape_error("permute_dims", f"axes {axes} are not a permutation of "
                              f"0..{x.ndim - 1}", x)
        return AbstractValue(tuple(x.shape[a] for a in axes), x.dtype, x.device)

    def forward(self, xp, x, axes):
        return xp.transpose(x, axes)

    def vjp(self, ctx, gy):
        axes = ctx.params["axes"]
        inverse = tuple(sorted(range(len(axes)), key=axes.__getitem__))
        return (permute_dims(gy, inverse),)


class Concat(Primitive):
    def infer(self, *xs, axis):
        first = xs[0]
        for x in xs[1:]:
            if x.ndim != first.ndim or any(a != b for i, (a, b) in
                                           enumerate(zip(x.shape, first.shape)) if i != axis):
                raise shape_error("concat", f"shapes must match except along axis {axis}", *xs)
        size = sum(x.shape[axis] for x in xs)
        shape = first.shape[:axis] + (size,) + first.shape[axis + 1:]
        return AbstractValue(shape, first.dtype, first.device)

    def forward(self, xp, *xs, axis):
        return xp.concatenate(xs, axis=axis)

    def vjp(self, ctx, gy):
        axis = ctx.params["axis"]
        sizes = [x.shape[axis] for x in ctx.inputs]
        offsets = [sum(sizes[:i + 1]) for i in range(len(sizes) - 1)]
        return split(gy, offsets, axis=axis)


class Split(Primitive):
    """Split at the given offsets along an axis (several outputs)."""

    def infer(self, x, offsets, axis):
        bounds = (0, *offsets, x.shape[axis])
        return tuple(AbstractValue(x.shape[:axis] + (max(0, end - start),) + x.shape[axis + 1:],
                                   x.dtype, x.device) for start, end in zip(bounds, bounds[1:]))

    def forward(self, xp, x, offsets, axis):
        return tuple(xp.split(x, offsets, axis=axis))

    def vjp(self, ctx, *gys):
        return (concat(gys, axis=ctx.params["axis"]),)


class Flip(Primitive):
    def infer(self, x, axes):
        return AbstractValue(x.shape, x.dtype, x.device)

    def forward(self, xp, x, axes):
        return xp.flip(x, axis=axes)

    def vjp(self, ctx, gy):
        return (flip(gy, axis=ctx.params["axes"]),)


class Roll(Primitive):
    def infer(self, x, shift, axes):
        return AbstractValue(x.shape, x.dtype, x.device)

    def forward(self, xp, x, shift, axes):
        return xp.roll(x, shift, axis=axes)

    def vjp(self, ctx, gy):
        shift = ctx.params["shift"]
        negated = tuple(-s for s in shift) if isinstance(shift, tuple) else -shift
        return (roll(gy, negated, axis=ctx.params["axes"]),)


class SegmentSum(Primitive):
    """Sum consecutive segments of lengths `counts` along `axis` (the vjp of `repeat`)."""

    def infer(self, x, counts, axis):
        shape = list(x.shape)
        shape[axis] = len(counts)
        return AbstractValue(shape, x.dtype, x.device)

    def forward(self, xp, x, counts, axis):
        counts_array = xp.asarray(counts)
        ends = xp.cumsum(counts_array)
        summed = xp.cumsum(x, axis=axis, dtype=x.dtype)
        pad = [(0, 0)] * x.ndim
        pad[axis] = (1, 0)
        summed = xp.pad(summed, pad)
        starts = ends - counts_array
        return (xp.take(summed, ends, axis=axis) - xp.take(summed, starts, axis=axis))

    def vjp(self, ctx, gy):
        params = ctx.params
        return (apply(REPEAT_BY_COUNTS, gy, counts=params["counts"], axis=params["axis"]),)


class RepeatByCounts(Primitive):
    """Repeat element i of `axis` counts[i] times."""

    def infer(self, x, counts, axis):
        shape = list(x.shape)
        shape[axis] = sum(counts)
        return AbstractValue(shape, x.dtype, x.device)

    def forward(self, xp, x, counts, axis):
        return xp.repeat(x, xp.asarray(counts), axis=axis)

    def vjp(self, ctx, gy):
        return (apply(SEGMENT_SUM, gy, counts=ctx.params["counts"], axis=ctx.params["axis"]),)


RESHAPE, BROADCAST_TO, PERMUTE_DIMS = Reshape(), BroadcastTo(), PermuteDims()
CONCAT, SPLIT, FLIP, ROLL = Concat(), Split(), Flip(), Roll()
SEGMENT_SUM, REPEAT_BY_COUNTS = SegmentSum(), RepeatByCounts()


# ---- public functions -------------------------------------------------------------------------
def reshape(x, /, shape, *, copy=None) -> Tensor:
    """New shape, same data; one dimension may be -1.

    >>> import ember
    >>> ember.reshape(ember.arange(6), (2, -1)).shape
    (2, 3)
    """
    x = _tensor(x)
    shape = (shape,) if isinstance(shape, int) else tuple(int(d) for d in shape)
    if -1 in shape:
        known = math.prod(d for d in shape if d != -1)
        if shape.count(-1) > 1 or known == 0 or x.size % known:
            raise shape_error("reshape", f"cannot infer the -1 in shape {shape}", x)
        shape = tuple(x.size // known if d == -1 else d for d in shape)
    if shape == x.shape and not copy:
        return x
    return apply(RESHAPE, x, shape=shape)


def broadcast_to(x, /, shape) -> Tensor:
    """Broadcast x to `shape` (a read-only view on CPU)."""
    x = _tensor(x)
    shape = tuple(shape)
    if shape == x.shape:
        return x
    return apply(BROADCAST_TO, x, shape=shape)


def broadcast_arrays(*arrays) -> list:
    """Broadcast several tensors against each other."""
    tensors = [_tensor(a) for a in arrays]
    shape = broadcast_shapes(*(t.shape for t in tensors), op="broadcast_arrays")
    return [broadcast_to(t, shape) for t in tensors]


def permute_dims(x, /, axes) -> Tensor:
    """Reorder the axes: `permute_dims(x, (1, 0))` transposes a matrix."""
    x = _tensor(x)
    axes = tuple(normalize_axis(a, x.ndim, "permute_dims") for a in axes)
    if len(axes) != x.ndim or sorted(axes) != list(range(x.ndim)):
        raise shape_error("permute_dims", f"axes {axes} are not a permutation of "
                          f"0..{x.ndim - 1}", x)
    if axes == tuple(range(x.ndim)):
        return x
    return apply(PERMUTE_DIMS, x, axes=axes)


def matrix_transpose(x, /) -> Tensor:
    """Swap the last two axes."""
    x = _tensor(x)
    if x.ndim < 2:
        raise shape_error("matrix_transpose", "needs at least 2 dimensions", x)
    axes = list(range(x.ndim))
    axes[-2], axes[-1] = axes[-1], axes[-2]
    return permute_dims(x, axes)


def swapaxes(x, axis1: int, axis2: int) -> Tensor:
    x = _tensor(x)
    axes = list(range(x.ndim))
    a, b = normalize_axis(axis1, x.ndim, "swapaxes"), normalize_axis(axis2, x.ndim, "swapaxes")
    axes[a], axes[b] = axes[b], axes[a]
    return permute_dims(x, axes)


def moveaxis(x, source, destination, /) -> Tensor:
    """Move axes to new positions, keeping the order of the others."""
    x = _tensor(x)
    source = [source] if isinstance(source, int) else list(source)
    destination = [destination] if isinstance(destination, int) else list(destination)
    source = [normalize_axis(a, x.ndim, "moveaxis") for a in source]
    destination = [normalize_axis(a, x.ndim, "moveaxis") for a in destination]
    order = [a for a in range(x.ndim) if a not in source]
    for dest, src in sorted(zip(destination, source)):
        order.insert(dest, src)
    return permute_dims(x, order)


def expand_dims(x, /, axis=0) -> Tensor:
    """Insert size-1 axes at the given positions of the result."""
    x = _tensor(x)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    ndim = x.ndim + len(axes)
    axes = normalize_axes(axes, ndim, "expand_dims")
    shape = list(x.shape)
    for a in axes:
        shape.insert(a, 1)
    return reshape(x, shape)


def squeeze(x, /, axis=None) -> Tensor:
    """Remove size-1 axes (all of them when axis is None)."""
    x = _tensor(x)
    if axis is None:
        axes = tuple(i for i, d in enumerate(x.shape) if d == 1)
    else:
        axes = normalize_axes(axis, x.ndim, "squeeze")
        for a in axes:
            if x.shape[a] != 1:
                raise shape_error("squeeze", f"axis {a} has size {x.shape[a]}, not 1", x)
    return reshape(x, tuple(d for i, d in enumerate(x.shape) if i not in axes))


def concat(arrays, /, *, axis=0) -> Tensor:
    """Join tensors along an existing axis (axis=None flattens them first)."""
    tensors = [_tensor(a) for a in arrays]
    if not tensors:
        raise shape_error("concat", "needs at least one tensor")
    if axis is None:
        tensors = [reshape(t, (-1,)) for t in tensors]
        axis = 0
    target = dtypes.result_type(*tensors)
    tensors = [cast(t, target) for t in tensors]
    axis = normalize_axis(axis, tensors[0].ndim, "concat")
    if len(tensors) == 1:
        return tensors[0]
    return apply(CONCAT, *tensors, axis=axis)


def stack(arrays, /, *, axis=0) -> Tensor:
    """Join tensors of equal shape along a new axis."""
    tensors = [_tensor(a) for a in arrays]
    shapes = {t.shape for t in tensors}
    if len(shapes) > 1:
        raise shape_error("stack", "all tensors must have the same shape", *tensors)
    axis = normalize_axis(axis, tensors[0].ndim + 1, "stack")
    return concat([expand_dims(t, axis) for t in tensors], axis=axis)


def split(x, indices_or_sections, /, *, axis=0) -> tuple:
    """Split into equal sections (an int) or at the given indices (a sequence)."""
    x = _tensor(x)
    axis = normalize_axis(axis, x.ndim, "split")
    size = x.shape[axis]
    if isinstance(indices_or_sections, int):
        if indices_or_sections <= 0 or size % indices_or_sections:
            raise shape_error("split", f"axis {axis} of size {size} does not split into "
                              f"{indices_or_sections} equal sections", x)
        step = size // indices_or_sections
        offsets = tuple(range(step, size, step))
    else:
        offsets = tuple(int(i) for i in indices_or_sections)
    return apply(SPLIT, x, offsets=offsets, axis=axis)


def unstack(x, /, *, axis=0) -> tuple:
    """Split along an axis into tensors without that axis."""
    x = _tensor(x)
    axis = normalize_axis(axis, x.ndim, "unstack")
    parts = split(x, x.shape[axis], axis=axis) if x.shape[axis] > 1 else (x,)
    return tuple(squeeze(p, axis) for p in parts)


def flip(x, /, *, axis=None) -> Tensor:
    """Reverse the order of elements along the given axes (all when None)."""
    x = _tensor(x)
    axes = normalize_axes(axis, x.ndim, "flip")
    if not axes:
        return x
    return apply(FLIP, x, axes=axes)


def roll(x, /, shift, *, axis=None) -> Tensor:
    """Shift elements cyclically along axes (the flattened tensor when axis is None)."""
    x = _tensor(x)
    shift = tuple(shift) if isinstance(shift, (list, tuple)) else int(shift)
    if axis is None:
        return reshape(apply(ROLL, reshape(x, (-1,)), shift=shift, axes=0), x.shape)
    axes = tuple(axis) if isinstance(axis, (list, tuple)) else int(axis)
    return apply(ROLL, x, shift=shift, axes=axes)


def tile(x, repetitions, /) -> Tensor:
    """Repeat the whole tensor `repetitions[i]` times along each axis."""
    x = _tensor(x)
    reps = (repetitions,) if isinstance(repetitions, int) else tuple(repetitions)
    ndim = max(len(reps), x.ndim)
    reps = (1,) * (ndim - len(reps)) + reps
    shape = (1,) * (ndim - x.ndim) + x.shape
    # (d0, d1) -> (1, d0, 1, d1) -> broadcast (r0, d0, r1, d1) -> (r0*d0, r1*d1)
    interleaved = reshape(x, tuple(v for d in shape for v in (1, d)))
    expanded = broadcast_to(interleaved, tuple(v for pair in zip(reps, shape) for v in pair))
    return reshape(expanded, tuple(r * d for r, d in zip(reps, shape)))


def repeat(x, repeats, /, *, axis=None) -> Tensor:
    """Repeat each element `repeats` times (an int, or one count per element) along axis."""
    x = _tensor(x)
    if axis is None:
        x = reshape(x, (-1,))
        axis = 0
    axis = normalize_axis(axis, x.ndim, "repeat")
    if isinstance(repeats, int):
        # (.., d, ..) -> (.., d, 1, ..) -> broadcast (.., d, r, ..) -> (.., d*r, ..)
        shape = x.shape
        expanded = broadcast_to(reshape(x, shape[:axis + 1] + (1,) + shape[axis + 1:]),
                                shape[:axis + 1] + (repeats,) + shape[axis + 1:])
        return reshape(expanded, shape[:axis] + (shape[axis] * repeats,) + shape[axis + 1:])
    counts = tuple(int(c) for c in (repeats.tolist() if hasattr(repeats, "tolist") else repeats))
    if len(counts) != x.shape[axis]:
        raise shape_error("repeat", f"{len(counts)} counts for axis {axis} of size "
                          f"{x.shape[axis]}", x)
    return apply(REPEAT_BY_COUNTS, x, counts=counts, axis=axis)
