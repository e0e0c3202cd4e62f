"""Pooling primitives over the spatial axes of (N, C, *S) tensors, 1-d to 3-d alike.

- `MaxPool(x) -> (y, indices)`: window maxima and their flat positions in the S plane
  (PyTorch's `return_indices` format). vjp: `PlaneScatter` of gy to those positions.
- `PlaneScatter(values, indices)` / `PlaneGather(x, indices)`: adjoint pair routing values
  to and from flat plane positions, each the other's vjp, so max pooling has gradients of
  any order. The scatter runs a Numba kernel on CPU (no `np.add.at`, see `_windows`).
- `WindowSum(x)` / `WindowSumTranspose(g)`: the sum of every window (average pooling's
  numerator; the divisor is a constant) and its adjoint, again each the other's vjp.
- `AdaptiveMaxIndices(x)`: where the maxima of adaptive max pooling sit (no gradient); the
  values are then a `PlaneGather`, differentiable like max pooling's.
Geometry params match ember/ops/conv.py: `padding` is one (low, high) pair per axis.
"""
from __future__ import annotations

import numpy as np

from ember._core import dtypes
from ember._core.primitive import AbstractValue, Primitive, apply
from ember._core.tensor import Tensor
from ember.ops import _windows


class MaxPool(Primitive):
    def infer(self, x, kernel_size, stride, padding, dilation):
        out = _windows.output_shape(x.shape[2:], kernel_size, stride, padding, dilation)
        shape = x.shape[:2] + out
        return (AbstractValue(shape, x.dtype, x.device),
                AbstractValue(shape, dtypes.int64, x.device))

    def forward(self, xp, x, kernel_size, stride, padding, dilation):
        return _windows.max_pool(xp, x, kernel_size, stride, padding, dilation)

    def vjp(self, ctx, gy, gindices):
        spatial = ctx.inputs[0].shape[2:]
        return (apply(PLANE_SCATTER, gy, ctx.output(1), spatial=spatial),)


class PlaneScatter(Primitive):
    """(N, C, *S') values -> zeros (N, C, *spatial) plus values at their plane indices."""

    def infer(self, values, indices, spatial):
        return AbstractValue(values.shape[:2] + tuple(spatial), values.dtype, values.device)

    def forward(self, xp, values, indices, spatial):
        return _windows.plane_scatter(xp, values, indices, spatial)

    def vjp(self, ctx, g):
        return apply(PLANE_GATHER, g, ctx.inputs[1]), None


class PlaneGather(Primitive):
    """x (N, C, *S) -> x[n, c].flat[indices[n, c, ...]], shaped like indices."""

    def infer(self, x, indices):
        return AbstractValue(indices.shape, x.dtype, x.device)

    def forward(self, xp, x, indices):
        return _windows.plane_gather(xp, x, indices)

    def vjp(self, ctx, g):
        x, indices = ctx.inputs
        return apply(PLANE_SCATTER, g, indices, spatial=x.shape[2:]), None


class WindowSum(Primitive):
    def infer(self, x, kernel_size, stride, padding):
        unit = (1,) * len(kernel_size)
        out = _windows.output_shape(x.shape[2:], kernel_size, stride, padding, unit)
        return AbstractValue(x.shape[:2] + out, x.dtype, x.device)

    def forward(self, xp, x, kernel_size, stride, padding):
        return _windows.window_sum(xp, x, kernel_size, stride, padding)

    def vjp(self, ctx, g):
        return (apply(WINDOW_SUM_TRANSPOSE, g, spatial=ctx.inputs[0].shape[2:], **ctx.params),)


class WindowSumTranspose(Primitive):
    def infer(self, g, spatial, kernel_size, stride, padding):
        return AbstractValue(g.shape[:2] + tuple(spatial), g.dtype, g.device)

    def forward(self, xp, g, spatial, kernel_size, stride, padding):
        return _windows.window_sum_transpose(xp, g, spatial, kernel_size, stride, padding)

    def vjp(self, ctx, gg):
        params = {k: v for k, v in ctx.params.items() if k != "spatial"}
        return (apply(WINDOW_SUM, gg, **params),)


def adaptive_windows(size: int, out: int) -> tuple:
    """Start and end (exclusive) of each adaptive-pooling window along one axis (PyTorch's
    rule: floor(i * size / out) to ceil((i + 1) * size / out))."""
    index = np.arange(out)
    return (index * size) // out, -((-(index + 1) * size) // out)


