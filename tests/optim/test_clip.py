"""clip_grad_norm_ / clip_grad_value_ against NumPy (and torch.nn.utils when installed)."""
from __future__ import annotations

import math

import numpy as np
import pytest

import ember
from ember.optim.clip import NonFiniteNormError, clip_grad_norm_, clip_grad_value_

try:
    import torch
except ImportError:  # PyTorch is an optional reference
    torch = None

RNG = np.random.default_rng(0)
GRADS = [RNG.standard_normal((3, 4)), RNG.standard_normal(5), RNG.standard_normal((2, 2, 2))]
NORMS = [2.0, 1.0, math.inf, "inf", 3.0]


def with_grads(grads, dtype="float64"):
    params = []
    for grad in grads:
        param = ember.nn.Parameter(ember.zeros(grad.shape, dtype=dtype))
        param.grad = ember.tensor(grad, dtype=dtype)
        params.append(param)
    return params


def numpy_total_norm(grads, norm_type):
    order = float(norm_type)
    flat = np.concatenate([g.ravel() for g in grads])
    return np.abs(flat).max() if order == math.inf else (np.abs(flat) ** order).sum() ** (
        1 / order)


@pytest.mark.parametrize("norm_type", NORMS)
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_numpy(norm_type, max_norm):
    params = with_grads(GRADS)
    total = clip_grad_norm_(params, max_norm, norm_type=norm_type)
    expected = numpy_total_norm(GRADS, norm_type)
    assert isinstance(total, ember.Tensor) and total.dtype == ember.float64
    np.testing.assert_allclose(total.item(), expected, rtol=1e-12)
    scale = min(max_norm / (expected + 1e-6), 1.0)
    for param, grad in zip(params, GRADS):
        np.testing.assert_allclose(param.grad.numpy(), grad * scale, rtol=1e-12)
    if max_norm < expected:  # clipped grads have (almost exactly) the allowed norm
        clipped = [p.grad.numpy() for p in params]
        np.testing.assert_allclose(numpy_total_norm(clipped, norm_type), max_norm, rtol=1e-5)


@pytest.mark.torch_reference
@pytest.mark.parametrize("norm_type", NORMS)
def test_clip_grad_norm_matches_torch(norm_type):
    params = with_grads(GRADS)
    total = clip_grad_norm_(params, 0.7, norm_type=norm_type)
    tensors = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in GRADS]
    for tensor, grad in zip(tensors, GRADS):
        tensor.grad = torch.tensor(grad)
    expected = torch.nn.utils.clip_grad_norm_(tensors, 0.7, norm_type=norm_type)
    np.testing.assert_allclose(total.item(), expected.item(), rtol=1e-12)
    for param, tensor in zip(params, tensors):
        np.testing.assert_allclose(param.grad.numpy(), tensor.grad.numpy(), rtol=1e-12)


def test_float32_grads_stay_float32():
    params = with_grads(GRADS, "float32")
    total = clip_grad_norm_(params, 0.1)
    assert total.dtype == ember.float32
    assert all(p.grad.dtype == ember.float32 for p in params)
    np.testing.assert_allclose(total.item(), numpy_total_norm(GRADS, 2), rtol=1e-5)


def test_nonfinite_norm_raises_only_when_asked():
    grads = [GRADS[0].copy(), GRADS[1]]
    grads[0][1, 2] = np.nan
    with pytest.raises(NonFiniteNormError, match="nan"):
        clip_grad_norm_(with_grads(grads), 1.0, error_if_nonfinite=True)
    with pytest.raises(NonFiniteNormError, match="inf"):
        clip_grad_norm_(with_grads([np.array([np.inf, 1.0])]), 1.0, error_if_nonfinite=True)
    params = with_grads(grads)
    assert math.isnan(clip_grad_norm_(params, 1.0).item())  # PyTorch's default: no error
    assert np.isnan(params[1].grad.numpy()).all()


def test_parameters_without_grads_are_ignored():
    params = with_grads(GRADS[:1])
    frozen = ember.nn.Parameter(ember.ones(3))
    total = clip_grad_norm_([frozen, *params], 1.0)
    np.testing.assert_allclose(total.item(), np.linalg.norm(GRADS[0]), rtol=1e-12)
    assert frozen.grad is None
    assert clip_grad_norm_([frozen], 1.0).item() == 0.0
    assert clip_grad_norm_(params[0], 1e9).item() > 0  # a single tensor is accepted


def test_shared_gradient_arrays_are_scaled_once():
    # autograd may give two leaves one gradient array; each must be scaled exactly once
    w, b = ember.nn.Parameter(ember.ones(4)), ember.nn.Parameter(ember.ones(4))
    (w + b).sum().backward()
    clip_grad_norm_([w, b], 1.0)
    expected = 1.0 / (math.sqrt(8) + 1e-6)
    np.testing.assert_allclose(w.grad.numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(b.grad.numpy(), expected, rtol=1e-6)


def test_clip_grad_value_matches_numpy():
    params = with_grads(GRADS)
    clip_grad_value_(params, 0.5)
    for param, grad in zip(params, GRADS):
        np.testing.assert_array_equal(param.grad.numpy(), np.clip(grad, -0.5, 0.5))


def test_bad_norm_type_raises():
    with pytest.raises(ember.EmberError, match="norm_type"):
        clip_grad_norm_(with_grads(GRADS), 1.0, norm_type=-1)
