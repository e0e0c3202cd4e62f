"""Activation layers: thin modules over ember.nn.functional's activations (PyTorch names).

Only PReLU owns a parameter (`weight`, the learned negative slopes).
"""
from __future__ import annotations

from ember.nn import init
from ember.nn.functional import activation as F
from ember.nn.module import Module, Parameter
from ember.ops.creation import empty
from ember.ops.softmax import log_softmax, softmax


class _Elementwise(Module):
    """An activation with no options beyond `inplace` (accepted, results are new tensors)."""

    _function = staticmethod(F.relu)

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        return self._function(x)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class ReLU(_Elementwise):
    """max(x, 0).

    >>> import ember
    >>> ember.nn.ReLU()(ember.tensor([-1.0, 2.0]))
    tensor([0., 2.])
    """

    _function = staticmethod(F.relu)


class ReLU6(_Elementwise):
    """min(max(x, 0), 6)."""

    _function = staticmethod(F.relu6)


class SELU(_Elementwise):
    """Scaled ELU with the self-normalizing constants."""

    _function = staticmethod(F.selu)


class SiLU(_Elementwise):
    """x * sigmoid(x)."""

    _function = staticmethod(F.silu)


class Mish(_Elementwise):
    """x * tanh(softplus(x))."""

    _function = staticmethod(F.mish)


class Hardswish(_Elementwise):
    """x * relu6(x + 3) / 6."""

    _function = staticmethod(F.hardswish)


class Hardsigmoid(_Elementwise):
    """relu6(x + 3) / 6."""

    _function = staticmethod(F.hardsigmoid)


class Sigmoid(Module):
    """1 / (1 + exp(-x))."""

    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    """Hyperbolic tangent."""

    def forward(self, x):
        return F.tanh(x)


class Softsign(Module):
    """x / (1 + |x|)."""

    def forward(self, x):
        return F.softsign(x)


class LeakyReLU(Module):
    """x for x > 0, else negative_slope * x."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class PReLU(Module):
    """leaky_relu with learned slopes: one shared (num_parameters=1) or one per channel.

    >>> import ember
    >>> layer = ember.nn.PReLU(3)
    >>> layer(ember.randn(2, 3, 4)).shape, layer.weight.shape
    ((2, 3, 4), (3,))
    """

    def __init__(self, num_parameters: int = 1, init: float = 0.25, dtype=None, device=None):
        super().__init__()
        self.num_parameters, self.init = num_parameters, init
        self.weight = Parameter(empty(num_parameters, dtype=dtype, device=device))
        self.reset_parameters()

    def reset_parameters(self):
        init.constant_(self.weight, self.init)

    def forward(self, x):
        return F.prelu(x, self.weight)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


class ELU(Module):
    """x for x > 0, else alpha * (exp(x) - 1)."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, x):
        return F.elu(x, self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}"


class CELU(ELU):
    """x for x > 0, else alpha * (exp(x / alpha) - 1)."""

    def forward(self, x):
        return F.celu(x, self.alpha)


class GELU(Module):
    """x * Phi(x); approximate='tanh' uses the tanh approximation.

    >>> import ember
    >>> ember.nn.GELU(approximate="tanh")(ember.tensor([1.0])).numpy().round(5)
    array([0.84119], dtype=float32)
    """

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, approximate=self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Softplus(Module):
    """log(1 + exp(beta * x)) / beta, linear above `threshold`."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, x):
        return F.softplus(x, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class Hardtanh(Module):
    """x clamped to [min_val, max_val]."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False):
        super().__init__()
        if max_val <= min_val:
            raise ValueError(f"Hardtanh: max_val={max_val} must exceed min_val={min_val}")
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace

    def forward(self, x):
        return F.hardtanh(x, self.min_val, self.max_val)

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}"


class Softmax(Module):
    """exp(x) / sum(exp(x)) along `dim` (the last one when None).

    >>> import ember
    >>> ember.nn.Softmax(dim=1)(ember.zeros((1, 4)))
    tensor([[0.25, 0.25, 0.25, 0.25]])
    """

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return softmax(x, -1 if self.dim is None else self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """log(softmax(x)) along `dim` (the last one when None)."""

    def forward(self, x):
        return log_softmax(x, -1 if self.dim is None else self.dim)
