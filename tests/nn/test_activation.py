"""Activations beyond the layer table: NaN propagates (as in PyTorch), so divergence shows."""
from __future__ import annotations

import numpy as np
import pytest

import ember
import ember.nn.functional as F

NAMES = ["relu", "relu6", "leaky_relu", "elu", "selu", "celu", "gelu", "silu", "mish",
         "softplus", "softsign", "hardtanh", "hardswish", "hardsigmoid", "sigmoid", "tanh"]


@pytest.mark.parametrize("size", [4, 1 << 15])  # small, and large enough for the fast where
@pytest.mark.parametrize("name", NAMES)
def test_nan_propagates_and_other_values_stay_finite(name, size):
    values = np.linspace(-3, 3, size).astype(np.float32)
    values[1] = np.nan
    out = getattr(F, name)(ember.asarray(values)).numpy()
    assert np.isnan(out[1]) and np.isfinite(np.delete(out, 1)).all()


def test_relu_gradient_at_zero_is_zero():
    x = ember.asarray(np.array([-1.0, 0.0, 2.0])).requires_grad_()
    F.relu(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 1.0])
