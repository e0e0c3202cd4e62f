"""Op-table rows for the fused recurrent cells (ember/ops/rnn.py) and the
whole-sequence primitives lstm_sequence and gru_sequence.

The references spell out one LSTM / GRU step from the gate pre-activations in plain NumPy,
with the gate blocks in PyTorch's order (LSTM i, f, g, o; GRU r, z, n).
"""
from __future__ import annotations

import numpy as np

import ember
from ember.ops.gru_sequence import gru_sequence
from ember.ops.rnn import fused_gru_cell, fused_lstm_cell
from ember.ops.rnn_sequence import lstm_sequence
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


# ---- lstm_sequence: a whole layer-direction over time (ember/ops/rnn_sequence.py) ----------
_MASK = np.array([[1, 1], [1, 1], [1, 0], [0, 0]], dtype=bool)  # (T, N) prefix: lengths 3, 2


def _sequence(time_axis: int, reverse: bool, masked: bool):
    """(ember fn, NumPy reference) for xw, w_hh, h0, c0 -> (outputs, h_n, c_n)."""
    def fn(xw, w_hh, h0, c0):
        valid = None
        if masked:
            valid = ember.tensor(_MASK[..., None].astype(xw.dtype.np))
        return lstm_sequence(xw, w_hh, h0, c0, valid, time_axis=time_axis, reverse=reverse)

    def ref(xw, w_hh, h0, c0):
        steps = xw.shape[time_axis]
        outputs = np.zeros(xw.shape[:2] + (h0.shape[-1],), dtype=xw.dtype)
        h, c = h0, c0
        for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
            step = xw[t] if time_axis == 0 else xw[:, t]
            h_new, c_new = _lstm_step(step, h @ w_hh.T, c)
            keep = ~_MASK[t][:, None] if masked else np.zeros((len(h), 1), dtype=bool)
            h, c = np.where(keep, h, h_new), np.where(keep, c, c_new)
            if time_axis == 0:
                outputs[t] = h
            else:
                outputs[:, t] = h
        return outputs, h, c
    return fn, ref


def _sequence_row(time_axis: int, reverse: bool, masked: bool) -> OpSpec:
    shape = (4, 2, 8) if time_axis == 0 else (2, 4, 8)
    name = f"lstm_sequence_t{time_axis}{'_rev' if reverse else ''}{'_mask' if masked else ''}"
    fn, ref = _sequence(time_axis, reverse, masked)
    return OpSpec(name, fn, ref, [(shape, (8, 2), (2, 2), (2, 2))], domain=(-1.5, 1.5),
                  double=True)


ROWS += [_sequence_row(0, False, False), _sequence_row(1, True, False),
         _sequence_row(0, True, True), _sequence_row(1, False, True)]


def _gru_sequence(time_axis: int, reverse: bool, masked: bool):
    """(ember fn, NumPy reference) for xw, w_hh, b_hh, h0 -> (outputs, h_n)."""
    def fn(xw, w_hh, b_hh, h0):
        valid = None
        if masked:
            valid = ember.tensor(_MASK[..., None].astype(xw.dtype.np))
        return gru_sequence(xw, w_hh, b_hh, h0, valid, time_axis=time_axis, reverse=reverse)

    def ref(xw, w_hh, b_hh, h0):
        steps = xw.shape[time_axis]
        outputs = np.zeros(xw.shape[:2] + (h0.shape[-1],), dtype=xw.dtype)
        h = h0
        for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
            step = xw[t] if time_axis == 0 else xw[:, t]
            h_new = _gru_step(step, h @ w_hh.T + b_hh, h)
            h = np.where(~_MASK[t][:, None], h, h_new) if masked else h_new
            if time_axis == 0:
                outputs[t] = h
            else:
                outputs[:, t] = h
        return outputs, h
    return fn, ref


def _gru_sequence_row(time_axis: int, reverse: bool, masked: bool) -> OpSpec:
    shape = (4, 2, 6) if time_axis == 0 else (2, 4, 6)
    name = f"gru_sequence_t{time_axis}{'_rev' if reverse else ''}{'_mask' if masked else ''}"
    fn, ref = _gru_sequence(time_axis, reverse, masked)
    return OpSpec(name, fn, ref, [(shape, (6, 2), (6,), (2, 2))], domain=(-1.5, 1.5),
                  double=True)


ROWS += [_gru_sequence_row(0, False, False), _gru_sequence_row(1, True, False),
         _gru_sequence_row(0, True, True), _gru_sequence_row(1, False, True)]
