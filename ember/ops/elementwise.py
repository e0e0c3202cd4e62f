"""Elementwise math: unary functions, arithmetic, casts. Each primitive's vjp is in ember ops."""
from __future__ import annotations

import math

import numpy as np

from ember._core import dtypes
from ember._core.primitive import AbstractValue, Primitive, apply
from ember._core.shapes import broadcast_shapes
from ember._core.tensor import Tensor
from ember.ops._select import fast_where
from ember.ops._util import as_tensor, aval_of, binary_operands, result_dtype, unary_float
from ember.ops.logic import equal, greater, greater_equal, less, less_equal


# ---- base classes -----------------------------------------------------------------------------
class Unary(Primitive):
    """y = f(x) elementwise with the dtype of x; `np_name` names the backend function."""

    np_name = ""

    def infer(self, x):
        return AbstractValue(x.shape, x.dtype, x.device)

    def forward(self, xp, x):
        return getattr(xp, self.np_name)(x)


class Binary(Primitive):
    """z = f(x1, x2) with broadcasting; operands arrive already promoted to one dtype."""

    np_name = ""

    def __init__(self):
        self.numpy_function = getattr(np, self.np_name, None)

    def infer(self, x1, x2):
        a, b = aval_of(x1), aval_of(x2)
        shape = broadcast_shapes(a.shape, b.shape, op=self.name)
        return AbstractValue(shape, result_dtype(x1, a, x2, b), a.device)

    def forward(self, xp, x1, x2):
        if xp is np:  # skips a getattr on the hottest path; same function either way
            return self.numpy_function(x1, x2)
        return getattr(xp, self.np_name)(x1, x2)


def _needs(ctx, index: int) -> bool:
    return ctx.node.edges[index] is not None


# ---- unary ------------------------------------------------------------------------------------
class Negative(Unary):
    np_name = "negative"

    def vjp(self, ctx, gy):
        return (-gy,)


class Positive(Unary):
    np_name = "positive"

    def vjp(self, ctx, gy):
        return (gy,)


class Abs(Unary):
    np_name = "abs"

    def vjp(self, ctx, gy):
        return (gy * sign(ctx.inputs[0]),)


class Exp(Unary):
    np_name = "exp"

    def vjp(self, ctx, gy):
        return (gy * ctx.out,)


class Expm1(Unary):
    np_name = "expm1"

    def vjp(self, ctx, gy):
        return (gy * (ctx.out + 1),)


class Log(Unary):
    np_name = "log"

    def vjp(self, ctx, gy):
        return (gy / ctx.inputs[0],)


class Log1p(Unary):
    np_name = "log1p"

    def vjp(self, ctx, gy):
        return (gy / (ctx.inputs[0] + 1),)


class Log2(Unary):
    np_name = "log2"

    def vjp(self, ctx, gy):
        return (gy / (ctx.inputs[0] * math.log(2.0)),)


class Log10(Unary):
    np_name = "log10"

    def vjp(self, ctx, gy):
        return (gy / (ctx.inputs[0] * math.log(10.0)),)


class Sqrt(Unary):
    np_name = "sqrt"

    def vjp(self, ctx, gy):
        return (gy / (ctx.out * 2),)


class Square(Unary):
    np_name = "square"

    def vjp(self, ctx, gy):
        return (gy * ctx.inputs[0] * 2,)


class Sin(Unary):
    np_name = "sin"

    def vjp(self, ctx, gy):
        return (gy * cos(ctx.inputs[0]),)


class Cos(Unary):
    np_name = "cos"

    def vjp(self, ctx, gy):
        return (-gy * sin(ctx.inputs[0]),)


class Tan(Unary):
    np_name = "tan"

    def vjp(self, ctx, gy):
        return (gy * (square(ctx.out) + 1),)


class Asin(Unary):
    np_name = "arcsin"

    def vjp(self, ctx, gy):
        return (gy / sqrt(1 - square(ctx.inputs[0])),)


class Acos(Unary):
    np_name = "arccos"

    def vjp(self, ctx, gy):
        return (-gy / sqrt(1 - square(ctx.inputs[0])),)


class Atan(Unary):
    np_name = "arctan"

    def vjp(self, ctx, gy):
        return (gy / (square(ctx.inputs[0]) + 1),)


class Sinh(Unary):
    np_name = "sinh"

    def vjp(self, ctx, gy):
        return (gy * cosh(ctx.inputs[0]),)


class Cosh(Unary):
    np_name = "cosh"

    def vjp(self, ctx, gy):
        return (gy * sinh(ctx.inputs[0]),)


class Tanh(Unary):
    np_name = "tanh"

    def vjp(self, ctx, gy):
        return (gy * (1 - square(ctx.out)),)


