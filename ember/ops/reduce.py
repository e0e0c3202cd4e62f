"""Reductions and scans: sum, prod, max/min, mean/var/std, logsumexp, all/any, cumsum/cumprod."""
from __future__ import annotations

import math

import numpy as np

from ember._core import dtypes
from ember._core.errors import DTypeError, user_frame
from ember._core.primitive import AbstractValue, Primitive, apply
from ember._core.shapes import normalize_axes, normalize_axis, reduced_shape
from ember._core.tensor import Tensor
from ember.ops import movement
from ember.ops._util import as_tensor, cast, unary_float
from ember.ops.elementwise import astype, equal, exp, log, sqrt, where
from ember.ops.logic import isfinite


_BLAS_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_GEMV_FROM = 64  # reduced elements per row below which NumPy's own loop is as fast


class Reduction(Primitive):
    """Reduce over `axes` (a sorted tuple); `keepdims` keeps them as size 1."""

    def infer(self, x, axes, keepdims):
        return AbstractValue(reduced_shape(x.shape, axes, keepdims), x.dtype, x.device)


def _expand_back(ctx, value: Tensor) -> Tensor:
    """Reshape a reduced value so it broadcasts against the reduction's input."""
    x = ctx.inputs[0]
    if ctx.params["keepdims"] or value.ndim == 0:  # 0-d already broadcasts against anything
        return value
    return movement.reshape(value, reduced_shape(x.shape, ctx.params["axes"], True))


class Sum(Reduction):
    def forward(self, xp, x, axes, keepdims):
        lead = len(axes)
        if xp is np and x.dtype in _BLAS_DTYPES and axes == tuple(range(lead)) and \
                lead < x.ndim and x.flags.c_contiguous:
            # Leading axes of a C-contiguous float array (a bias gradient): ones @ x as a
            # GEMV, which reads the rows on both cores; NumPy's axis-0 sum runs on one and
            # measured 3.4x slower on 700x10000 float32. Both add the rows in order, so the
            # rounding is alike (NumPy pairs up only along a contiguous axis).
            rows = math.prod(x.shape[:lead])
            if rows > 1 and x.size >= _GEMV_FROM * rows:
                total = np.ones(rows, x.dtype) @ x.reshape(rows, -1)
                return total.reshape(reduced_shape(x.shape, axes, keepdims))
        return xp.sum(x, axis=axes, keepdims=keepdims, dtype=x.dtype)

    def vjp(self, ctx, gy):
        return (movement.broadcast_to(_expand_back(ctx, gy), ctx.inputs[0].shape),)


class Max(Reduction):
    np_name = "max"

    def forward(self, xp, x, axes, keepdims):
        return getattr(xp, self.np_name)(x, axis=axes, keepdims=keepdims)

    def vjp(self, ctx, gy):
        # Ties share the gradient evenly, so the result is a valid subgradient.
        x = ctx.inputs[0]
        winners = astype(equal(x, _expand_back(ctx, ctx.out.detach())), gy.dtype)
        count = sum(winners, axis=ctx.params["axes"], keepdims=True)
        return (winners * _expand_back(ctx, gy) / count,)


class Min(Max):
    np_name = "min"


class Prod(Reduction):
    def forward(self, xp, x, axes, keepdims):
        return xp.prod(x, axis=axes, keepdims=keepdims, dtype=x.dtype)

    def vjp(self, ctx, gy):
        # d prod / d x_i = product of all other elements: exclusive cumulative products from
        # both sides, which stays exact when some x_i are zero (unlike prod / x_i).
        x = ctx.inputs[0]
        axes = ctx.params["axes"]
        kept = [a for a in range(x.ndim) if a not in axes]
        order = kept + list(axes)
        flat = movement.reshape(movement.permute_dims(x, order),
                                tuple(x.shape[a] for a in kept) + (-1,))
        size = flat.shape[-1]
        ones = Tensor(x._device.xp.ones(flat.shape[:-1] + (1,), x._data.dtype), x._device)
        head = movement.split(flat, (size - 1,), axis=-1)[0]
        tail = movement.split(flat, (1,), axis=-1)[1]
        left = cumprod(movement.concat([ones, head], axis=-1), axis=-1)
        right = movement.flip(cumprod(movement.flip(
            movement.concat([tail, ones], axis=-1), axis=-1), axis=-1), axis=-1)
        others = movement.reshape(left * right, tuple(x.shape[a] for a in order))
        inverse = sorted(range(len(order)), key=order.__getitem__)
        others = movement.permute_dims(others, inverse)
        return (others * _expand_back(ctx, gy),)


