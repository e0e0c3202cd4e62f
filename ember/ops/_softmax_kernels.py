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


@numba.njit(inline="always", error_model="numpy")
def _exp_row(source, offset, out, count, lowest, highest):  # pragma: no cover - compiled
    """out[:count] <- exp(x - shift) for x = source[:count] (+ offset[:count] unless `offset`
    is None: Numba prunes the branch per call site); returns (their sum, shift).

    The shift is 0 unless the unshifted sum falls outside [lowest, highest] (overflow, or
    terms that may be subnormal: see `sum_range`); then it is the row's maximum (a NaN in
    x[0] stays, making the row NaN). The maximum costs a pass that does not vectorize, which
    typical rows never pay. `source` and `out` must not overlap."""
    total = 0.0
    for j in range(count):
        value = _fastmath.exp(source[j] if offset is None else source[j] + offset[j])
        out[j] = value
        total += value
    shift = lowest - lowest  # 0 in the row's dtype (lowest is finite): a float64 shift
    # would make the shifted values, and so their exp, float64
    if not (total >= lowest and total <= highest):
        shift = source[0] if offset is None else source[0] + offset[0]
        for j in range(1, count):
            x = source[j] if offset is None else source[j] + offset[j]
            shift = x if x > shift else shift
        total = 0.0
        for j in range(count):
            x = source[j] if offset is None else source[j] + offset[j]
            value = _fastmath.exp(x - shift)
            out[j] = value
            total += value
    return total, shift


@numba.njit(cache=True, fastmath={"reassoc", "contract"}, error_model="numpy")
def softmax_rows(scores, scale, causal, lowest, highest):  # pragma: no cover - compiled
    """scores (B, L, S) <- softmax(scores * scale) over S, in place; `scale`, `lowest` and
    `highest` have the scores' dtype. `causal` masks key j > i (top-left aligned); a row whose
    keys are all masked or -inf gets zero weights. Exponentiated by `_exp_row`."""
    batch, length, source = scores.shape
    scaled = np.empty(source, dtype=scores.dtype)  # the row times scale: `_exp_row`'s source
    for b in range(batch):
        for i in range(length):
            row = scores[b, i]
            valid = min(i + 1, source) if causal else source
            if valid == 0:
                continue
            for j in range(valid):
                scaled[j] = row[j] * scale
            total, peak = _exp_row(scaled, None, row, valid, lowest, highest)
            if peak == -np.inf:  # every key masked
                row[:] = 0.0
                continue
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
def cross_entropy_rows(logits, bias, target, ignore_index, lowest, highest, exps, inverse,
                       nll):  # pragma: no cover - compiled
    """Per row n of (M, C) `logits` plus the (C,) `bias` (None: no bias): with x[n] =
    logits[n] + bias, exps[n] <- exp(x[n] - shift), inverse[n] <- 1 / its sum,
    nll[n] <- log(sum) + shift - x[n, target[n]] (0 where target is ignore_index).

    The shift is `_exp_row`'s (0 unless the unshifted sum leaves range, as in
    `ember.ops.softmax._exp_and_sums`). A NaN in a row makes its loss NaN. Targets must lie in
    [0, C) or be ignored."""
    rows, classes = logits.shape
    for n in range(rows):
        x = logits[n]
        total, shift = _exp_row(x, bias, exps[n], classes, lowest, highest)
        inverse[n] = 1.0 / total
        t = target[n]
        if t == ignore_index:
            nll[n] = 0.0
        else:
            picked = x[t] if bias is None else x[t] + bias[t]
            nll[n] = np.log(total) + shift - picked


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
