"""A dense bias folded into the softmax cross-entropy reading it (ember.jit.passes.bias)."""
from __future__ import annotations

import numpy as np
import pytest

import ember
from ember import nn
from ember.nn import functional as F
from ember.ops.softmax import SOFTMAX_CE, SOFTMAX_CE_BIAS


def _ce_reference(logits, target):
    logits = logits.astype(np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_probs[np.arange(len(target)), target]


def _train_step(model, optimizer, x, y, also_logits=False):
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return (loss, logits) if also_logits else loss


def _models(seed=0):
    pair = []
    for _ in range(2):
        ember.manual_seed(seed)
        model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 9))
        pair.append((model, ember.optim.SGD(model.parameters(), lr=0.3)))
    return pair


@pytest.mark.parametrize("also_logits", [False, True])
def test_a_jitted_step_matches_eager_and_folds_only_when_the_loss_is_the_only_reader(
        also_logits):
    rng = np.random.default_rng(1)
    x = ember.tensor(rng.standard_normal((12, 6)).astype(np.float32))
    y = ember.tensor(rng.integers(0, 9, 12))
    (eager_model, eager_opt), (jit_model, jit_opt) = _models()
    step = ember.jit(lambda x, y: _train_step(jit_model, jit_opt, x, y, also_logits))
    names = [node.prim.name for node in step.lower(x, y, fused=True).nodes]
    # returning the logits gives them a second reader: the add must stay in the dense layer
    assert ("softmax_cross_entropy_bias" in names) is not also_logits
    assert ("softmax_cross_entropy" in names) is also_logits
    for _ in range(4):
        want = _train_step(eager_model, eager_opt, x, y, also_logits)
        got = step(x, y)
        if also_logits:
            np.testing.assert_allclose(got[1].numpy(), want[1].numpy(), rtol=1e-5, atol=1e-6)
            got, want = got[0], want[0]
        np.testing.assert_allclose(got.item(), want.item(), rtol=1e-5)
    for p_jit, p_eager in zip(jit_model.parameters(), eager_model.parameters()):
        np.testing.assert_allclose(p_jit.numpy(), p_eager.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_the_primitive_matches_the_loss_of_logits_plus_bias(dtype):
    # float16 takes the NumPy path, the others the row kernel, where row 1 leaves exp's range
    # (the kernel's shifted pass); row 2 is ignored.
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((4, 11)).astype(dtype)
    bias = rng.standard_normal(11).astype(dtype)
    logits[1] += np.asarray({"float16": 8.0, "float32": 120.0, "float64": 800.0}[dtype], dtype)
    target = np.array([3, 0, -100, 10])
    got = SOFTMAX_CE_BIAS.forward(np, logits, bias, target, -100)
    plain = SOFTMAX_CE.forward(np, (logits + bias).astype(dtype), target, -100)
    tol = {"float16": 2e-3, "float32": 2e-6, "float64": 1e-12}[dtype]
    want = _ce_reference((logits + bias).astype(dtype), np.where(target < 0, 0, target))
    want[2] = 0.0
    assert got.outputs.dtype == np.dtype(dtype)
    np.testing.assert_allclose(got.outputs.astype(np.float64), want, rtol=tol, atol=tol)
    for mine, theirs in zip((got.outputs,) + tuple(got.residuals),
                            (plain.outputs,) + tuple(plain.residuals)):
        np.testing.assert_allclose(np.asarray(mine, np.float64), np.asarray(theirs, np.float64),
                                   rtol=tol, atol=tol)


def test_the_primitive_checks_the_target_range():
    logits, bias = np.zeros((2, 5), np.float32), np.zeros(5, np.float32)
    with pytest.raises(ember.EmberError, match="softmax_cross_entropy"):
        SOFTMAX_CE_BIAS.forward(np, logits, bias, np.array([1, 5]), -100)