class Asinh(Unary):
    np_name = "arcsinh"

    def vjp(self, ctx, gy):
        return (gy / sqrt(square(ctx.inputs[0]) + 1),)


class Acosh(Unary):
    np_name = "arccosh"

    def vjp(self, ctx, gy):
        return (gy / sqrt(square(ctx.inputs[0]) - 1),)


class Atanh(Unary):
    np_name = "arctanh"

    def vjp(self, ctx, gy):
        return (gy / (1 - square(ctx.inputs[0])),)


class Sigmoid(Unary):
    """Logistic function, computed without overflow for large |x|."""

    def forward(self, xp, x):
        # exp of a non-positive number never overflows: split by sign.
        z = xp.exp(-xp.abs(x))
        return xp.where(x >= 0, 1 / (1 + z), z / (1 + z)).astype(x.dtype, copy=False)

    def vjp(self, ctx, gy):
        out = ctx.out
        return (gy * out * (1 - out),)


class Stepwise(Unary):
    """Piecewise-constant functions (sign, floor, ceil, round, trunc): zero gradient."""

    def vjp(self, ctx, gy):
        return (None,)


class Sign(Stepwise):
    np_name = "sign"


class Floor(Stepwise):
    np_name = "floor"


class Ceil(Stepwise):
    np_name = "ceil"


class Round(Stepwise):
    np_name = "round"


class Trunc(Stepwise):
    np_name = "trunc"


class Astype(Primitive):
    """Cast to `dtype` (a NumPy dtype); the engine casts the gradient back to the input's."""

    def infer(self, x, dtype):
        return AbstractValue(x.shape, dtypes.from_numpy_dtype(dtype), x.device)

    def forward(self, xp, x, dtype):
        return x.astype(dtype)

    def vjp(self, ctx, gy):
        return (gy,)


# ---- binary -----------------------------------------------------------------------------------
class Add(Binary):
    np_name = "add"

    def vjp(self, ctx, gy):
        return gy, gy


class Subtract(Binary):
    np_name = "subtract"

    def vjp(self, ctx, gy):
        return gy, (-gy if _needs(ctx, 1) else None)


class Multiply(Binary):
    np_name = "multiply"

    def vjp(self, ctx, gy):
        x1, x2 = ctx.inputs
        return (gy * x2 if _needs(ctx, 0) else None), (gy * x1 if _needs(ctx, 1) else None)


class Divide(Binary):
    np_name = "divide"

    def infer(self, x1, x2):
        out = super().infer(x1, x2)
        if out.dtype.kind != "f":
            out.dtype = dtypes.default_float
        return out

    def vjp(self, ctx, gy):
        x1, x2 = ctx.inputs
        g1 = gy / x2 if _needs(ctx, 0) else None
        g2 = -gy * ctx.out / x2 if _needs(ctx, 1) else None
        return g1, g2


class Pow(Binary):
    np_name = "power"

    def vjp(self, ctx, gy):
        base, exponent = ctx.inputs
        g1 = gy * exponent * base ** (exponent - 1) if _needs(ctx, 0) else None
        # d/de b^e = b^e log b; where b == 0 the limit is 0 (for e > 0), not NaN.
        g2 = None
        if _needs(ctx, 1):
            safe_log = log(where(base > 0, base, 1.0))
            g2 = gy * ctx.out * safe_log
        return g1, g2


class Maximum(Binary):
    np_name = "maximum"

    def vjp(self, ctx, gy):
        return _select_grads(ctx, gy, greater)


class Minimum(Binary):
    np_name = "minimum"

    def vjp(self, ctx, gy):
        return _select_grads(ctx, gy, less)


def _select_grads(ctx, gy, wins):
    """Gradient of max/min: to the winning operand; ties split it evenly, as PyTorch does."""
    x1, x2 = ctx.inputs
    x1 = x1 if isinstance(x1, Tensor) else as_tensor(x1)
    share = where(wins(x1, x2), 1.0, where(equal(x1, x2), 0.5, 0.0))
    share = astype(share, gy.dtype)
    return gy * share, gy * (1 - share)


class Atan2(Binary):
    np_name = "arctan2"

    def vjp(self, ctx, gy):
        y, x = ctx.inputs
        denominator = square(x) + square(y)
        return gy * x / denominator, -gy * y / denominator


class Hypot(Binary):
    np_name = "hypot"

    def vjp(self, ctx, gy):
        x1, x2 = ctx.inputs
        return gy * x1 / ctx.out, gy * x2 / ctx.out


