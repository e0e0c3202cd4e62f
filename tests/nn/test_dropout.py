"""Dropout: statistics of the masks, reproducibility, channel-wise masks, modes, validation."""
from __future__ import annotations

import numpy as np
import pytest

import ember
import ember.nn.functional as F


def test_dropout_zeroes_about_p_and_preserves_the_mean():
    ember.manual_seed(0)
    x = ember.ones((200, 500))
    y = F.dropout(x, 0.3).numpy()
    assert abs((y == 0).mean() - 0.3) < 0.01
    assert abs(y.mean() - 1.0) < 0.01
    np.testing.assert_allclose(y[y != 0], 1 / 0.7, rtol=1e-6)


def test_manual_seed_reproduces_the_masks():
    x = ember.ones((8, 16))
    ember.manual_seed(42)
    first = F.dropout(x, 0.5).numpy()
    ember.manual_seed(42)
    second = F.dropout(x, 0.5).numpy()
    third = F.dropout(x, 0.5).numpy()
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(second, third)


def test_an_explicit_generator_is_used_instead_of_the_global_one():
    x = ember.ones(64)
    a = F.dropout(x, 0.5, generator=ember.random.Generator(3)).numpy()
    b = ember.nn.Dropout(0.5, generator=ember.random.Generator(3))(x).numpy()
    np.testing.assert_array_equal(a, b)


def test_dropout2d_zeroes_whole_channels():
    ember.manual_seed(1)
    y = ember.nn.Dropout2d(0.5)(ember.ones((4, 32, 3, 3))).numpy()
    per_channel = y.reshape(4, 32, -1)
    assert np.all(per_channel.min(axis=2) == per_channel.max(axis=2))
    assert set(np.unique(per_channel)) == {0.0, 2.0}
    assert 0.3 < (per_channel[:, :, 0] == 0).mean() < 0.7


def test_dropout2d_treats_3d_input_as_n_c_l():
    ember.manual_seed(2)
    y = F.dropout2d(ember.ones((3, 16, 5)), 0.5).numpy()
    assert np.all(y.min(axis=2) == y.max(axis=2))


def test_gradient_is_the_scaled_mask():
    ember.manual_seed(4)
    x = ember.ones((10, 10), requires_grad=True)
    y = F.dropout(x, 0.25)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), y.detach().numpy())


def test_eval_mode_and_p0_are_the_identity_and_p1_drops_everything():
    x = ember.randn(5, 5)
    assert ember.nn.Dropout(0.9).eval()(x) is x
    assert F.dropout(x, 0.0) is x
    assert float(F.dropout(x, 1.0).abs().sum()) == 0.0


@pytest.mark.parametrize("p", [-0.1, 1.5, "0.5"])
def test_probability_outside_0_1_is_rejected(p):
    with pytest.raises(ember.EmberError, match="between 0 and 1"):
        F.dropout(ember.ones(3), p)
    with pytest.raises(ember.EmberError, match="between 0 and 1"):
        ember.nn.Dropout2d(p)


def test_float64_input_gives_float64_output():
    y = F.dropout(ember.ones(4, dtype=ember.float64), 0.5)
    assert y.dtype == ember.float64
