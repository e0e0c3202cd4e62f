"""Sliding-window geometry and the array-level helpers convolution and pooling share.

A window geometry over the spatial axes is `kernel`, `stride`, `padding` and `dilation`,
one entry per spatial axis; `padding` holds (low, high) pairs. The high side may be
negative: a transposed convolution with `output_padding` is the adjoint of a convolution
whose last input positions no window reaches (see ember/ops/conv.py).

The helpers take the array module `xp` and raw arrays. On NumPy float32/float64 arrays
they run the Numba kernels of `_conv_kernels` (measured there); otherwise (CuPy, float16,
bfloat16) a backend-generic path loops over kernel offsets with strided slices.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from ember.ops import _conv_kernels
from ember.ops._fastmath import KERNEL_DTYPES


def output_size(size: int, kernel: int, stride: int, pad: tuple, dilation: int) -> int:
    """Number of window positions along one axis (floor division, as in PyTorch)."""
    return (size + pad[0] + pad[1] - dilation * (kernel - 1) - 1) // stride + 1


def output_shape(spatial: tuple, kernel, stride, padding, dilation) -> tuple:
    return tuple(output_size(*dims) for dims in zip(spatial, kernel, stride, padding, dilation))


def _use_kernels(xp, *arrays) -> bool:
    return xp is np and all(array.dtype in KERNEL_DTYPES for array in arrays)


def _canonical(array, spatial_axes: int):
    """View of (N, C, *S) with S padded to 3 axes by leading unit axes."""
    fill = (1,) * (3 - spatial_axes)
    return array.reshape(array.shape[:2] + fill + array.shape[2:])


def _canonical_geometry(kernel, stride, padding, dilation):
    fill = 3 - len(kernel)
    return ((1,) * fill + tuple(kernel), (1,) * fill + tuple(stride),
            (0,) * fill + tuple(low for low, _ in padding), (1,) * fill + tuple(dilation))


def _offset_slices(offsets, kernel_out, stride, dilation):
    """Slices of the (low-padded) input read by kernel tap `offsets` at every window."""
    return tuple(slice(k * d, k * d + (o - 1) * s + 1, s)
                 for k, o, s, d in zip(offsets, kernel_out, stride, dilation))


def _padded(xp, x, padding, value=0.0):
    widths = [(0, 0), (0, 0)] + [(low, max(high, 0)) for low, high in padding]
    if not any(low or high for low, high in widths):
        return x
    return xp.pad(x, widths, mode="constant", constant_values=value)


# ---- im2col / col2im --------------------------------------------------------------------------
def is_pointwise(kernel, stride, padding) -> bool:
    """A 1x1 kernel at stride 1 without padding: the input is its own columns."""
    return all(k == 1 for k in kernel) and all(s == 1 for s in stride) and \
        not any(low or high for low, high in padding)


def im2col(xp, x, kernel, stride, padding, dilation):
    """Windows of x (N, C, *S) as columns (N, C, *kernel, *out), zero outside x."""
    out = output_shape(x.shape[2:], kernel, stride, padding, dilation)
    if is_pointwise(kernel, stride, padding):
        return x.reshape(x.shape[:2] + tuple(kernel) + out)  # 1x1 convolution: a free view
    cols = xp.empty(x.shape[:2] + tuple(kernel) + out, dtype=x.dtype)
    if _use_kernels(xp, x):
        canonical = _canonical_geometry(kernel, stride, padding, dilation)
        _conv_kernels.im2col(_canonical(x, x.ndim - 2), *canonical,
                             cols.reshape(x.shape[:2] + canonical[0] + (1,) * (5 - x.ndim)
                                          + out))
        return cols
    source = _padded(xp, x, padding)
    for offsets in itertools.product(*map(range, kernel)):
        cols[(slice(None), slice(None)) + offsets] = source[
            (slice(None), slice(None)) + _offset_slices(offsets, out, stride, dilation)]
    return cols


def col2im(xp, cols, spatial, kernel, stride, padding, dilation):
    """The transpose of `im2col`: cols (N, C, *kernel, *out) summed back into (N, C, *S)."""
    head = cols.shape[:2]
    out = cols.shape[2 + len(kernel):]
    if _use_kernels(xp, cols):
        result = xp.zeros(head + tuple(spatial), dtype=cols.dtype)
        canonical = _canonical_geometry(kernel, stride, padding, dilation)
        fill = (1,) * (3 - len(kernel))
        _conv_kernels.col2im(cols.reshape(head + canonical[0] + fill + out), *canonical,
                             _canonical(result, len(spatial)))
        return result
    padded = tuple(size + low + max(high, 0) for size, (low, high) in zip(spatial, padding))
    buffer = xp.zeros(head + padded, dtype=cols.dtype)
    for offsets in itertools.product(*map(range, kernel)):
        buffer[(slice(None), slice(None)) + _offset_slices(offsets, out, stride, dilation)] += \
            cols[(slice(None), slice(None)) + offsets]
    crop = tuple(slice(low, low + size) for size, (low, _) in zip(spatial, padding))
    return buffer[(slice(None), slice(None)) + crop]


# ---- pooling ----------------------------------------------------------------------------------
def max_pool(xp, x, kernel, stride, padding, dilation):
    """Window maxima of x (N, C, *S) and their flat indices into the S plane (int64)."""
    out = output_shape(x.shape[2:], kernel, stride, padding, dilation)
    head = x.shape[:2]
    if _use_kernels(xp, x):
        values = xp.empty(head + out, dtype=x.dtype)
        indices = xp.empty(head + out, dtype=np.int64)
        if len(kernel) <= 2 and all(d == 1 for d in dilation) and \
                not any(low or high > 0 for low, high in padding):
            plane = (1,) * (2 - len(kernel))  # 1-d pooling: a unit H axis
            geometry = plane + tuple(kernel), plane + tuple(stride)
            planes = (-1,) + plane + x.shape[2:]
            _conv_kernels.max_pool_planes(x.reshape(planes), *geometry[0], *geometry[1],
                                          values.reshape((-1,) + plane + out),
                                          indices.reshape((-1,) + plane + out))
            return values, indices
        fill = (1,) * (3 - len(kernel))
        _conv_kernels.max_pool(_canonical(x, len(kernel)),
                               *_canonical_geometry(kernel, stride, padding, dilation),
                               values.reshape(head + fill + out),
                               indices.reshape(head + fill + out))
        return values, indices
    source = _padded(xp, x, padding, value=-np.inf)
    taps = xp.stack([source[(slice(None), slice(None)) +
                            _offset_slices(offsets, out, stride, dilation)]
                     for offsets in itertools.product(*map(range, kernel))], axis=2)
    best = xp.argmax(taps, axis=2)
    values = xp.take_along_axis(taps, best[:, :, None], axis=2)[:, :, 0]
    flat = xp.zeros(best.shape, dtype=np.int64)
    remaining = best
    for axis in reversed(range(len(kernel))):  # unravel the tap index, last axis fastest
        tap = remaining % kernel[axis]
        remaining = remaining // kernel[axis]
        grid_shape = [1] * len(kernel)
        grid_shape[axis] = out[axis]
        start = xp.arange(out[axis]).reshape(grid_shape) * stride[axis] - padding[axis][0]
        flat = flat + (start + tap * dilation[axis]) * math.prod(x.shape[3 + axis:])
    return values, flat


def plane_scatter(xp, values, indices, spatial):
    """Zeros of shape (N, C, *spatial) with values added at flat plane indices (repeats add)."""
    head = values.shape[:2]
    plane = math.prod(spatial)
    out = xp.zeros(head + (plane,), dtype=values.dtype)
    flat_values = values.reshape(head + (-1,))
    flat_indices = indices.reshape(head + (-1,))
    if _use_kernels(xp, values):
        _conv_kernels.plane_scatter(flat_values, flat_indices, out)
    else:  # CuPy (atomics) and CPU float16/bfloat16 only; float32/64 CPU take the kernel
        rows = xp.arange(head[0] * head[1]).reshape(head + (1,)) * plane
        xp.add.at(out.reshape(-1), (rows + flat_indices).reshape(-1), flat_values.reshape(-1))
    return out.reshape(head + tuple(spatial))


def plane_gather(xp, x, indices):
    """x[n, c].flat[indices[n, c, ...]]: the values that `plane_scatter` would route back."""
    head = x.shape[:2]
    flat = xp.take_along_axis(x.reshape(head + (-1,)), indices.reshape(head + (-1,)), axis=2)
    return flat.reshape(indices.shape)


def _tiled(kernel, stride, padding) -> bool:
    """Windows that tile the input without overlap or padding (2x2/2 pooling, global
    pooling): the transpose of their sum is a broadcast, no scatter needed."""
    return all(k == s and low == 0 and high <= 0
               for k, s, (low, high) in zip(kernel, stride, padding))


def _tile_shape(head, out, kernel) -> tuple:
    return head + tuple(size for pair in zip(out, kernel) for size in pair)


def window_sum(xp, x, kernel, stride, padding):
    """Sum of every window of x (N, C, *S), zero padding (average pooling's numerator)."""
    unit = (1,) * len(kernel)
    out = output_shape(x.shape[2:], kernel, stride, padding, unit)
    if all(o == 1 for o in out) and _tiled(kernel, stride, padding):
        # One window per plane (global pooling): a plain sum, 8x faster than the loop below
        # over its many taps. Smaller tiles stay with the loop: NumPy sums short
        # interleaved axes of a reshaped input slower than it adds a few strided slices.
        window = x[(slice(None), slice(None)) + tuple(slice(0, k) for k in kernel)]
        return window.sum(axis=tuple(range(2, x.ndim)), keepdims=True, dtype=x.dtype)
    source = _padded(xp, x, padding)
    total = None
    # A loop over kernel offsets: each pass adds one strided slice of output size.
    for offsets in itertools.product(*map(range, kernel)):
        tap = source[(slice(None), slice(None)) + _offset_slices(offsets, out, stride, unit)]
        total = tap.copy() if total is None else xp.add(total, tap, out=total)
    return total


def window_sum_transpose(xp, gy, spatial, kernel, stride, padding):
    """The transpose of `window_sum`: every window's value added back over its taps."""
    head, out = gy.shape[:2], gy.shape[2:]
    if _tiled(kernel, stride, padding):
        spread = xp.broadcast_to(gy.reshape(_tile_shape(head, out, (1,) * len(kernel))),
                                 _tile_shape(head, out, kernel))
        covered = tuple(o * k for o, k in zip(out, kernel))
        if covered == tuple(spatial):
            return spread.reshape(head + covered)
        result = xp.zeros(head + tuple(spatial), dtype=gy.dtype)  # uncovered tail: zero
        result[(slice(None), slice(None)) + tuple(slice(0, c) for c in covered)] = \
            spread.reshape(head + covered)
        return result
    taps = xp.broadcast_to(gy.reshape(head + (1,) * len(kernel) + out),
                           head + tuple(kernel) + out)
    return col2im(xp, taps, spatial, kernel, stride, padding, (1,) * len(kernel))
