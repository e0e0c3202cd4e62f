"""Normalization layers beyond the layer table: running statistics, modes, laziness, errors."""
from __future__ import annotations

import numpy as np
import pytest

import ember
import ember.nn.functional as F


def _batch(rng, shape=(8, 3, 4, 4), dtype=np.float32):
    return rng.normal(2.0, 3.0, size=shape).astype(dtype)


def test_running_stats_follow_the_momentum_formula():
    rng = np.random.default_rng(0)
    layer = ember.nn.BatchNorm2d(3, momentum=0.3)
    mean, var = np.zeros(3), np.ones(3)
    for step in range(3):
        x = _batch(rng)
        layer(ember.asarray(x))
        count = x.size // 3
        batch_mean = x.mean(axis=(0, 2, 3))
        unbiased = x.var(axis=(0, 2, 3)) * count / (count - 1)
        mean = 0.7 * mean + 0.3 * batch_mean
        var = 0.7 * var + 0.3 * unbiased
        assert int(layer.num_batches_tracked.item()) == step + 1
    np.testing.assert_allclose(layer.running_mean.numpy(), mean, rtol=1e-5)
    np.testing.assert_allclose(layer.running_var.numpy(), var, rtol=1e-5)
    assert layer.running_mean.dtype == ember.float32
    assert layer.num_batches_tracked.dtype == ember.int64


def test_momentum_none_gives_the_cumulative_average():
    rng = np.random.default_rng(1)
    layer = ember.nn.BatchNorm1d(2, momentum=None)
    batches = [rng.normal(size=(5, 2)) for _ in range(4)]
    for x in batches:
        layer(ember.asarray(x.astype(np.float32)))
    expected_mean = np.mean([x.mean(axis=0) for x in batches], axis=0)
    expected_var = np.mean([x.var(axis=0, ddof=1) for x in batches], axis=0)
    np.testing.assert_allclose(layer.running_mean.numpy(), expected_mean, rtol=1e-5)
    np.testing.assert_allclose(layer.running_var.numpy(), expected_var, rtol=1e-5)


def test_eval_mode_uses_running_stats_and_leaves_them_alone():
    rng = np.random.default_rng(2)
    layer = ember.nn.BatchNorm1d(3)
    layer(ember.asarray(_batch(rng, (6, 3))))
    layer.eval()
    before = {k: v.numpy().copy() for k, v in layer.state_dict().items()}
    x = _batch(rng, (4, 3))
    out = layer(ember.asarray(x)).numpy()
    expected = (x - before["running_mean"]) / np.sqrt(before["running_var"] + 1e-5)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    for key, value in layer.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), before[key])


