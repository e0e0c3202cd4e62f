"""The branch-free `where` fast path agrees with np.where on every operand form it takes."""
from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.ops._select import _MIN_SIZE, fast_where

SHAPE = (4, _MIN_SIZE // 4 + 3)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("form", ["arrays", "array_scalar", "scalar_array", "scalars",
                                  "broadcast_scalar"])
def test_fast_where_matches_numpy(dtype, form):
    rng = np.random.default_rng(0)
    cond = rng.random(SHAPE) < 0.5
    a = rng.standard_normal(SHAPE).astype(dtype)
    a[0, :3] = [np.inf, -np.inf, np.nan]
    b = rng.standard_normal(SHAPE).astype(dtype)
    operands = {"arrays": (a, b), "array_scalar": (a, 0.0), "scalar_array": (2.5, b),
                "scalars": (np.array(1.5, dtype), np.broadcast_to(np.array(0, dtype), SHAPE)),
                "broadcast_scalar": (np.broadcast_to(np.array(3, dtype), SHAPE), b)}[form]
    got = fast_where(cond, *operands)
    assert got is not None and got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, np.where(cond, *operands))


def test_fast_path_declines_what_it_cannot_do():
    cond = np.ones(SHAPE, bool)
    a = np.ones(SHAPE, np.float32)
    assert fast_where(cond[:, :5], a[:, :5], 0.0) is None           # small
    assert fast_where(cond, a.astype(np.int32), 0) is None           # not floating
    assert fast_where(cond, a, np.ones(SHAPE, np.float64)) is None   # mixed dtypes
    assert fast_where(cond, np.ones(SHAPE[::-1], np.float32).T, 0.0) is None  # strided


def test_relu_gradient_through_fast_path_is_exact():
    x = ember.asarray(np.random.default_rng(1).standard_normal(SHAPE).astype(np.float32))
    x.requires_grad_(True)
    ember.nn.functional.relu(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), (x.numpy() > 0).astype(np.float32))