class Logaddexp(Binary):
    np_name = "logaddexp"

    def vjp(self, ctx, gy):
        x1, x2 = ctx.inputs
        return gy * exp(x1 - ctx.out), gy * exp(x2 - ctx.out)


class Copysign(Binary):
    np_name = "copysign"

    def vjp(self, ctx, gy):
        x1, _ = ctx.inputs
        return gy * sign(x1) * sign(ctx.out), None


class Remainder(Binary):
    np_name = "remainder"

    def vjp(self, ctx, gy):
        x1, x2 = ctx.inputs
        return gy, (-gy * floor(x1 / x2) if _needs(ctx, 1) else None)


class FloorDivide(Binary):
    np_name = "floor_divide"
    differentiable = False


class Where(Primitive):
    """Select from x1 where cond is true, else from x2 (all three broadcast)."""

    def infer(self, cond, x1, x2):
        a, b, c = aval_of(cond), aval_of(x1), aval_of(x2)
        shape = broadcast_shapes(a.shape, b.shape, c.shape, op="where")
        return AbstractValue(shape, result_dtype(x1, b, x2, c), b.device)

    def forward(self, xp, cond, x1, x2):
        if xp is np:
            selected = fast_where(cond, x1, x2)
            if selected is not None:
                return selected
        return xp.where(cond, x1, x2)

    def vjp(self, ctx, gy):
        cond = ctx.inputs[0]
        zero = zeros_scalar(gy)
        g1 = where(cond, gy, zero) if _needs(ctx, 1) else None
        g2 = where(cond, zero, gy) if _needs(ctx, 2) else None
        return None, g1, g2


class Clip(Primitive):
    """Clamp to [low, high]; either bound may be None, a scalar or a tensor."""

    def infer(self, x, low, high):
        return AbstractValue(x.shape, x.dtype, x.device)

    def forward(self, xp, x, low, high):
        out = x
        if low is not None:
            out = xp.maximum(out, xp.asarray(low, dtype=x.dtype))
        if high is not None:
            out = xp.minimum(out, xp.asarray(high, dtype=x.dtype))
        return out

    def vjp(self, ctx, gy):
        x, low, high = ctx.inputs
        inside = ones_scalar(gy)
        if low is not None:
            inside = inside * astype(greater_equal(x, low), gy.dtype)
        if high is not None:
            inside = inside * astype(less_equal(x, high), gy.dtype)
        g_low = gy * astype(less(x, low), gy.dtype) if _needs(ctx, 1) else None
        g_high = gy * astype(greater(x, high), gy.dtype) if _needs(ctx, 2) else None
        return gy * inside, g_low, g_high


def zeros_scalar(like: Tensor):
    return Tensor(like._device.xp.zeros((), like._data.dtype), like._device)


def ones_scalar(like: Tensor):
    return Tensor(like._device.xp.ones((), like._data.dtype), like._device)


# ---- public functions -------------------------------------------------------------------------
NEGATIVE, POSITIVE, ABS, SIGN = Negative(), Positive(), Abs(), Sign()
EXP, EXPM1, LOG, LOG1P, LOG2, LOG10 = Exp(), Expm1(), Log(), Log1p(), Log2(), Log10()
SQRT, SQUARE, SIGMOID = Sqrt(), Square(), Sigmoid()
SIN, COS, TAN, ASIN, ACOS, ATAN = Sin(), Cos(), Tan(), Asin(), Acos(), Atan()
SINH, COSH, TANH, ASINH, ACOSH, ATANH = Sinh(), Cosh(), Tanh(), Asinh(), Acosh(), Atanh()
FLOOR, CEIL, ROUND, TRUNC, ASTYPE = Floor(), Ceil(), Round(), Trunc(), Astype()
ADD, SUBTRACT, MULTIPLY, DIVIDE, POW = Add(), Subtract(), Multiply(), Divide(), Pow()
MAXIMUM, MINIMUM, ATAN2, HYPOT = Maximum(), Minimum(), Atan2(), Hypot()
LOGADDEXP, COPYSIGN, REMAINDER, FLOOR_DIVIDE = Logaddexp(), Copysign(), Remainder(), FloorDivide()
WHERE, CLIP = Where(), Clip()


def _float_unary(prim):
    def function(x):
        return apply(prim, unary_float(x))

    function.__name__ = prim.name
    function.__doc__ = f"Elementwise {prim.name}; integer inputs give the default float dtype."
    return function


def _any_unary(prim):
    def function(x):
        return apply(prim, x if isinstance(x, Tensor) else as_tensor(x))

    function.__name__ = prim.name
    function.__doc__ = f"Elementwise {prim.name}, keeping the input's dtype."
    return function


