"""Resampling: `interpolate` (alias `upsample`) in nearest, nearest-exact, (bi/tri)linear and
area modes, with PyTorch's index arithmetic.

Every mode is separable: the spatial axes are resampled one after another, each with
gathers along one axis (`take`) and a weighted sum, so gradients of any order come from
existing ops. An integer nearest-neighbour upscale takes a faster route, a broadcast and a
reshape, whose gradient is a plain sum rather than a scatter. Source positions are computed
the way PyTorch's CPU kernels compute them (float32 arithmetic for nearest, the input's
precision for linear modes), so results agree with PyTorch to the last bit of the index.
"""
from __future__ import annotations

import math

import numpy as np

from ember._core.errors import EmberError, user_frame
from ember._core.primitive import shape_error
from ember._core.tensor import Tensor
from ember.nn.functional._checks import expect_float
from ember.nn.functional.pool import adaptive_avg_pool
from ember.ops.movement import broadcast_to, expand_dims, reshape
from ember.ops.scatter import take

_LINEAR_MODES = {"linear": 1, "bilinear": 2, "trilinear": 3}
_MODES = ("nearest", "nearest-exact", "area", *_LINEAR_MODES)


def _output_sizes(op, x, size, scale_factor) -> tuple:
    """(output sizes, scale factors or None per axis)."""
    spatial = x.ndim - 2
    if (size is None) == (scale_factor is None):
        raise EmberError(f"{op}: give exactly one of size or scale_factor at {user_frame()}")
    if size is not None:
        sizes = (size,) * spatial if isinstance(size, int) else tuple(size)
        if len(sizes) != spatial or min(sizes) < 1:
            raise shape_error(op, f"size must be a positive int or {spatial} positive ints, "
                              f"got {size!r}", x)
        return tuple(int(s) for s in sizes), (None,) * spatial
    scales = (scale_factor,) * spatial if isinstance(scale_factor, (int, float)) else \
        tuple(scale_factor)
    if len(scales) != spatial or min(scales) <= 0:
        raise shape_error(op, f"scale_factor must be a positive number or {spatial} of them, "
                          f"got {scale_factor!r}", x)
    sizes = tuple(math.floor(n * float(s)) for n, s in zip(x.shape[2:], scales))
    if min(sizes) < 1:
        raise shape_error(op, f"scale_factor={scale_factor!r} gives an empty output", x)
    return sizes, tuple(float(s) for s in scales)


def _scale(size: int, out: int, factor, align_corners: bool, dtype):
    """PyTorch's area_pixel_compute_scale: how far apart output samples sit in the input."""
    if align_corners:
        return dtype.type(size - 1) / dtype.type(out - 1) if out > 1 else dtype.type(0)
    if factor is not None:
        return dtype.type(1.0 / factor)
    return dtype.type(size) / dtype.type(out)


def _nearest_sources(size, out, factor, exact, spatial) -> np.ndarray:
    # PyTorch's 2-d nearest kernel copies (out == size) or doubles (out == 2 size) whatever
    # the scale factor; its 1-d and 3-d kernels sample with the factor when one is given.
    shortcut = not exact and (factor is None or spatial == 2)
    if shortcut and out == size:
        return np.arange(out)
    if shortcut and out == 2 * size:
        return np.arange(out) >> 1
    scale = _scale(size, out, factor, False, np.dtype(np.float32))
    positions = np.arange(out, dtype=np.float32) + np.float32(0.5 if exact else 0.0)
    return np.minimum(np.floor(positions * scale).astype(np.int64), size - 1)


def _along(values: np.ndarray, x: Tensor, axis: int) -> Tensor:
    """A constant that broadcasts along `axis` of x (and is on x's device, in x's dtype)."""
    shape = (-1,) + (1,) * (x.ndim - 1 - axis)
    return Tensor(x._device.xp.asarray(values.astype(x._data.dtype).reshape(shape)), x._device)


def _index(values: np.ndarray, x: Tensor) -> Tensor:
    return Tensor(x._device.xp.asarray(values), x._device)


