"""Vector and matrix norms (Array API `vector_norm`/`matrix_norm`, NumPy-style `norm`).

Vector norms are one primitive: its vjp gives the subgradient 0 at the origin (where
sqrt(sum(x^2)) as a composite would give 0/0 = NaN, a common training-time surprise) and
keeps the forward a single reduction. Matrix norms are composites of vector norms, sums,
max/min and singular values.
"""
from __future__ import annotations

import math

from ember._core.primitive import AbstractValue, Primitive, apply, shape_error
from ember._core.shapes import normalize_axes, reduced_shape
from ember._core.tensor import Tensor
from ember.ops import movement
from ember.ops._util import unary_float
from ember.ops.decomp import svdvals
from ember.ops.elementwise import abs as elementwise_abs
from ember.ops.elementwise import astype, sign, where
from ember.ops.reduce import max as reduce_max
from ember.ops.reduce import min as reduce_min
from ember.ops.reduce import sum as reduce_sum

__all__ = ["matrix_norm", "norm", "vector_norm"]

_INF = math.inf


class VectorNorm(Primitive):
    """(sum |x|^ord)^(1/ord) over `axes`; ord may also be 0 (count), inf and -inf."""

    def infer(self, x, ord, axes, keepdims):
        return AbstractValue(reduced_shape(x.shape, axes, keepdims), x.dtype, x.device)

    def forward(self, xp, x, ord, axes, keepdims):
        if ord == 2:
            out = xp.sqrt(xp.sum(x * x, axis=axes, keepdims=keepdims))
        elif ord == 1:
            out = xp.sum(xp.abs(x), axis=axes, keepdims=keepdims)
        elif ord == _INF:
            out = xp.max(xp.abs(x), axis=axes, keepdims=keepdims)
        elif ord == -_INF:
            out = xp.min(xp.abs(x), axis=axes, keepdims=keepdims)
        elif ord == 0:
            out = xp.sum(x != 0, axis=axes, keepdims=keepdims)
        else:
            out = xp.sum(xp.abs(x) ** ord, axis=axes, keepdims=keepdims) ** (1.0 / ord)
        return xp.asarray(out).astype(x.dtype, copy=False)

    def vjp(self, ctx, gy):
        x = ctx.inputs[0]
        ord, axes = ctx.params["ord"], ctx.params["axes"]
        shape = reduced_shape(x.shape, axes, True)
        gy = movement.reshape(gy, shape)
        out = movement.reshape(ctx.out, shape)
        if ord == 0:
            return (None,)
        if ord == 1:
            return (gy * sign(x),)
        if ord in (_INF, -_INF):  # ties share the gradient, as in max/min
            winners = astype(elementwise_abs(x) == out, gy.dtype)
            count = reduce_sum(winners, axis=axes, keepdims=True)
            return (gy * sign(x) * winners / count,)
        safe = where(out == 0, 1.0, out)  # all-zero input: subgradient 0
        if ord == 2:
            return (gy * x / safe,)
        return (gy * sign(x) * (elementwise_abs(x) / safe) ** (ord - 1),)


VECTOR_NORM = VectorNorm()


def _ord_value(ord) -> float:
    if isinstance(ord, str) or isinstance(ord, bool):
        raise shape_error("vector_norm", f"ord={ord!r} is not a vector norm order; use a "
                          f"number, inf or -inf (or matrix_norm for 'fro'/'nuc')")
    return float(ord)


def vector_norm(x, /, *, axis=None, keepdims: bool = False, ord=2) -> Tensor:
    """Vector p-norm over `axis` (all axes when None); ord may be any number, inf or -inf.

    >>> import ember
    >>> from ember import linalg
    >>> linalg.vector_norm(ember.tensor([3.0, 4.0]))
    tensor(5.)
    >>> linalg.vector_norm(ember.tensor([3.0, -4.0]), ord=ember.inf)
    tensor(4.)
    """
    x = unary_float(x)
    axes = normalize_axes(axis, x.ndim, "vector_norm")
    return apply(VECTOR_NORM, x, ord=_ord_value(ord), axes=axes, keepdims=bool(keepdims))


