"""Weight initializers (in place, PyTorch names, plus the Keras names `glorot_*`/`he_*`).

Each draws from `generator` (default: the global one seeded by `ember.manual_seed`) and
writes into the tensor's storage, so a Parameter keeps its identity.
"""
from __future__ import annotations

import math

import numpy as np

from ember import random as ember_random
from ember._core.device import CPU
from ember._core.errors import EmberError
from ember._core.tensor import Tensor
from ember.ops.special import ERF

_GAINS = {"linear": 1.0, "identity": 1.0, "conv1d": 1.0, "conv2d": 1.0, "conv3d": 1.0,
          "conv_transpose1d": 1.0, "conv_transpose2d": 1.0, "conv_transpose3d": 1.0,
          "sigmoid": 1.0, "tanh": 5.0 / 3.0, "relu": math.sqrt(2.0), "selu": 0.75}


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity (as in PyTorch).

    >>> round(calculate_gain('relu'), 4)
    1.4142
    """
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity not in _GAINS:
        raise EmberError(f"calculate_gain: unknown nonlinearity '{nonlinearity}'; expected "
                         f"one of {sorted([*_GAINS, 'leaky_relu'])}")
    return _GAINS[nonlinearity]


def calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight laid out as (out, in, *kernel) like PyTorch's."""
    if tensor.ndim < 2:
        raise EmberError(f"fan in/out needs a tensor with at least 2 dimensions, got shape "
                         f"{tuple(tensor.shape)}")
    receptive = int(np.prod(tensor.shape[2:])) if tensor.ndim > 2 else 1
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _fan(tensor: Tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise EmberError(f"mode must be 'fan_in' or 'fan_out', got '{mode}'")
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _rng(generator) -> np.random.Generator:
    return (generator or ember_random.default_generator)._rng


def _write(tensor: Tensor, values: np.ndarray) -> Tensor:
    if tensor.size == 0:
        return tensor
    values = values.astype(tensor._data.dtype, copy=False)
    if tensor._device is not CPU:
        values = tensor._device.xp.asarray(values)
    tensor._data[...] = values
    return tensor


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator=None) -> Tensor:
    return _write(tensor, _rng(generator).uniform(a, b, tensor.shape))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator=None) -> Tensor:
    return _write(tensor, _rng(generator).normal(mean, std, tensor.shape))


def constant_(tensor: Tensor, val: float) -> Tensor:
    return _write(tensor, np.full(tensor.shape, val))


def zeros_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 1.0)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """Glorot uniform: U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out))."""
    if tensor.size == 0:  # nothing to draw (PyTorch: a no-op)
        return tensor
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """Glorot normal: N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out))."""
    if tensor.size == 0:  # nothing to draw (PyTorch: a no-op)
        return tensor
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def kaiming_uniform_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu", generator=None) -> Tensor:
    """He uniform: U(-b, b), b = gain * sqrt(3 / fan)."""
    if tensor.size == 0:  # nothing to draw (PyTorch: a no-op)
        return tensor
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu", generator=None) -> Tensor:
    """He normal: N(0, std^2), std = gain / sqrt(fan)."""
    if tensor.size == 0:  # nothing to draw (PyTorch: a no-op)
        return tensor
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return normal_(tensor, 0.0, std, generator)


def orthogonal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """A (semi-)orthogonal matrix from the QR decomposition of a Gaussian draw (Saxe et al.);
    dimensions after the first are flattened."""
    if tensor.ndim < 2:
        raise EmberError(f"orthogonal_ needs at least 2 dimensions, got shape "
                         f"{tuple(tensor.shape)}")
    rows = tensor.shape[0]
    cols = tensor.size // rows
    draw = _rng(generator).normal(0.0, 1.0, (rows, cols))
    if rows < cols:
        draw = draw.T
    q, r = np.linalg.qr(draw)
    q = q * np.sign(np.diag(r))  # makes the distribution uniform over orthogonal matrices
    if rows < cols:
        q = q.T
    return _write(tensor, gain * q.reshape(tensor.shape))


def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0,
                  b: float = 2.0, generator=None) -> Tensor:
    """N(mean, std^2) restricted to [a, b] (absolute bounds, as in PyTorch), by redrawing the
    values that fall outside."""
    if not a < b:
        raise EmberError(f"trunc_normal_: need a < b, got a={a}, b={b}")
    # Inverse-CDF sampling (as PyTorch): uniform between the CDF values of the bounds, mapped
    # back through the normal quantile. Unlike redrawing, it cannot stall when [a, b] lies far
    # in a tail.
    low, high = _normal_cdf((a - mean) / std), _normal_cdf((b - mean) / std)
    uniform = _rng(generator).uniform(low, high, tensor.size)
    values = mean + std * math.sqrt(2.0) * _erfinv(2.0 * uniform - 1.0)
    return _write(tensor, np.clip(values, a, b).reshape(tensor.shape))


def _normal_cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def _erfinv(y: np.ndarray) -> np.ndarray:
    """Inverse error function: Giles' single-precision approximation refined by two Newton
    steps on ember's float64 erf (float64-accurate on (-1, 1))."""
    y = np.clip(y, -1 + 1e-16, 1 - 1e-16)
    w = -np.log((1.0 - y) * (1.0 + y))
    central = w < 5.0
    t = np.where(central, w - 2.5, np.sqrt(np.maximum(w, 5.0)) - 3.0)
    p_central = np.polyval([2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06,
                            0.00021858087, -0.00125372503, -0.00417768164, 0.246640727,
                            1.50140941], t)
    p_tail = np.polyval([-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844,
                         0.00573950773, -0.0076224613, 0.00943887047, 1.00167406,
                         2.83297682], t)
    x = np.where(central, p_central, p_tail) * y
    for _ in range(2):
        x = x - (ERF.forward(np, x) - y) / (2.0 / math.sqrt(math.pi) * np.exp(-x * x))
    return x


glorot_uniform_ = xavier_uniform_
glorot_normal_ = xavier_normal_
he_uniform_ = kaiming_uniform_
he_normal_ = kaiming_normal_
