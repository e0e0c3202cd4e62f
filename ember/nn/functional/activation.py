"""Activation functions (PyTorch names and defaults), composed of elementwise ember ops.

They are composites, not primitives: the compiler fuses the elementwise chains, and each
derivative follows from the ops' own rules, to any order. Two conventions keep them exact:
piecewise functions select with `where` on a strict comparison, so the gradient at a kink is
the one PyTorch uses (relu'(0) = 0); and a branch that could overflow (exp of a large
input) is evaluated on an input clamped by `where`, so the unused branch cannot put inf or
NaN into the gradient.
"""
from __future__ import annotations

import math

from ember._core.primitive import shape_error
from ember._core.tensor import Tensor
from ember.ops._util import unary_float
from ember.ops.elementwise import abs as abs_
from ember.ops.elementwise import exp, expm1, log1p, sigmoid, tanh, where
from ember.ops.movement import reshape
from ember.ops.special import erf

__all__ = ["relu", "relu6", "leaky_relu", "prelu", "elu", "selu", "celu", "gelu", "silu",
           "mish", "sigmoid", "tanh", "softplus", "softsign", "hardtanh", "hardswish",
           "hardsigmoid"]

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_SQRT_HALF = math.sqrt(0.5)
_SQRT_TWO_OVER_PI = math.sqrt(2.0 / math.pi)


def _float(x) -> Tensor:
    return unary_float(x)


def relu(input, inplace: bool = False) -> Tensor:
    """max(x, 0), with gradient 0 at x = 0.

    >>> import ember
    >>> ember.nn.functional.relu(ember.tensor([-1.0, 0.0, 2.0]))
    tensor([0., 0., 2.])
    """
    x = _float(input)
    return where(x <= 0, 0.0, x)  # NaN fails the test and passes through, as in PyTorch


def hardtanh(input, min_val: float = -1.0, max_val: float = 1.0,
             inplace: bool = False) -> Tensor:
    """x clamped to [min_val, max_val]; the gradient is 1 strictly inside, else 0.

    >>> import ember
    >>> ember.nn.functional.hardtanh(ember.tensor([-3.0, 0.5, 3.0]))
    tensor([-1. ,  0.5,  1. ])
    """
    x = _float(input)
    return where(x <= min_val, float(min_val), where(x >= max_val, float(max_val), x))


def relu6(input, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6).

    >>> import ember
    >>> ember.nn.functional.relu6(ember.tensor([-1.0, 3.0, 9.0]))
    tensor([0., 3., 6.])
    """
    return hardtanh(input, 0.0, 6.0)


def leaky_relu(input, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x for x > 0, else negative_slope * x.

    >>> import ember
    >>> ember.nn.functional.leaky_relu(ember.tensor([-2.0, 2.0]), 0.5)
    tensor([-1.,  2.])
    """
    x = _float(input)
    return where(x > 0, x, x * float(negative_slope))


def prelu(input, weight) -> Tensor:
    """leaky_relu with a learned slope: one per channel (dimension 1), or one shared.

    >>> import ember
    >>> ember.nn.functional.prelu(ember.tensor([[-2.0, 2.0]]), ember.tensor([0.25]))
    tensor([[-0.5,  2. ]])
    """
    x = _float(input)
    slopes = weight.shape[0] if weight.ndim else 1
    if weight.ndim > 1:
        raise shape_error("prelu", "expected a 0-d or 1-d weight", weight)
    if slopes != 1:
        channel_axis = 1 if x.ndim >= 2 else 0
        if x.ndim == 0 or x.shape[channel_axis] != slopes:
            raise shape_error("prelu", f"expected the channel dimension (dim "
                              f"{channel_axis}) of the input to match the weight's "
                              f"{slopes} slopes", x, weight)
        weight = reshape(weight, (slopes,) + (1,) * (x.ndim - channel_axis - 1))
    return where(x > 0, x, x * weight)


def _negative_part(x: Tensor) -> Tensor:
    """x where x <= 0, else 0: a safe argument for exp in the negative branch."""
    return where(x > 0, 0.0, x)


