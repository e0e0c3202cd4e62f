"""Numba CPU kernel for the backward gate math of one LSTM step inside `lstm_sequence`.

One pass over a step's (N, 4H) gates replaces ~20 NumPy ufunc calls, each a separate sweep
over memory with its own dispatch. The generic `xp` path in
`rnn_sequence.py` computes the same formulas for other backends and dtypes.
"""
from __future__ import annotations

import numba
import numpy as np

KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


@numba.njit(cache=True, nogil=True)
def lstm_step_backward(d_h, d_c, g_out, gates, tanh_c, c_prev, valid, d_gates):
    """One BPTT step: d_gates from (d_h + g_out, d_c); then, in place, d_c becomes the
    gradient of the previous c and d_h the part of the previous h's gradient that a padded
    step carries straight through (the caller adds d_gates @ W_hh)."""
    batch, hidden = d_h.shape
    for n in range(batch):
        v = valid[n, 0]
        for k in range(hidden):
            dh_total = d_h[n, k] + g_out[n, k]
            dh, dc = dh_total * v, d_c[n, k] * v
            i, f = gates[n, k], gates[n, hidden + k]
            g, o = gates[n, 2 * hidden + k], gates[n, 3 * hidden + k]
            t = tanh_c[n, k]
            d_gates[n, 3 * hidden + k] = dh * t * o * (1 - o)
            dc += dh * o * (1 - t * t)
            d_gates[n, k] = dc * g * i * (1 - i)
            d_gates[n, hidden + k] = dc * c_prev[n, k] * f * (1 - f)
            d_gates[n, 2 * hidden + k] = dc * i * (1 - g * g)
            d_c[n, k] = dc * f + d_c[n, k] * (1 - v)
            d_h[n, k] = dh_total * (1 - v)
