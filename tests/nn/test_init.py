"""Initializers: bounds and spreads against their formulas, reproducibility, in-place writes."""
from __future__ import annotations

import math

import numpy as np
import pytest

import ember
from ember.nn import init


def _empty(*shape, dtype="float32"):
    return ember.zeros(shape, dtype=dtype)


@pytest.mark.parametrize("name, param, expected", [
    ("linear", None, 1.0), ("sigmoid", None, 1.0), ("tanh", None, 5 / 3),
    ("relu", None, math.sqrt(2)), ("leaky_relu", None, math.sqrt(2 / (1 + 0.01 ** 2))),
    ("leaky_relu", 0.2, math.sqrt(2 / 1.04)), ("selu", None, 0.75), ("conv2d", None, 1.0)])
def test_calculate_gain(name, param, expected):
    assert init.calculate_gain(name, param) == pytest.approx(expected)


def test_fans_follow_pytorch_layout():
    assert init.calculate_fan_in_and_fan_out(_empty(8, 3, 5, 5)) == (75, 200)
    with pytest.raises(ember.EmberError, match="at least 2 dimensions"):
        init.calculate_fan_in_and_fan_out(_empty(4))


def _check_uniform(values, bound):
    assert np.abs(values).max() <= bound
    assert np.abs(values).max() > 0.95 * bound
    assert values.std() == pytest.approx(bound / math.sqrt(3), rel=0.05)


def test_xavier_and_kaiming_uniform_bounds():
    w = init.xavier_uniform_(_empty(200, 300), gain=2.0)
    _check_uniform(w.numpy(), 2.0 * math.sqrt(6 / 500))
    w = init.kaiming_uniform_(_empty(300, 200), nonlinearity="relu")
    _check_uniform(w.numpy(), math.sqrt(2) * math.sqrt(3 / 200))
    w = init.kaiming_uniform_(_empty(300, 200), mode="fan_out", nonlinearity="relu")
    _check_uniform(w.numpy(), math.sqrt(2) * math.sqrt(3 / 300))


def test_normal_initializers_spread():
    w = init.xavier_normal_(_empty(200, 300))
    assert w.numpy().std() == pytest.approx(math.sqrt(2 / 500), rel=0.03)
    w = init.kaiming_normal_(_empty(300, 200), nonlinearity="relu")
    assert w.numpy().std() == pytest.approx(math.sqrt(2 / 200), rel=0.03)
    w = init.normal_(_empty(100, 100), mean=1.0, std=0.5)
    assert w.numpy().mean() == pytest.approx(1.0, abs=0.02)


def test_orthogonal_rows_or_columns_are_orthonormal():
    tall = init.orthogonal_(_empty(6, 4, dtype="float64"), gain=2.0).numpy()
    np.testing.assert_allclose(tall.T @ tall, 4 * np.eye(4), atol=1e-12)
    wide = init.orthogonal_(_empty(3, 2, 4, dtype="float64")).numpy().reshape(3, 8)
    np.testing.assert_allclose(wide @ wide.T, np.eye(3), atol=1e-12)


def test_trunc_normal_stays_in_bounds():
    w = init.trunc_normal_(_empty(10000), mean=0.0, std=1.0, a=-0.5, b=1.0).numpy()
    assert w.min() >= -0.5 and w.max() <= 1.0 and w.min() < -0.49 and w.max() > 0.99


def test_constant_zeros_ones_write_in_place_and_keep_dtype():
    p = ember.nn.Parameter(ember.zeros(3))
    same = init.constant_(p, 0.25)
    assert same is p and p.dtype == ember.float32
    np.testing.assert_array_equal(p.numpy(), 0.25)
    np.testing.assert_array_equal(init.ones_(p).numpy(), 1.0)
    np.testing.assert_array_equal(init.zeros_(p).numpy(), 0.0)


def test_seeded_generator_makes_init_reproducible():
    ember.manual_seed(3)
    a = ember.nn.Linear(4, 5).weight.numpy().copy()
    ember.manual_seed(3)
    b = ember.nn.Linear(4, 5).weight.numpy().copy()
    np.testing.assert_array_equal(a, b)
    g = ember.random.Generator(7)
    c = init.uniform_(_empty(3), generator=g).numpy().copy()
    d = init.uniform_(_empty(3), generator=ember.random.Generator(7)).numpy()
    np.testing.assert_array_equal(c, d)


def test_linear_default_matches_pytorch_bounds():
    layer = ember.nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    _check_uniform(layer.weight.numpy(), bound)
    assert np.abs(layer.bias.numpy()).max() <= bound


def test_unknown_names_are_errors():
    with pytest.raises(ember.EmberError, match="unknown nonlinearity 'swishy'"):
        init.calculate_gain("swishy")
    with pytest.raises(ember.EmberError, match="fan_in"):
        init.kaiming_uniform_(_empty(2, 2), mode="fan_sideways")


def test_trunc_normal_far_in_a_tail_returns_promptly_within_bounds():
    w = init.trunc_normal_(_empty(1000), mean=10.0, std=1.0, a=-2.0, b=2.0).numpy()
    assert w.min() >= -2.0 and w.max() <= 2.0
    w = init.trunc_normal_(_empty(20000, dtype="float64"), a=-0.5, b=1.0).numpy()
    # The mean of N(0, 1) truncated to [-0.5, 1]: (phi(-0.5) - phi(1)) / (Phi(1) - Phi(-0.5)).
    phi = [math.exp(-z * z / 2) / math.sqrt(2 * math.pi) for z in (-0.5, 1.0)]
    cdf = [0.5 * (1 + math.erf(z / math.sqrt(2))) for z in (-0.5, 1.0)]
    assert w.mean() == pytest.approx((phi[0] - phi[1]) / (cdf[1] - cdf[0]), abs=0.01)
