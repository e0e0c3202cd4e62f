"""Numba CPU kernels for the gate math of one LSTM step inside `lstm_sequence`.

One pass over a step's (N, 4H) gates replaces ~10 (forward) or ~20 (backward) NumPy ufunc
calls, each a separate sweep over memory with its own dispatch. The forward's float32 sigmoid
and tanh vectorize (ember/ops/_fastmath.py); with libm's scalar tanh NumPy's SIMD ufuncs
were about 3x faster. The generic `xp` path in `rnn_sequence.py` computes the same formulas
for other backends and dtypes.
"""
from __future__ import annotations

import numba
import numpy as np

from ember.ops import _fastmath


# error_model="numpy": a division may give inf or NaN instead of raising. With it, with each
# loop touching at most three arrays (more, and LLVM gives up the runtime alias checks that
# vectorizing needs) and every loop counting from 0 (Numba's range(start, stop) did not
# vectorize), a float32 step over 20x256 cells takes about 20 us instead of 150.
@numba.njit(cache=True, nogil=True, error_model="numpy")
def lstm_step_forward(gates, h_prev, c_prev, valid, c_new, tanh_c, h_new):
    """One step on its pre-activations `gates` (N, 4H), activated in place (sigmoid for i, f,
    o, tanh for g): c_new = f c_prev + i g, h_new = o tanh(c_new); a padded row (valid 0)
    carries the previous state over."""
    batch, hidden = h_prev.shape
    g_at, o_at = 2 * hidden, 3 * hidden
    for n in range(batch):
        for k in range(2 * hidden):  # i and f
            gates[n, k] = _fastmath.sigmoid(gates[n, k])
        for k in range(hidden):
            gates[n, g_at + k] = _fastmath.tanh(gates[n, g_at + k])
        for k in range(hidden):
            gates[n, o_at + k] = _fastmath.sigmoid(gates[n, o_at + k])
        for k in range(hidden):
            c_new[n, k] = gates[n, hidden + k] * c_prev[n, k] + gates[n, k] * gates[n, g_at + k]
        for k in range(hidden):
            tanh_c[n, k] = _fastmath.tanh(c_new[n, k])
        for k in range(hidden):
            h_new[n, k] = gates[n, o_at + k] * tanh_c[n, k]
        if valid[n, 0] == 0:  # padded: the previous state carries over
            for k in range(hidden):
                c_new[n, k] = c_prev[n, k]
                h_new[n, k] = h_prev[n, k]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def lstm_step_backward(d_h, d_c, g_out, gates, tanh_c, c_prev, valid, d_gates):
    """One BPTT step: d_gates from (d_h + g_out, d_c); then, in place, d_c becomes the
    gradient of the previous c and d_h the part of the previous h's gradient that a padded
    step carries straight through (the caller adds d_gates @ W_hh). Loops as in
    `lstm_step_forward`, so that they vectorize."""
    batch, hidden = d_h.shape
    f_at, g_at, o_at = hidden, 2 * hidden, 3 * hidden
    dc = np.empty(hidden, dtype=d_c.dtype)  # the gradient reaching this step's c
    for n in range(batch):
        v = valid[n, 0]
        for k in range(hidden):
            d_h[n, k] += g_out[n, k]
        for k in range(hidden):
            o = gates[n, o_at + k]
            d_gates[n, o_at + k] = d_h[n, k] * v * tanh_c[n, k] * o * (1 - o)
        for k in range(hidden):
            t = tanh_c[n, k]
            dc[k] = (d_c[n, k] + d_h[n, k] * gates[n, o_at + k] * (1 - t * t)) * v
        for k in range(hidden):
            i = gates[n, k]
            d_gates[n, k] = dc[k] * gates[n, g_at + k] * i * (1 - i)
        for k in range(hidden):
            f = gates[n, f_at + k]
            d_gates[n, f_at + k] = dc[k] * c_prev[n, k] * f * (1 - f)
        for k in range(hidden):
            g = gates[n, g_at + k]
            d_gates[n, g_at + k] = dc[k] * gates[n, k] * (1 - g * g)
        for k in range(hidden):
            d_c[n, k] = dc[k] * gates[n, f_at + k] + d_c[n, k] * (1 - v)
        for k in range(hidden):
            d_h[n, k] *= 1 - v
