"""float16 and bfloat16: results keep the dtype and agree with float32 within its precision."""
from __future__ import annotations

import numpy as np
import pytest

import ember

CASES = {
    "add": lambda a, b: a + b,
    "multiply": lambda a, b: a * b,
    "divide": lambda a, b: a / (b.abs() + 1),
    "exp": lambda a, b: ember.exp(a),
    "tanh": lambda a, b: ember.tanh(a),
    "sigmoid": lambda a, b: ember.sigmoid(a),
    "sum": lambda a, b: a.sum(axis=1),
    "mean": lambda a, b: a.mean(axis=0),
    "max": lambda a, b: a.max(axis=1),
    "logsumexp": lambda a, b: ember.logsumexp(a, axis=1),
    "scalar": lambda a, b: a * 0.5 + 1.5,
    "where": lambda a, b: ember.where(a > b, a, b),
    "concat": lambda a, b: ember.concat([a, b], axis=1),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_matches_float32(name, dtype):
    rng = np.random.default_rng(0)
    a32 = ember.asarray(rng.uniform(-2, 2, (4, 5)).astype(np.float32))
    b32 = ember.asarray(rng.uniform(-2, 2, (4, 5)).astype(np.float32))
    a, b = a32.to(dtype), b32.to(dtype)
    out = CASES[name](a, b)
    assert out.dtype == dtype
    # compare against float32 math on the rounded inputs
    reference = CASES[name](a.to(ember.float32), b.to(ember.float32)).numpy()
    tolerance = 1e-2 if dtype == "float16" else 4e-2
    np.testing.assert_allclose(out.to(ember.float32).numpy(), reference, rtol=tolerance,
                               atol=tolerance)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_gradients(dtype):
    x = ember.tensor([0.5, -1.0, 2.0], dtype=dtype, requires_grad=True)
    (ember.exp(x) * x).sum().backward()
    assert x.grad.dtype == dtype
    values = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(x.grad.to(ember.float32).numpy(), np.exp(values) * (values + 1),
                               rtol=3e-2)