def _nearest_axis(x: Tensor, axis: int, out: int, factor, exact: bool) -> Tensor:
    size = x.shape[axis]
    sources = _nearest_sources(size, out, factor, exact, x.ndim - 2)
    repeat = out // size
    if out == repeat * size and np.array_equal(sources, np.arange(out) // repeat):
        # An integer upscale: repeat every element (gradient: a sum over the copies).
        widened = expand_dims(x, axis=axis + 1)
        shape = x.shape[:axis + 1] + (repeat,) + x.shape[axis + 1:]
        return reshape(broadcast_to(widened, shape), x.shape[:axis] + (out,)
                       + x.shape[axis + 1:])
    return take(x, _index(sources, x), axis=axis)


def _linear_axis(x: Tensor, axis: int, out: int, factor, align_corners: bool) -> Tensor:
    size = x.shape[axis]
    if out == size:  # PyTorch copies an axis that keeps its size, whatever the factor
        return x
    dtype = np.dtype(np.float64 if x._data.dtype == np.float64 else np.float32)
    scale = _scale(size, out, factor, align_corners, dtype)
    positions = np.arange(out, dtype=dtype)
    if align_corners:
        source = scale * positions
    else:
        source = np.maximum(scale * (positions + dtype.type(0.5)) - dtype.type(0.5), 0)
    low = np.minimum(np.floor(source).astype(np.int64), size - 1)
    high = np.minimum(low + 1, size - 1)
    weight = np.clip(source - low, 0, 1).astype(dtype)
    return (take(x, _index(low, x), axis=axis) * _along(1 - weight, x, axis)
            + take(x, _index(high, x), axis=axis) * _along(weight, x, axis))


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest",
                align_corners: bool | None = None, recompute_scale_factor: bool | None = None,
                antialias: bool = False) -> Tensor:
    """Resample (N, C, *S) to `size` or by `scale_factor`, as torch.nn.functional.interpolate.

    Modes: 'nearest', 'nearest-exact', 'linear' (3-d input), 'bilinear' (4-d),
    'trilinear' (5-d) and 'area' (adaptive average pooling).

    >>> import ember
    >>> x = ember.tensor([[[1.0, 2.0]]])
    >>> ember.nn.functional.interpolate(x, scale_factor=2)
    tensor([[[1., 1., 2., 2.]]])
    >>> ember.nn.functional.interpolate(x, size=3, mode='linear', align_corners=True)
    tensor([[[1. , 1.5, 2. ]]])
    """
    op = "interpolate"
    expect_float(op, input)
    if mode not in _MODES:
        raise EmberError(f"{op}: mode {mode!r} is not supported; expected one of "
                         f"{list(_MODES)} at {user_frame()}")
    if antialias:
        raise EmberError(f"{op}: antialias=True is not supported at {user_frame()}")
    if input.ndim not in (3, 4, 5):
        raise shape_error(op, "expected a 3-d, 4-d or 5-d input laid out as (N, C, *S)",
                          input)
    if mode in _LINEAR_MODES:
        if input.ndim - 2 != _LINEAR_MODES[mode]:
            raise shape_error(op, f"mode {mode!r} needs a {_LINEAR_MODES[mode] + 2}-d input",
                              input)
    elif align_corners is not None:
        raise EmberError(f"{op}: align_corners can only be set with the linear modes "
                         f"(linear, bilinear, trilinear), not {mode!r} at {user_frame()}")
    sizes, factors = _output_sizes(op, input, size, scale_factor)
    if recompute_scale_factor:
        factors = (None,) * len(sizes)  # index math from the sizes, as PyTorch does
    if mode == "area":
        return adaptive_avg_pool(op, input.ndim - 2, input, sizes)
    y = input
    for axis, (out, factor) in enumerate(zip(sizes, factors), start=2):
        if mode in _LINEAR_MODES:
            y = _linear_axis(y, axis, out, factor, bool(align_corners))
        else:
            y = _nearest_axis(y, axis, out, factor, mode == "nearest-exact")
    return y


def upsample(input: Tensor, size=None, scale_factor=None, mode: str = "nearest",
             align_corners: bool | None = None) -> Tensor:
    """The older name of `interpolate` (kept by PyTorch too).

    >>> import ember
    >>> ember.nn.functional.upsample(ember.ones((1, 1, 2, 2)), scale_factor=2).shape
    (1, 1, 4, 4)
    """
    return interpolate(input, size, scale_factor, mode, align_corners)
