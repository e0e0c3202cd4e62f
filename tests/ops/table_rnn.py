"""Op-table rows for the fused recurrent cells (ember/ops/rnn.py).

The references spell out one LSTM / GRU step from the gate pre-activations in plain NumPy,
with the gate blocks in PyTorch's order (LSTM i, f, g, o; GRU r, z, n).
"""
from __future__ import annotations

import numpy as np

from ember.ops.rnn import fused_gru_cell, fused_lstm_cell
from tests.ops.optable import OpSpec


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _lstm_step(input_gates, hidden_gates, c):
    i, f, g, o = np.split(input_gates + hidden_gates, 4, axis=-1)
    c_new = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    return _sigmoid(o) * np.tanh(c_new), c_new


def _gru_step(input_gates, hidden_gates, h):
    x_r, x_z, x_n = np.split(input_gates, 3, axis=-1)
    h_r, h_z, h_n = np.split(hidden_gates, 3, axis=-1)
    r, z = _sigmoid(x_r + h_r), _sigmoid(x_z + h_z)
    n = np.tanh(x_n + r * h_n)
    return (1 - z) * n + z * h


def _cases(gates: int):
    # (gates, gates, state) per case: a batch of 2, one of 3, and extra leading axes.
    return [((2, gates * 3), (2, gates * 3), (2, 3)), ((3, gates * 2), (3, gates * 2), (3, 2)),
            ((2, 2, gates), (2, 2, gates), (2, 2, 1))]


ROWS = [
    OpSpec("fused_lstm_cell", fused_lstm_cell, _lstm_step, _cases(4), domain=(-3.0, 3.0),
           double=True),
    OpSpec("fused_gru_cell", fused_gru_cell, _gru_step, _cases(3), domain=(-3.0, 3.0),
           double=True),
]