def _binary(prim):
    def function(x1, x2):
        # Same-dtype tensors need no promotion: skip straight to dispatch (the common case).
        if type(x1) is Tensor and type(x2) is Tensor and x1._data.dtype is x2._data.dtype:
            return apply(prim, x1, x2)
        return apply(prim, *binary_operands(x1, x2))

    function.__name__ = prim.name
    function.__doc__ = f"Elementwise {prim.name} with broadcasting and type promotion."
    return function


exp, expm1, log, log1p = map(_float_unary, (EXP, EXPM1, LOG, LOG1P))
log2, log10, sqrt, sigmoid = map(_float_unary, (LOG2, LOG10, SQRT, SIGMOID))
sin, cos, tan, asin, acos, atan = map(_float_unary, (SIN, COS, TAN, ASIN, ACOS, ATAN))
sinh, cosh, tanh = map(_float_unary, (SINH, COSH, TANH))
asinh, acosh, atanh = map(_float_unary, (ASINH, ACOSH, ATANH))
negative, positive, abs, sign, square = map(_any_unary, (NEGATIVE, POSITIVE, ABS, SIGN, SQUARE))
add, subtract, multiply = map(_binary, (ADD, SUBTRACT, MULTIPLY))
maximum, minimum, copysign, remainder = map(_binary, (MAXIMUM, MINIMUM, COPYSIGN, REMAINDER))
floor_divide, pow = _binary(FLOOR_DIVIDE), _binary(POW)


def _float_binary(prim):
    def function(x1, x2):
        x1, x2 = binary_operands(x1, x2)
        if isinstance(x1, Tensor) and x1._data.dtype.kind not in "fV":
            x1 = unary_float(x1)
            x2 = unary_float(x2) if isinstance(x2, Tensor) else float(x2)
        elif isinstance(x2, Tensor) and x2._data.dtype.kind not in "fV":
            x2 = unary_float(x2)
        return apply(prim, x1, x2)

    function.__name__ = prim.name
    function.__doc__ = f"Elementwise {prim.name}; integer inputs give the default float dtype."
    return function


divide, atan2, hypot, logaddexp = map(_float_binary, (DIVIDE, ATAN2, HYPOT, LOGADDEXP))


def _rounding(prim):
    def function(x):
        x = x if isinstance(x, Tensor) else as_tensor(x)
        if x._data.dtype.kind in "iub":  # already integral: Array API returns the input
            return x
        return apply(prim, x)

    function.__name__ = prim.name
    function.__doc__ = f"Elementwise {prim.name}; integer inputs are returned unchanged."
    return function


floor, ceil, round, trunc = map(_rounding, (FLOOR, CEIL, ROUND, TRUNC))


def astype(x, dtype, /, *, copy: bool = True) -> Tensor:
    """Cast to `dtype`; with `copy=False` the input is returned when it already has it.

    >>> import ember
    >>> ember.astype(ember.tensor([1.7, -2.2]), ember.int32)
    tensor([ 1, -2], dtype=ember.int32)
    """
    x = x if isinstance(x, Tensor) else as_tensor(x)
    target = dtypes.as_dtype(dtype)
    if x._data.dtype == target.np and not copy:
        return x
    return apply(ASTYPE, x, target.np)


def where(condition, x1, x2, /) -> Tensor:
    """Elements of x1 where condition holds, else of x2 (broadcasting all three)."""
    condition = condition if isinstance(condition, Tensor) else as_tensor(condition)
    if condition._data.dtype != dtypes.bool_.np:
        condition = astype(condition, dtypes.bool_)
    x1, x2 = binary_operands(x1, x2)
    return apply(WHERE, condition, x1, x2)


def clip(x, /, min=None, max=None) -> Tensor:
    """Clamp x into [min, max]; bounds may be None, numbers or tensors."""
    x = x if isinstance(x, Tensor) else as_tensor(x)
    if isinstance(min, float) and x._data.dtype.kind != "f" or isinstance(max, float) and \
            x._data.dtype.kind != "f":
        x = unary_float(x)
    if isinstance(min, Tensor):
        min = astype(min, x.dtype, copy=False)
    if isinstance(max, Tensor):
        max = astype(max, x.dtype, copy=False)
    return apply(CLIP, x, min, max)


def reciprocal(x) -> Tensor:
    """1 / x elementwise."""
    return divide(1.0, x)


def conj(x) -> Tensor:
    """Complex conjugate; ember has no complex dtypes, so this is the input itself."""
    return x if isinstance(x, Tensor) else as_tensor(x)


real = conj


def imag(x) -> Tensor:
    """Imaginary part: zero for ember's real dtypes."""
    x = x if isinstance(x, Tensor) else as_tensor(x)
    return x * 0
