"""The cross-entropy row kernels (ember/ops/_softmax_kernels.py) against the NumPy path they
replace, on rows that take each branch: in range, overflowing, underflowing, NaN, +-inf."""
from __future__ import annotations

import numpy as np
import pytest

import ember
import ember.nn.functional as F
from ember.ops.indexing import IndexOutOfRange
from ember.ops.softmax import SOFTMAX_CE, SOFTMAX_CE_GRAD, _exp_and_sums


def _numpy_cross_entropy(logits, target, ignore_index):
    """The NumPy formulation (what runs for other backends and dtypes)."""
    valid = target != ignore_index
    safe = np.where(valid, target, 0)
    work, exps, sums, shift = _exp_and_sums(np, logits, 1)
    picked = work[np.arange(len(target)), safe] - (0 if shift is None else shift[:, 0])
    nll = np.where(valid, np.log(sums[:, 0]) - picked, 0)
    return nll, exps / sums


def _rows(dtype):
    rng = np.random.default_rng(3)
    logits = rng.uniform(-4, 4, size=(9, 37)).astype(dtype)
    logits[1] += 1000.0  # overflows unshifted
    logits[2] -= 1000.0  # underflows unshifted
    logits[3, 5] = np.nan
    logits[4, 7] = -np.inf  # one class impossible: probability 0
    logits[5, :] = -np.inf  # no possible class: NaN, as log_softmax gives
    logits[6, 0] = np.inf
    target = rng.integers(0, 37, size=9)
    target[7] = -100  # ignored
    return logits, target


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_rows_match_the_numpy_formulas(dtype):
    logits, target = _rows(dtype)
    result = SOFTMAX_CE.forward(np, logits, target, -100)
    exps, inverse, valid, safe = result.residuals
    with np.errstate(all="ignore"):
        ref_nll, ref_probs = _numpy_cross_entropy(logits.astype(np.float64), target, -100)
    tol = 2e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(result.outputs, ref_nll, rtol=tol, atol=tol)
    np.testing.assert_allclose(exps * inverse[:, None], ref_probs, rtol=tol, atol=tol)
    assert result.outputs.dtype == dtype and result.outputs[7] == 0.0
    assert np.isnan(result.outputs[[3, 5, 6]]).all()  # NaN, all -inf, +inf rows
    assert exps[4, 7] == 0.0 and np.isfinite(result.outputs[[0, 1, 2, 4, 8]]).all()
    np.testing.assert_array_equal(valid, target != -100)
    np.testing.assert_array_equal(safe, np.where(target != -100, target, 0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_grad_rows_match_the_formula(dtype):
    rng = np.random.default_rng(4)
    probs = rng.random((6, 11)).astype(dtype)
    target = rng.integers(0, 11, size=6)
    prob_scale, target_scale = rng.random(6).astype(dtype), rng.random(6).astype(dtype)
    got = SOFTMAX_CE_GRAD.forward(np, probs, target, prob_scale, target_scale)
    want = probs * prob_scale[:, None]
    want[np.arange(6), target] -= target_scale
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_a_traced_step_with_a_target_out_of_range_gets_an_ember_error():
    # eager cross_entropy checks targets first; under ember.jit the check is the kernel's
    step = ember.jit(lambda x, t: F.cross_entropy(x, t))
    x = ember.asarray(np.zeros((3, 4), np.float32))
    assert float(step(x, ember.asarray(np.array([0, 3, 1])))) == pytest.approx(np.log(4))
    with pytest.raises(IndexOutOfRange, match=r"\[4\] outside \[0, 4\)"):
        step(x, ember.asarray(np.array([0, 4, 1])))
    with pytest.raises(IndexOutOfRange, match=r"\[-3\] outside \[0, 4\)"):
        step(x, ember.asarray(np.array([0, -3, 1])))  # would wrap around as a NumPy index
