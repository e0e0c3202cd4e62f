"""Dense layers: Linear (with a lazy input size), Bilinear, Identity, Flatten, Unflatten."""
from __future__ import annotations

import math

from ember._core import dtypes
from ember.nn import init
from ember.nn.functional.linear import bilinear, linear
from ember.nn.module import Module, Parameter
from ember.ops.creation import empty
from ember.ops.movement import reshape


def _uniform_bias(bias: Parameter, fan_in: int):
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    init.uniform_(bias, -bound, bound)


class Linear(Module):
    """y = x W^T + b. `in_features=None` infers the input size on the first call (Keras-style).

    >>> import ember
    >>> layer = ember.nn.Linear(None, 3)
    >>> layer(ember.ones((2, 5))).shape, layer.weight.shape
    ((2, 3), (3, 5))
    """

    def __init__(self, in_features: int | None, out_features: int, bias: bool = True,
                 dtype=None, device=None):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self._dtype = dtypes.as_dtype(dtype) if dtype is not None else dtypes.default_float
        self._device = device
        self.register_parameter("weight", None)
        self.register_parameter("bias", Parameter(empty(out_features, dtype=self._dtype,
                                                        device=device)) if bias else None)
        if in_features is not None:
            self._build(in_features)

    def _build(self, in_features: int):
        self.in_features = in_features
        self.weight = Parameter(empty((self.out_features, in_features), dtype=self._dtype,
                                      device=self._device))
        self.reset_parameters()

    def reset_parameters(self):
        # PyTorch's default: kaiming_uniform(a=sqrt(5)) gives U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            _uniform_bias(self.bias, self.in_features)

    def forward(self, x):
        if self.weight is None:
            self._build(x.shape[-1])
        return linear(x, self.weight, self.bias)

    def _state_loaded(self):
        if self.weight is not None:
            self.in_features = self.weight.shape[1]

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Bilinear(Module):
    """y = x1^T A x2 + b with weight of shape (out, in1, in2)."""

    def __init__(self, in1_features: int, in2_features: int, out_features: int,
                 bias: bool = True, dtype=None, device=None):
        super().__init__()
        self.in1_features, self.in2_features = in1_features, in2_features
        self.out_features = out_features
        self.weight = Parameter(empty((out_features, in1_features, in2_features), dtype=dtype,
                                      device=device))
        self.register_parameter("bias", Parameter(empty(out_features, dtype=dtype,
                                                        device=device)) if bias else None)
        bound = 1.0 / math.sqrt(in1_features)
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x1, x2):
        return bilinear(x1, x2, self.weight, self.bias)

    def extra_repr(self):
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")


class Identity(Module):
    """Returns its input unchanged (a placeholder that keeps layer indices stable)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class Flatten(Module):
    """Flattens dimensions start_dim..end_dim into one (default: all but the batch)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        start = self.start_dim % max(x.ndim, 1)
        end = self.end_dim % max(x.ndim, 1)
        shape = x.shape[:start] + (-1,) + x.shape[end + 1:]
        return reshape(x, shape)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Splits dimension `dim` into `unflattened_size`."""

    def __init__(self, dim: int, unflattened_size: tuple):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x):
        dim = self.dim % x.ndim
        return reshape(x, x.shape[:dim] + self.unflattened_size + x.shape[dim + 1:])

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