class Cumsum(Primitive):
    def infer(self, x, axis):
        return AbstractValue(x.shape, x.dtype, x.device)

    def forward(self, xp, x, axis):
        return xp.cumsum(x, axis=axis, dtype=x.dtype)

    def vjp(self, ctx, gy):
        axis = ctx.params["axis"]
        return (movement.flip(cumsum(movement.flip(gy, axis=axis), axis=axis), axis=axis),)


class Cumprod(Primitive):
    def infer(self, x, axis):
        return AbstractValue(x.shape, x.dtype, x.device)

    def forward(self, xp, x, axis):
        return xp.cumprod(x, axis=axis, dtype=x.dtype)

    def vjp(self, ctx, gy):
        # sum_{j >= i} gy_j * out_j / x_i; exact for nonzero x (zeros give inf/nan, as the
        # closed form has no better answer without an O(n^2) expansion).
        axis = ctx.params["axis"]
        weighted = movement.flip(cumsum(movement.flip(gy * ctx.out, axis=axis), axis=axis),
                                 axis=axis)
        return (weighted / ctx.inputs[0],)


class Test(Primitive):
    """all/any: boolean reductions (no gradient)."""

    differentiable = False

    def __init__(self, name):
        self.name = name

    def infer(self, x, axes, keepdims):
        return AbstractValue(reduced_shape(x.shape, axes, keepdims), dtypes.bool_, x.device)

    def forward(self, xp, x, axes, keepdims):
        return getattr(xp, self.name)(x, axis=axes, keepdims=keepdims)


SUM, MAX, MIN, PROD = Sum(), Max(), Min(), Prod()
CUMSUM, CUMPROD, ALL, ANY = Cumsum(), Cumprod(), Test("all"), Test("any")


# ---- public functions -------------------------------------------------------------------------
def _reduce(prim, x, axis, keepdims):
    x = x if isinstance(x, Tensor) else as_tensor(x)
    axes = normalize_axes(axis, x.ndim, prim.name)
    return apply(prim, x, axes=axes, keepdims=bool(keepdims))


def sum(x, /, *, axis=None, dtype=None, keepdims=False) -> Tensor:
    """Sum over axes; bool and small integers accumulate in int64 (Array API default).

    >>> import ember
    >>> ember.sum(ember.ones((2, 3)), axis=1)
    tensor([3., 3.])
    """
    x = x if isinstance(x, Tensor) else as_tensor(x)
    if dtype is not None:
        x = cast(x, dtypes.as_dtype(dtype))
    elif x._data.dtype.kind in "bi" and x._data.dtype != dtypes.int64.np:
        x = cast(x, dtypes.int64)
    elif x._data.dtype.kind == "u" and x._data.dtype != dtypes.uint64.np:
        x = cast(x, dtypes.uint64)
    return _reduce(SUM, x, axis, keepdims)


def prod(x, /, *, axis=None, dtype=None, keepdims=False) -> Tensor:
    """Product over axes (integers accumulate in int64)."""
    x = x if isinstance(x, Tensor) else as_tensor(x)
    if dtype is not None:
        x = cast(x, dtypes.as_dtype(dtype))
    elif x._data.dtype.kind in "bi":
        x = cast(x, dtypes.int64)
    return _reduce(PROD, x, axis, keepdims)


def max(x, /, *, axis=None, keepdims=False) -> Tensor:
    """Largest element over axes; ties share the gradient."""
    return _reduce(MAX, x, axis, keepdims)


def min(x, /, *, axis=None, keepdims=False) -> Tensor:
    """Smallest element over axes; ties share the gradient."""
    return _reduce(MIN, x, axis, keepdims)


def all(x, /, *, axis=None, keepdims=False) -> Tensor:
    return _reduce(ALL, x, axis, keepdims)


def any(x, /, *, axis=None, keepdims=False) -> Tensor:
    return _reduce(ANY, x, axis, keepdims)