def test_training_output_is_standardized_per_channel_in_float32():
    x = ember.asarray(_batch(np.random.default_rng(3)))
    y = ember.nn.BatchNorm2d(3)(x)
    assert y.dtype == ember.float32
    np.testing.assert_allclose(y.numpy().mean(axis=(0, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.numpy().var(axis=(0, 2, 3)), 1.0, rtol=1e-3)


def test_lazy_num_features_builds_on_first_call():
    layer = ember.nn.BatchNorm2d(None)
    assert list(layer.state_dict()) == []
    layer(ember.ones((2, 5, 3, 3)))
    assert {k: v.shape for k, v in layer.state_dict().items()} == {
        "weight": (5,), "bias": (5,), "running_mean": (5,), "running_var": (5,),
        "num_batches_tracked": ()}


def test_instance_norm_running_stats_average_the_samples():
    rng = np.random.default_rng(4)
    layer = ember.nn.InstanceNorm2d(2, momentum=0.5, track_running_stats=True)
    x = _batch(rng, (3, 2, 4, 5))
    layer(ember.asarray(x))
    per_sample_var = x.reshape(3, 2, -1).var(axis=2, ddof=1)
    np.testing.assert_allclose(layer.running_mean.numpy(),
                               0.5 * x.mean(axis=(2, 3)).mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(layer.running_var.numpy(), 0.5 + 0.5 * per_sample_var.mean(0),
                               rtol=1e-5)


def test_instance_norm_accepts_unbatched_input():
    x = ember.asarray(np.random.default_rng(5).normal(size=(2, 3, 3)).astype(np.float32))
    batched = ember.nn.InstanceNorm2d(2)(ember.reshape(x, (1, 2, 3, 3)))
    np.testing.assert_allclose(ember.nn.InstanceNorm2d(2)(x).numpy(), batched.numpy()[0])


def test_layer_norm_keeps_float32_and_half_inputs_in_their_dtype():
    x = np.random.default_rng(6).normal(size=(4, 8))
    for dtype in (ember.float32, ember.float16):
        y = F.layer_norm(ember.asarray(x).astype(dtype), (8,))
        assert y.dtype == dtype
        np.testing.assert_allclose(y.numpy().astype(np.float64).mean(axis=1), 0.0, atol=2e-3)


def test_layer_norm_gradient_matches_float64_reference_in_float32():
    rng = np.random.default_rng(7)
    x, g = rng.normal(size=(3, 6)), rng.normal(size=(3, 6))
    grads = []
    for dtype in (ember.float32, ember.float64):
        xt = ember.asarray(x).astype(dtype).detach().requires_grad_(True)
        F.layer_norm(xt, (6,)).backward(ember.asarray(g).astype(dtype))
        grads.append(xt.grad.numpy())
    assert grads[0].dtype == np.float32
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("call, message", [
    (lambda: F.layer_norm(ember.ones((2, 4)), (3,)), "normalized_shape"),
    (lambda: F.batch_norm(ember.ones((2, 4)), ember.zeros(3), ember.ones(3)), "running_mean"),
    (lambda: F.batch_norm(ember.ones((1, 3)), None, None, training=True), "more than 1 value"),
    (lambda: F.group_norm(ember.ones((2, 6)), 4), "divisible"),
    (lambda: ember.nn.BatchNorm2d(3)(ember.ones((2, 3, 4))), "4-d"),
    (lambda: F.layer_norm(ember.ones((2, 3), dtype=ember.int64), (3,)), "floating"),
])
def test_bad_inputs_raise_ember_errors_naming_the_problem(call, message):
    with pytest.raises(ember.EmberError, match=message):
        call()


def test_layer_norm_of_a_permuted_input():
    # (B, C, T) -> (B, T, C): the conv-then-LayerNorm pattern hands over a non-contiguous view.
    x = np.random.default_rng(0).standard_normal((2, 8, 6)).astype(np.float32)
    permuted = ember.asarray(x).permute(0, 2, 1)
    rows = x.transpose(0, 2, 1)
    expected = (rows - rows.mean(-1, keepdims=True)) / np.sqrt(rows.var(-1, keepdims=True)
                                                               + 1e-5)
    np.testing.assert_allclose(ember.nn.LayerNorm(8)(permuted).numpy(), expected, atol=1e-5)


def test_lazy_batch_norm_keeps_loaded_state():
    source = ember.nn.BatchNorm2d(4)
    state = {k: v.numpy() + 2.0 if v.dtype.kind == "f" else v.numpy()
             for k, v in source.state_dict().items()}
    lazy = ember.nn.BatchNorm2d(None)
    lazy.load_state_dict(state)
    assert lazy.num_features == 4
    lazy.eval()
    x = np.ones((2, 4, 3, 3), np.float32)
    expected = (x - 2.0) / np.sqrt(3.0 + 1e-5) * 3.0 + 2.0
    np.testing.assert_allclose(lazy(ember.asarray(x)).numpy(), expected, rtol=1e-6)


def test_checkpoints_without_a_batch_counter_load_strictly():
    layer = ember.nn.BatchNorm1d(3)
    state = {k: v.numpy() for k, v in layer.state_dict().items() if k != "num_batches_tracked"}
    assert ember.nn.BatchNorm1d(3).load_state_dict(state).missing_keys == []


@pytest.mark.parametrize("momentum", [None, 0.1])
def test_instance_norm_running_stats_follow_pytorch(momentum):
    layer = ember.nn.InstanceNorm1d(3, momentum=momentum, track_running_stats=True)
    x = ember.asarray(np.random.default_rng(1).standard_normal((2, 3, 5)).astype(np.float32))
    for _ in range(3):
        layer(x)
    assert layer.num_batches_tracked.item() == 0
    if momentum is None:  # no cumulative average for instance norm: the stats stay put
        np.testing.assert_array_equal(layer.running_mean.numpy(), 0.0)
        np.testing.assert_array_equal(layer.running_var.numpy(), 1.0)
    else:
        assert np.abs(layer.running_mean.numpy()).max() > 0
