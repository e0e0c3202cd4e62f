"""Numba row kernels of the softmax family (NumPy float32/float64): attention's softmax and
its backward, and the softmax cross-entropy and its gradient.

The NumPy formulations make several passes over their (rows, classes) arrays: attention's
about eight (scale, causal mask, max, shift, exp, sum, divide, plus the fully-masked-row
checks), the cross-entropy's four (exp, sum, the overflow check, the pick). These make one
per row while the row is in cache, and the float32 exp vectorizes (ember/ops/_fastmath.py).
"""
from __future__ import annotations

import numba
import numpy as np

from ember.ops import _fastmath


def sum_range(dtype) -> tuple:
    """(lowest, highest) in `dtype`: an unshifted row sum inside it is kept (no overflow, and
    any term that underflowed is below 1e-19 of it); outside, the row is redone shifted."""
    limits = np.finfo(dtype)
    return limits.dtype.type(limits.tiny ** 0.5), limits.max


@numba.njit(cache=True, fastmath={"reassoc", "contract"}, error_model="numpy")
def softmax_rows(scores, scale, causal, lowest, highest):  # pragma: no cover - compiled
    """scores (B, L, S) <- softmax(scores * scale) over S, in place; `scale`, `lowest` and
    `highest` have the scores' dtype. `causal` masks key j > i (top-left aligned); a row whose
    keys are all masked or -inf gets zero weights.

    As in `cross_entropy_rows`, the row is exponentiated unshifted first (a row maximum does
    not vectorize, and cost half the kernel's time), and shifted by its maximum only when the
    sum leaves [lowest, highest]."""
    batch, length, source = scores.shape
    keep = np.empty(source, dtype=scores.dtype)  # the row as it came, for a shifted retry
    for b in range(batch):
        for i in range(length):
            row = scores[b, i]
            valid = min(i + 1, source) if causal else source
            if valid == 0:
                continue
            total = 0.0
            for j in range(valid):
                keep[j] = row[j]
                value = _fastmath.exp(row[j] * scale)
                row[j] = value
                total += value
            if not (total >= lowest and total <= highest):
                # the row's own type (scale is passed in it): a float64 peak would make the
                # shifted scores, and so their exp, float64
                peak = keep[0] * scale
                for j in range(1, valid):
                    value = keep[j] * scale
                    peak = value if value > peak else peak  # a NaN in keep[0] stays: NaN row
                if peak == -np.inf:
                    row[:] = 0.0
                    continue
                total = 0.0
                for j in range(valid):
                    value = _fastmath.exp(keep[j] * scale - peak)
                    row[j] = value
                    total += value
            inverse = 1.0 / total
            for j in range(valid):
                row[j] = row[j] * inverse
            for j in range(valid, source):
                row[j] = 0.0


@numba.njit(cache=True, fastmath={"reassoc", "contract"}, error_model="numpy")
def softmax_rows_backward(grad, weights, scale):  # pragma: no cover - compiled
    """grad (B, L, S) <- scale * weights * (grad - <grad, weights>) over S, in place: the
    softmax's vector-Jacobian product, times `scale`."""
    batch, length, source = grad.shape
    for b in range(batch):
        for i in range(length):
            g = grad[b, i]
            w = weights[b, i]
            dot = 0.0
            for j in range(source):
                dot += g[j] * w[j]
            for j in range(source):
                g[j] = (g[j] - dot) * w[j] * scale


@numba.njit(cache=True, fastmath={"reassoc", "contract"}, error_model="numpy")
def cross_entropy_rows(logits, target, ignore_index, lowest, highest, exps, inverse,
                       nll):  # pragma: no cover - compiled
    """Per row n of (M, C) `logits`: exps[n] <- exp(logits[n] - shift), inverse[n] <- 1 / its
    sum, nll[n] <- log(sum) + shift - logits[n, target[n]] (0 where target is ignore_index).

    As `ember.ops.softmax._exp_and_sums` does, the shift is 0 unless the unshifted sum falls
    outside [lowest, highest] (overflow, or terms that may be subnormal); then it is the row
    maximum. A NaN in a row makes its loss NaN. Targets must lie in [0, C) or be ignored.
    """
    rows, classes = logits.shape
    for n in range(rows):
        x, e = logits[n], exps[n]
        total = 0.0
        for j in range(classes):
            value = _fastmath.exp(x[j])
            e[j] = value
            total += value
        shift = lowest - lowest  # 0 in the row's dtype (lowest is finite)
        if not (total >= lowest and total <= highest):
            shift = x[0]
            for j in range(1, classes):
                shift = x[j] if x[j] > shift else shift
            total = 0.0
            for j in range(classes):
                value = _fastmath.exp(x[j] - shift)
                e[j] = value
                total += value
        inverse[n] = 1.0 / total
        t = target[n]
        nll[n] = 0.0 if t == ignore_index else np.log(total) + shift - x[t]


@numba.njit(cache=True, error_model="numpy")
def cross_entropy_grad_rows(probs, target, prob_scale, target_scale,
                            gx):  # pragma: no cover - compiled
    """gx[n] <- probs[n] * prob_scale[n], then gx[n, target[n]] -= target_scale[n]."""
    rows, classes = probs.shape
    for n in range(rows):
        p, g, scale = probs[n], gx[n], prob_scale[n]
        for j in range(classes):
            g[j] = p[j] * scale
        g[target[n]] -= target_scale[n]