def matrix_norm(x, /, *, keepdims: bool = False, ord="fro") -> Tensor:
    """Matrix norm of the last two axes: 'fro', 'nuc', 1, -1, 2, -2, inf or -inf.

    >>> import ember
    >>> from ember import linalg
    >>> linalg.matrix_norm(ember.tensor([[1.0, -2.0], [3.0, 4.0]]), ord=1)
    tensor(6.)
    """
    x = unary_float(x)
    if x.ndim < 2:
        raise shape_error("matrix_norm", f"expects (..., M, N) matrices, got shape {x.shape}",
                          x)
    if ord == "fro":
        out = vector_norm(x, axis=(-2, -1))
    elif ord == "nuc":
        out = reduce_sum(svdvals(x), axis=-1)
    elif ord in (2, -2):
        out = (reduce_max if ord == 2 else reduce_min)(svdvals(x), axis=-1)
    elif ord in (1, -1, _INF, -_INF):
        # 1: largest column sum of |x|; inf: largest row sum (the minimum for negative ord).
        sums = reduce_sum(elementwise_abs(x), axis=-2 if ord in (1, -1) else -1)
        out = (reduce_max if ord > 0 else reduce_min)(sums, axis=-1)
    else:
        raise shape_error("matrix_norm", f"ord={ord!r} is not supported; use 'fro', 'nuc', "
                          f"1, -1, 2, -2, inf or -inf", x)
    return movement.reshape(out, out.shape + (1, 1)) if keepdims else out


def norm(x, /, ord=None, axis=None, keepdims: bool = False) -> Tensor:
    """NumPy/PyTorch `linalg.norm`: a vector norm over one axis, a matrix norm over two.

    With axis=None: ord=None is the 2-norm of all elements; otherwise x must be 1-d (vector
    norm) or 2-d (matrix norm).

    >>> import ember
    >>> from ember import linalg
    >>> linalg.norm(ember.tensor([[3.0, 0.0], [0.0, 4.0]]))
    tensor(5.)
    >>> linalg.norm(ember.tensor([[3.0, 0.0], [0.0, 4.0]]), ord=2)
    tensor(4.)
    """
    x = unary_float(x)
    if axis is None:
        if ord is None:
            return vector_norm(x, keepdims=keepdims)
        if x.ndim not in (1, 2):
            raise shape_error("norm", f"ord={ord!r} without axis needs a 1-d or 2-d tensor, "
                              f"got shape {x.shape}; pass axis=", x)
        axis = tuple(range(x.ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    if len(axes) == 1:
        return vector_norm(x, axis=axes, keepdims=keepdims, ord=2 if ord is None else ord)
    if len(axes) != 2:
        raise shape_error("norm", f"axis must name one or two axes, got {axis}", x)
    first, second = (a % x.ndim for a in axes)
    if first == second:
        raise shape_error("norm", f"axis {axis} names the same axis twice", x)
    moved = movement.moveaxis(x, (first, second), (-2, -1))
    out = matrix_norm(moved, ord="fro" if ord is None else ord)
    if keepdims:
        out = movement.expand_dims(out, tuple(sorted((first, second))))
    return out


def norm_method(self, p="fro", dim=None, keepdim: bool = False) -> Tensor:
    """`Tensor.norm` with PyTorch's meaning: a number p is a vector norm over `dim` (all
    elements by default); 'fro' over all or one axis is the 2-norm; 'nuc' or 'fro' over two
    axes a matrix norm."""
    dims = (dim,) if isinstance(dim, int) else dim
    if isinstance(p, str) and (p == "nuc" or (dims is not None and len(dims) == 2)):
        return norm(self, ord=p, axis=dims if dims is not None else (-2, -1),
                    keepdims=keepdim)
    return vector_norm(self, axis=dims, keepdims=keepdim, ord=2 if p in ("fro", None) else p)