class AdaptiveMaxIndices(Primitive):
    """Flat plane indices of the maxima of adaptive max pooling to `output_size`."""

    differentiable = False

    def infer(self, x, output_size):
        return AbstractValue(x.shape[:2] + tuple(output_size), dtypes.int64, x.device)

    def forward(self, xp, x, output_size):
        spatial = x.shape[2:]
        # Every window padded to the longest one by repeating its last element (which leaves
        # the maximum unchanged): positions has shape (*output_size, longest product).
        positions = np.zeros((1,) * (2 * len(spatial)), dtype=np.int64)
        for axis, (size, out) in enumerate(zip(spatial, output_size)):
            start, end = adaptive_windows(size, out)
            longest = int((end - start).max())
            taps = np.minimum(start[:, None] + np.arange(longest), end[:, None] - 1)
            shape = [1] * (2 * len(spatial))
            shape[axis], shape[len(spatial) + axis] = out, longest
            positions = positions * size + taps.reshape(shape)
        positions = xp.asarray(positions.reshape(tuple(output_size) + (-1,)))
        head = x.shape[:2]
        windows = xp.take(x.reshape(head + (-1,)), positions, axis=2)  # (N, C, *out, taps)
        best = xp.argmax(windows, axis=-1)
        return xp.take_along_axis(xp.broadcast_to(positions, windows.shape),
                                  best[..., None], axis=-1)[..., 0]


MAX_POOL, PLANE_SCATTER, PLANE_GATHER = MaxPool(), PlaneScatter(), PlaneGather()
WINDOW_SUM, WINDOW_SUM_TRANSPOSE = WindowSum(), WindowSumTranspose()
ADAPTIVE_MAX_INDICES = AdaptiveMaxIndices()


# ---- public functions -------------------------------------------------------------------------
def _pairs(padding) -> tuple:
    return tuple((int(low), int(high)) for low, high in padding)


def max_pool(x: Tensor, *, kernel_size: tuple, stride: tuple, padding: tuple,
             dilation: tuple) -> tuple:
    """Window maxima of x (N, C, *S) and their flat indices into each S plane.

    `padding` is one (low, high) pair per spatial axis; padded taps never win.

    >>> import ember
    >>> from ember.ops.pool import max_pool
    >>> values, indices = max_pool(ember.arange(16.0).reshape((1, 1, 4, 4)),
    ...     kernel_size=(2, 2), stride=(2, 2), padding=((0, 0), (0, 0)), dilation=(1, 1))
    >>> values.numpy().ravel().tolist(), indices.numpy().ravel().tolist()
    ([5.0, 7.0, 13.0, 15.0], [5, 7, 13, 15])
    """
    return apply(MAX_POOL, x, kernel_size=tuple(kernel_size), stride=tuple(stride),
                 padding=_pairs(padding), dilation=tuple(dilation))


def window_sum(x: Tensor, *, kernel_size: tuple, stride: tuple, padding: tuple) -> Tensor:
    """Sum of every window of x (N, C, *S), zero padded by (low, high) pairs per axis.

    >>> import ember
    >>> from ember.ops.pool import window_sum
    >>> window_sum(ember.ones((1, 1, 4)), kernel_size=(2,), stride=(1,),
    ...            padding=((1, 0),)).numpy().ravel().tolist()
    [1.0, 2.0, 2.0, 2.0]
    """
    return apply(WINDOW_SUM, x, kernel_size=tuple(kernel_size), stride=tuple(stride),
                 padding=_pairs(padding))


def plane_gather(x: Tensor, indices: Tensor) -> Tensor:
    """x[n, c].flat[indices[n, c, ...]] (differentiable in x), shaped like indices.

    >>> import ember
    >>> from ember.ops.pool import plane_gather
    >>> plane_gather(ember.arange(4.0).reshape((1, 1, 2, 2)), ember.tensor([[[3, 0]]]))
    tensor([[[3., 0.]]])
    """
    return apply(PLANE_GATHER, x, indices)


def adaptive_max_indices(x: Tensor, output_size: tuple) -> Tensor:
    """Flat plane indices of the window maxima of adaptive max pooling (no gradient).

    >>> import ember
    >>> from ember.ops.pool import adaptive_max_indices
    >>> adaptive_max_indices(ember.tensor([[[1.0, 5.0, 2.0, 4.0, 3.0]]]), (2,))
    tensor([[[1, 3]]])
    """
    return apply(ADAPTIVE_MAX_INDICES, x, output_size=tuple(int(s) for s in output_size))


def window_count(spatial: tuple, kernel_size: tuple, stride: tuple, padding: tuple,
                 count_include_pad: bool) -> np.ndarray:
    """Average pooling's divisor per output position, PyTorch's rule: taps inside the input,
    or with `count_include_pad` inside the input plus its (low-side, symmetric) padding, but
    never the extra high-side taps that ceil_mode adds; multiplied over the axes.

    >>> window_count((4,), (3,), (1,), ((1, 1),), False).tolist()
    [2.0, 3.0, 3.0, 2.0]
    """
    counts = np.ones((), dtype=np.float64)
    for size, k, s, (low, high) in zip(spatial, kernel_size, stride, padding):
        start = np.arange(_windows.output_size(size, k, s, (low, high), 1)) * s - low
        if count_include_pad:
            count = np.minimum(start + k, size + low) - start
        else:
            count = np.minimum(start + k, size) - np.maximum(start, 0)
        counts = np.multiply.outer(counts, count.astype(np.float64))
    return counts