def elu(input, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, else alpha * (exp(x) - 1).

    >>> import ember
    >>> ember.nn.functional.elu(ember.tensor([-1.0, 1.0])).numpy().round(5)
    array([-0.63212,  1.     ], dtype=float32)
    """
    x = _float(input)
    return where(x > 0, x, expm1(_negative_part(x)) * float(alpha))


def selu(input, inplace: bool = False) -> Tensor:
    """scale * elu(x, alpha) with the self-normalizing constants of Klambauer et al.

    >>> import ember
    >>> ember.nn.functional.selu(ember.tensor([1.0])).numpy().round(5)
    array([1.0507], dtype=float32)
    """
    return elu(input, _SELU_ALPHA) * _SELU_SCALE


def celu(input, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, else alpha * (exp(x / alpha) - 1).

    >>> import ember
    >>> ember.nn.functional.celu(ember.tensor([-2.0]), alpha=2.0).numpy().round(5)
    array([-1.26424], dtype=float32)
    """
    x = _float(input)
    alpha = float(alpha)
    return where(x > 0, x, expm1(_negative_part(x) * (1.0 / alpha)) * alpha)


def gelu(input, approximate: str = "none") -> Tensor:
    """x * Phi(x) with Phi the standard normal CDF; approximate='tanh' uses the tanh formula.

    >>> import ember
    >>> ember.nn.functional.gelu(ember.tensor([-1.0, 1.0])).numpy().round(5)
    array([-0.15866,  0.84134], dtype=float32)
    """
    x = _float(input)
    if approximate == "none":
        return x * (erf(x * _SQRT_HALF) + 1.0) * 0.5
    if approximate == "tanh":
        inner = (x + x * x * x * 0.044715) * _SQRT_TWO_OVER_PI
        return x * (tanh(inner) + 1.0) * 0.5
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def silu(input, inplace: bool = False) -> Tensor:
    """x * sigmoid(x) (also called swish).

    >>> import ember
    >>> ember.nn.functional.silu(ember.tensor([0.0, 1.0])).numpy().round(5)
    array([0.     , 0.73106], dtype=float32)
    """
    x = _float(input)
    return x * sigmoid(x)


def softplus(input, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta * x)) / beta, and x itself where beta * x > threshold.

    >>> import ember
    >>> ember.nn.functional.softplus(ember.tensor([0.0, 100.0])).numpy().round(5)
    array([  0.69315, 100.     ], dtype=float32)
    """
    x = _float(input)
    beta, threshold = float(beta), float(threshold)
    scaled = x * beta if beta != 1.0 else x
    linear = scaled > threshold
    # exp is taken of min(beta * x, threshold) only: no overflow in the unused branch.
    soft = log1p(exp(where(linear, 0.0, scaled)))
    return where(linear, x, soft * (1.0 / beta) if beta != 1.0 else soft)


def mish(input, inplace: bool = False) -> Tensor:
    """x * tanh(softplus(x)).

    >>> import ember
    >>> ember.nn.functional.mish(ember.tensor([1.0])).numpy().round(5)
    array([0.8651], dtype=float32)
    """
    x = _float(input)
    return x * tanh(softplus(x))


def softsign(input) -> Tensor:
    """x / (1 + |x|).

    >>> import ember
    >>> ember.nn.functional.softsign(ember.tensor([-3.0, 1.0]))
    tensor([-0.75,  0.5 ])
    """
    x = _float(input)
    return x / (abs_(x) + 1.0)


def hardsigmoid(input, inplace: bool = False) -> Tensor:
    """relu6(x + 3) / 6: 0 below -3, 1 above 3, linear in between.

    >>> import ember
    >>> ember.nn.functional.hardsigmoid(ember.tensor([-4.0, 0.0, 4.0]))
    tensor([0. , 0.5, 1. ])
    """
    x = _float(input)
    return where(x <= -3.0, 0.0, where(x >= 3.0, 1.0, x * (1.0 / 6.0) + 0.5))


def hardswish(input, inplace: bool = False) -> Tensor:
    """x * relu6(x + 3) / 6.

    >>> import ember
    >>> ember.nn.functional.hardswish(ember.tensor([-4.0, 1.0, 4.0])).numpy().round(5)
    array([-0.     ,  0.66667,  4.     ], dtype=float32)
    """
    x = _float(input)
    return x * hardsigmoid(x)
