"""Numba row kernels for attention's softmax and its backward (NumPy float32/float64).

The NumPy formulation makes about eight passes over the (..., L, S) scores (scale, causal
mask, max, shift, exp, sum, divide, plus the fully-masked-row checks); these make one per row
while the row is in cache, and the float32 exp vectorizes (ember/ops/_fastmath.py).
"""
from __future__ import annotations

import numba
import numpy as np

from ember.ops import _fastmath


@numba.njit(cache=True, fastmath={"reassoc", "contract"}, error_model="numpy")
def softmax_rows(scores, scale, causal):  # pragma: no cover - compiled
    """scores (B, L, S) <- softmax(scores * scale) over S, in place; `scale` has the scores'
    dtype. `causal` masks key j > i (top-left aligned); a row whose keys are all masked or
    -inf gets zero weights."""
    batch, length, source = scores.shape
    for b in range(batch):
        for i in range(length):
            row = scores[b, i]
            valid = min(i + 1, source) if causal else source
            if valid == 0:
                continue
            # the row's own type (scale is passed in it): a float64 peak would make the
            # shifted scores, and so their exp, float64
            peak = row[0] * scale
            for j in range(1, valid):
                value = row[j] * scale
                peak = value if value > peak else peak  # a NaN in row[0] stays: NaN row
            if peak == -np.inf:
                row[:] = 0.0
                continue
            total = 0.0
            for j in range(valid):
                value = _fastmath.exp(row[j] * scale - peak)
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