def _require_float(x, op):
    x = x if isinstance(x, Tensor) else as_tensor(x)
    if x._data.dtype.kind not in "fV":
        raise DTypeError(f"{op} expects a floating-point tensor, got {x.dtype.name} at "
                         f"{user_frame()}; cast first, e.g. x.astype(ember.float32)")
    return x


def mean(x, /, *, axis=None, keepdims=False) -> Tensor:
    """Arithmetic mean over axes (floating tensors only, as in the Array API)."""
    x = _require_float(x, "mean")
    axes = normalize_axes(axis, x.ndim, "mean")
    count = math.prod(x.shape[a] for a in axes)
    return sum(x, axis=axes, keepdims=keepdims) / count


def var(x, /, *, axis=None, correction=0.0, keepdims=False) -> Tensor:
    """Variance with `correction` degrees of freedom removed (1.0 gives the unbiased one)."""
    x = _require_float(x, "var")
    axes = normalize_axes(axis, x.ndim, "var")
    count = math.prod(x.shape[a] for a in axes)
    centered = x - mean(x, axis=axes, keepdims=True)
    return sum(centered * centered, axis=axes, keepdims=keepdims) / (count - correction)


def std(x, /, *, axis=None, correction=0.0, keepdims=False) -> Tensor:
    """Standard deviation: sqrt of `var`."""
    return sqrt(var(x, axis=axis, correction=correction, keepdims=keepdims))


def logsumexp(x, /, *, axis=None, keepdims=False) -> Tensor:
    """log(sum(exp(x))) computed stably by shifting by the (constant) maximum."""
    x = unary_float(x)
    axes = normalize_axes(axis, x.ndim, "logsumexp")
    shift = max(x.detach(), axis=axes, keepdims=True)
    shift = where(isfinite(shift), shift, 0.0)  # an all -inf slice shifts by 0, not by inf
    out = log(sum(exp(x - shift), axis=axes, keepdims=True)) + shift
    return out if keepdims else movement.squeeze(out, axes) if axes else out


def cumulative_sum(x, /, *, axis=None, dtype=None, include_initial=False) -> Tensor:
    """Array API cumulative sum; `include_initial` prepends a zero."""
    x = x if isinstance(x, Tensor) else as_tensor(x)
    if dtype is not None:
        x = cast(x, dtypes.as_dtype(dtype))
    if axis is None:
        if x.ndim > 1:
            raise DTypeError("cumulative_sum needs axis= for tensors with more than one "
                             "dimension")
        axis = 0
    axis = normalize_axis(axis, x.ndim, "cumulative_sum")
    out = apply(CUMSUM, x, axis=axis)
    if include_initial:
        zero_shape = list(x.shape)
        zero_shape[axis] = 1
        zero = Tensor(x._device.xp.zeros(zero_shape, x._data.dtype), x._device)
        out = movement.concat([zero, out], axis=axis)
    return out


def cumsum(x, /, axis=None, *, dtype=None) -> Tensor:
    """Cumulative sum along an axis (the flattened tensor when axis is None, like NumPy)."""
    x = x if isinstance(x, Tensor) else as_tensor(x)
    if axis is None:
        x, axis = movement.reshape(x, (-1,)), 0
    return cumulative_sum(x, axis=axis, dtype=dtype)


def cumprod(x, /, axis=None, *, dtype=None) -> Tensor:
    """Cumulative product along an axis (flattened when axis is None)."""
    x = x if isinstance(x, Tensor) else as_tensor(x)
    if dtype is not None:
        x = cast(x, dtypes.as_dtype(dtype))
    if axis is None:
        x, axis = movement.reshape(x, (-1,)), 0
    return apply(CUMPROD, x, axis=normalize_axis(axis, x.ndim, "cumprod"))


def sum_to_shape(x: Tensor, shape: tuple) -> Tensor:
    """Sum a broadcast result back down to `shape` (the gradient of broadcasting)."""
    if x.shape == tuple(shape):
        return x
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, d in enumerate(shape)
                                      if d == 1 and x.shape[i + lead] != 1)
    out = sum(x, axis=axes, keepdims=True) if axes else x
    return movement.reshape(out, shape)
