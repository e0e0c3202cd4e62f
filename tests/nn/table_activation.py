"""Layer-table rows for the activation layers (ember/nn/layers/activation.py).

References are written here in NumPy from the textbook formulas, independently of ember.
"""
from __future__ import annotations

import math

import numpy as np

import ember
from tests.nn.layertable import LayerSpec

try:
    import torch
except ImportError:
    torch = None

_erf = np.vectorize(math.erf)
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softplus(x, beta=1.0, threshold=20.0):
    return np.where(beta * x > threshold, x, np.log1p(np.exp(np.minimum(beta * x, threshold)))
                    / beta)


def _elu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * (np.exp(np.minimum(x, 0)) - 1))


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _row(name, build, ref, torch_build=None, shape=(3, 4), domain=(-2.0, 2.0), params=None,
         **extra):
    """A parameter-free activation row; torch_build defaults to the same name in torch.nn."""
    return LayerSpec(name, build, lambda p, x: ref(x), (shape,), params or {}, domain=domain,
                     torch=torch_build, **extra)


def _torch(name, *args, **kwargs):
    return lambda: getattr(torch.nn, name)(*args, **kwargs)


ROWS = [
    _row("relu", lambda: ember.nn.ReLU(), lambda x: np.maximum(x, 0), _torch("ReLU")),
    _row("relu6", lambda: ember.nn.ReLU6(), lambda x: np.clip(x, 0, 6), _torch("ReLU6"),
         domain=(-2.0, 8.0)),
    _row("leaky_relu", lambda: ember.nn.LeakyReLU(0.2), lambda x: np.where(x > 0, x, 0.2 * x),
         _torch("LeakyReLU", 0.2)),
    LayerSpec("prelu_channels", lambda: ember.nn.PReLU(3),
              lambda p, x: np.where(x > 0, x, p["weight"][None, :, None] * x), ((2, 3, 4),),
              {"weight": (3,)}, torch=_torch("PReLU", 3)),
    LayerSpec("prelu_shared", lambda: ember.nn.PReLU(), lambda p, x: np.where(x > 0, x,
                                                                              p["weight"] * x),
              ((5,),), {"weight": (1,)}, torch=_torch("PReLU")),
    _row("elu", lambda: ember.nn.ELU(0.5), lambda x: _elu(x, 0.5), _torch("ELU", 0.5)),
    _row("selu", lambda: ember.nn.SELU(), lambda x: SELU_SCALE * _elu(x, SELU_ALPHA),
         _torch("SELU")),
    _row("celu", lambda: ember.nn.CELU(2.0), lambda x: np.maximum(x, 0) + np.minimum(
        0, 2.0 * (np.exp(x / 2.0) - 1)), _torch("CELU", 2.0)),
    _row("gelu", lambda: ember.nn.GELU(), lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2))),
         _torch("GELU")),
    _row("gelu_tanh", lambda: ember.nn.GELU(approximate="tanh"),
         lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))),
         _torch("GELU", approximate="tanh")),
    _row("silu", lambda: ember.nn.SiLU(), lambda x: x * _sigmoid(x), _torch("SiLU")),
    _row("mish", lambda: ember.nn.Mish(), lambda x: x * np.tanh(np.log1p(np.exp(x))),
         _torch("Mish")),
    _row("sigmoid", lambda: ember.nn.Sigmoid(), _sigmoid, _torch("Sigmoid")),
    _row("tanh", lambda: ember.nn.Tanh(), np.tanh, _torch("Tanh")),
    _row("softplus", lambda: ember.nn.Softplus(), _softplus, _torch("Softplus")),
    _row("softplus_beta_threshold", lambda: ember.nn.Softplus(beta=2.0, threshold=3.0),
         lambda x: _softplus(x, 2.0, 3.0), _torch("Softplus", beta=2.0, threshold=3.0),
         domain=(-3.0, 3.0)),
    _row("softsign", lambda: ember.nn.Softsign(), lambda x: x / (1 + np.abs(x)),
         _torch("Softsign")),
    _row("hardtanh", lambda: ember.nn.Hardtanh(), lambda x: np.clip(x, -1, 1),
         _torch("Hardtanh"), domain=(-3.0, 3.0)),
    _row("hardtanh_range", lambda: ember.nn.Hardtanh(-0.5, 2.0), lambda x: np.clip(x, -0.5, 2),
         _torch("Hardtanh", -0.5, 2.0), domain=(-3.0, 3.0)),
    _row("hardswish", lambda: ember.nn.Hardswish(), lambda x: x * np.clip(x + 3, 0, 6) / 6,
         _torch("Hardswish"), domain=(-5.0, 5.0)),
    _row("hardsigmoid", lambda: ember.nn.Hardsigmoid(), lambda x: np.clip(x + 3, 0, 6) / 6,
         _torch("Hardsigmoid"), domain=(-5.0, 5.0)),
    _row("softmax_dim1", lambda: ember.nn.Softmax(dim=1), lambda x: _softmax(x, 1),
         _torch("Softmax", dim=1), shape=(2, 3, 4)),
    _row("softmax_default_last", lambda: ember.nn.Softmax(), lambda x: _softmax(x, -1),
         _torch("Softmax", dim=-1), shape=(2, 3, 4)),
    _row("log_softmax", lambda: ember.nn.LogSoftmax(dim=-1),
         lambda x: np.log(_softmax(x, -1)), _torch("LogSoftmax", dim=-1)),
]
