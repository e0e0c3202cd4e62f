"""Recurrent layers as functions: single cells and multi-layer (bidirectional) sequences.

Weights follow PyTorch's layout: `w_ih` (G*H, I), `w_hh` (G*H, H) with the gate blocks in
PyTorch's order (LSTM i, f, g, o; GRU r, z, n). A sequence run computes the input projection
x @ W_ih^T of every time step in one GEMM per layer and direction, then loops over time with
one h @ W_hh^T matmul and one fused cell primitive (`ember.ops.rnn`) per step; the LSTM and
GRU run that whole loop inside one primitive per layer-direction (`ember.ops.rnn_sequence`,
`ember.ops.gru_sequence`), which saves the per-step autograd nodes and sums the hidden
weight gradient in one GEMM.

Variable lengths (`lengths` or a prefix `mask`) behave exactly like PyTorch's
pack_padded_sequence: a padded step leaves the state unchanged, so h_n is each sequence's
state at its own last valid step, the reverse direction starts from that step, and outputs
at padded positions are zero.
"""
from __future__ import annotations

import numpy as np

from ember._core.errors import DTypeError, EmberError, user_frame
from ember._core.primitive import shape_error
from ember._core.tensor import Tensor
from ember.nn.functional._checks import expect_float, expect_last_dim, expect_ndim
from ember.nn.functional.dropout import dropout as apply_dropout
from ember.nn.functional.linear import linear
from ember.ops.creation import zeros
from ember.ops.elementwise import tanh, where
from ember.ops.gru_sequence import gru_sequence
from ember.ops.linalg import matmul
from ember.ops.movement import (
    concat,
    expand_dims,
    matrix_transpose,
    reshape,
    split,
    squeeze,
    stack,
    unstack,
)
from ember.ops.rnn import fused_gru_cell, fused_lstm_cell
from ember.ops.rnn_sequence import lstm_sequence


def _relu(x: Tensor) -> Tensor:
    return where(x > 0, x, 0.0)


def _step(mode: str, input_gates: Tensor, state: tuple, w_hh: Tensor, hidden_bias):
    """One time step: the new state tuple ((h,) or (h, c)) from the step's input gates."""
    # (W_hh @ h^T)^T rather than h @ W_hh^T: for a small batch OpenBLAS runs the tall product
    # and its weight gradient (dG^T @ h rather than h^T @ dG) about twice as fast (measured
    # at N=20, H=256); the transposes are views.
    hidden_gates = matrix_transpose(matmul(w_hh, matrix_transpose(state[0])))
    if hidden_bias is not None:
        hidden_gates = hidden_gates + hidden_bias
    if mode == "lstm":
        return fused_lstm_cell(input_gates, hidden_gates, state[1])
    if mode == "gru":
        return (fused_gru_cell(input_gates, hidden_gates, state[0]),)
    pre_activation = input_gates + hidden_gates
    return (tanh(pre_activation) if mode == "rnn_tanh" else _relu(pre_activation),)


# ---- cells ------------------------------------------------------------------------------------
def _cell(mode: str, input, hx: tuple, w_ih, w_hh, b_ih, b_hh) -> tuple:
    op = f"{mode}_cell"
    expect_float(op, input)
    expect_ndim(op, input, (1, 2), "(N, input_size) or (input_size,)")
    expect_last_dim(op, input, w_ih.shape[1], "input_size")
    if input.dtype is not w_ih.dtype:
        raise DTypeError(f"{op}: input is {input.dtype.name} but the weights are "
                         f"{w_ih.dtype.name} at {user_frame()}; cast one to the other")
    unbatched = input.ndim == 1
    if unbatched:
        input = expand_dims(input, 0)
    hidden_size = w_hh.shape[1]
    expected = (input.shape[0], hidden_size)
    states = []
    for state in hx:
        if state is None:
            state = zeros(expected, dtype=input.dtype, device=input.device)
        elif unbatched and state.ndim == 1:
            state = expand_dims(state, 0)
        if tuple(state.shape) != expected:
            wanted = expected[1:] if unbatched else expected
            raise shape_error(op, f"expected a hidden state of shape {wanted}", input, state)
        states.append(state)
    input_gates = linear(input, w_ih, b_ih)
    out = _step(mode, input_gates, tuple(states), w_hh, b_hh)
    return tuple(squeeze(s, 0) for s in out) if unbatched else out


def rnn_tanh_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None) -> Tensor:
    """h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh); `hx=None` starts from zeros.

    >>> import ember
    >>> w_ih, w_hh = ember.ones((2, 3)), ember.zeros((2, 2))
    >>> ember.nn.functional.rnn_tanh_cell(ember.zeros((4, 3)), None, w_ih, w_hh).shape
    (4, 2)
    """
    return _cell("rnn_tanh", input, (hx,), w_ih, w_hh, b_ih, b_hh)[0]


def rnn_relu_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None) -> Tensor:
    """h' = relu(x W_ih^T + b_ih + h W_hh^T + b_hh); `hx=None` starts from zeros.

    >>> import ember
    >>> w_ih, w_hh = ember.ones((2, 3)), ember.zeros((2, 2))
    >>> ember.nn.functional.rnn_relu_cell(-ember.ones(3), None, w_ih, w_hh)
    tensor([0., 0.])
    """
    return _cell("rnn_relu", input, (hx,), w_ih, w_hh, b_ih, b_hh)[0]


def lstm_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None) -> tuple:
    """One LSTM step: `(h', c')` from `hx = (h, c)` (or None for zeros); gates i, f, g, o.

    >>> import ember
    >>> w_ih, w_hh = ember.zeros((8, 3)), ember.zeros((8, 2))
    >>> h, c = ember.nn.functional.lstm_cell(ember.ones((1, 3)), (None, ember.ones((1, 2))),
    ...                                      w_ih, w_hh)
    >>> c   # f = sigmoid(0) keeps half of c
    tensor([[0.5, 0.5]])
    """
    if isinstance(hx, Tensor) or hx is not None and len(hx) != 2:
        raise EmberError(f"lstm_cell: hx must be a pair (h, c) or None at {user_frame()}")
    hx = (None, None) if hx is None else tuple(hx)
    return _cell("lstm", input, hx, w_ih, w_hh, b_ih, b_hh)


def gru_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None) -> Tensor:
    """One GRU step (gates r, z, n as in PyTorch); `hx=None` starts from zeros.

    >>> import ember
    >>> w_ih, w_hh = ember.zeros((6, 3)), ember.zeros((6, 2))
    >>> ember.nn.functional.gru_cell(ember.ones((1, 3)), ember.ones((1, 2)), w_ih, w_hh)
    tensor([[0.5, 0.5]])
    """
    return _cell("gru", input, (hx,), w_ih, w_hh, b_ih, b_hh)[0]


# ---- sequences ----------------------------------------------------------------------------
def _valid_steps(op, input, lengths, mask, time_axis: int, unbatched: bool):
    """Time-major bool array (T, N) of valid steps, or None when every step is valid."""
    if lengths is None and mask is None:
        return None
    if lengths is not None and mask is not None:
        raise EmberError(f"{op}: pass either lengths or mask, not both, at {user_frame()}")
    steps, batch = input.shape[time_axis], input.shape[1 - time_axis]
    if mask is not None:
        valid = np.asarray(mask.numpy() if isinstance(mask, Tensor) else mask)
        if unbatched:
            valid = valid.reshape(-1, 1) if valid.ndim == 1 else valid
        elif time_axis == 1 and valid.ndim == 2:
            valid = valid.T
        if valid.dtype != np.bool_ or valid.shape != (steps, batch):
            layout = (steps,) if unbatched else ((batch, steps) if time_axis else (steps, batch))
            raise shape_error(op, f"mask must be a bool tensor of shape {layout} (True = "
                              f"valid step), got {valid.dtype} of shape {valid.shape}", input)
        counts = valid.sum(axis=0)
        if not np.array_equal(valid, np.arange(steps)[:, None] < counts[None, :]):
            raise EmberError(f"{op}: mask must be a prefix mask (each sequence's valid steps "
                             f"first, then padding) at {user_frame()}")
        return valid
    counts = np.asarray(lengths.numpy() if isinstance(lengths, Tensor) else lengths)
    counts = counts.reshape(1) if unbatched and counts.size == 1 else counts
    if counts.shape != (batch,) or counts.dtype.kind not in "iu":
        raise shape_error(op, f"lengths must be {batch} integers (one per sequence), got "
                          f"{counts.dtype} of shape {counts.shape}", input)
    if counts.min() < 0 or counts.max() > steps:
        raise EmberError(f"{op}: lengths must lie in [0, {steps}] (the padded sequence "
                         f"length), got {counts.tolist()} at {user_frame()}")
    return np.arange(steps)[:, None] < counts[None, :]


def _initial_states(op, hx, count: int, batch: int, hidden: int, unbatched: bool, like):
    """Per layer-and-direction initial state tensors (N, H) from one (L*D, N, H) tensor."""
    expected = (count, batch, hidden)
    if hx is None:
        return [zeros((batch, hidden), dtype=like.dtype, device=like.device)] * count
    if unbatched and hx.ndim == 2:
        hx = expand_dims(hx, 1)
    if tuple(hx.shape) != expected:
        wanted = (count, hidden) if unbatched else expected
        raise shape_error(op, f"expected an initial state of shape {wanted} (num_layers * "
                          f"num_directions, batch, hidden_size)", like, hx)
    if hx.dtype is not like.dtype:
        raise DTypeError(f"{op}: the initial state is {hx.dtype.name} but the input is "
                         f"{like.dtype.name} at {user_frame()}")
    return list(unstack(hx, axis=0))


def _run_direction(mode, steps, state, w_hh, hidden_bias, reverse, step_masks):
    """Loop one layer-direction over time; returns per-step outputs and the final state."""
    outputs = [None] * len(steps)
    order = range(len(steps) - 1, -1, -1) if reverse else range(len(steps))
    for t in order:
        new_state = _step(mode, steps[t], state, w_hh, hidden_bias)
        outputs[t] = new_state[0]
        if step_masks is None:
            state = new_state
        else:  # a padded step keeps the previous state
            state = tuple(where(step_masks[t], new, old) for new, old in zip(new_state, state))
    return outputs, state


def _split_steps(gates: Tensor, time_axis: int) -> tuple:
    """Per-step (N, G) views of (T, N, G) or (N, T, G) gates: one split, no per-step squeeze
    (a split of the merged (T*N, G) or (N, T*G) matrix gives them directly)."""
    steps, width = gates.shape[time_axis], gates.shape[-1]
    merged = reshape(gates, (-1, width) if time_axis == 0 else (gates.shape[0], -1))
    if steps == 1:
        return (merged,)
    return split(merged, steps, axis=time_axis)


def _join_steps(outputs: list, time_axis: int) -> Tensor:
    """The inverse of `_split_steps`: one concat and one reshape instead of a stack."""
    batch, hidden = outputs[0].shape
    joined = concat(outputs, axis=time_axis)
    return reshape(joined, (len(outputs), batch, hidden) if time_axis == 0 else
                   (batch, len(outputs), hidden))


def _run_layer(mode, layer_input, weights, states, time_axis, step_masks, valid):
    """Both directions of one layer; returns the layer output and final states."""
    features = layer_input.shape[-1]
    flat_input = reshape(layer_input, (-1, features))
    outputs, finals = [], []
    for direction, (w_ih, w_hh, b_ih, b_hh) in enumerate(weights):
        # All time steps' input projections in one GEMM; LSTM and plain RNN fold the hidden
        # bias in too (the GRU's b_hn must stay inside r * (W_hn h + b_hn)).
        input_bias, hidden_bias = b_ih, b_hh
        if mode != "gru" and b_hh is not None:
            input_bias, hidden_bias = (b_hh if b_ih is None else b_ih + b_hh), None
        gates = linear(flat_input, w_ih, input_bias)
        gates = reshape(gates, layer_input.shape[:-1] + (gates.shape[-1],))
        if mode == "lstm":  # the whole time loop in one primitive (ember.ops.rnn_sequence)
            h0, c0 = states[direction]
            output, h_n, c_n = lstm_sequence(gates, w_hh, h0, c0, valid, time_axis=time_axis,
                                             reverse=direction == 1)
            outputs.append(output)
            finals.append((h_n, c_n))
            continue
        if mode == "gru":  # likewise (ember.ops.gru_sequence); b_hn stays inside r * (...)
            if hidden_bias is None:
                hidden_bias = zeros((w_hh.shape[0],), dtype=w_hh.dtype, device=w_hh.device)
            output, h_n = gru_sequence(gates, w_hh, hidden_bias, states[direction][0], valid,
                                       time_axis=time_axis, reverse=direction == 1)
            outputs.append(output)
            finals.append((h_n,))
            continue
        steps = _split_steps(gates, time_axis)
        per_step, final = _run_direction(mode, steps, states[direction], w_hh, hidden_bias,
                                         direction == 1, step_masks)
        outputs.append(_join_steps(per_step, time_axis))
        finals.append(final)
    return (concat(outputs, axis=-1) if len(outputs) > 1 else outputs[0]), finals


def _recurrent(mode, input, hx, weights, batch_first, bidirectional, dropout, training,
               lengths, mask, generator):
    op = mode if not mode.startswith("rnn") else "rnn"
    weights = [tuple(group) + (None,) * (4 - len(group)) for group in weights]
    directions = 2 if bidirectional else 1
    if not weights or len(weights) % directions:
        raise EmberError(f"{op}: expected weights for num_layers * {directions} "
                         f"layer-directions, got {len(weights)} at {user_frame()}")
    expect_float(op, input)
    expect_ndim(op, input, (2, 3), "(T, N, input_size), (N, T, input_size) if batch_first, "
                "or (T, input_size) unbatched")
    expect_last_dim(op, input, weights[0][0].shape[1], "input_size")
    if input.dtype is not weights[0][0].dtype:
        raise DTypeError(f"{op}: input is {input.dtype.name} but the weights are "
                         f"{weights[0][0].dtype.name} at {user_frame()}; cast one to the other")
    unbatched = input.ndim == 2
    time_axis = 1 if batch_first and not unbatched else 0
    if unbatched:
        input = expand_dims(input, 1)
    valid = _valid_steps(op, input, lengths, mask, time_axis, unbatched)
    batch, hidden = input.shape[1 - time_axis], weights[0][1].shape[1]
    hx = (hx, None) if mode == "lstm" and hx is None else hx
    if mode == "lstm" and (isinstance(hx, Tensor) or len(hx) != 2):
        raise EmberError(f"lstm: hx must be a pair (h_0, c_0) or None at {user_frame()}")
    state_parts = tuple(hx) if mode == "lstm" else (hx,)
    initial = [_initial_states(op, part, len(weights), batch, hidden, unbatched, input)
               for part in state_parts]
    step_masks = valid_steps = None
    if valid is not None:
        xp = input.device.xp
        step_masks = [Tensor(xp.asarray(row[:, None]), input.device) for row in valid]
        valid_steps = Tensor(xp.asarray(valid[..., None], dtype=input.dtype.np), input.device)
    layer_input, finals = input, []
    for first in range(0, len(weights), directions):
        if first and dropout and training:
            layer_input = apply_dropout(layer_input, dropout, True, generator=generator)
        states = [tuple(part[first + d] for part in initial) for d in range(directions)]
        layer_input, layer_finals = _run_layer(mode, layer_input, weights[first:first +
                                               directions], states, time_axis, step_masks,
                                               valid_steps)
        finals.extend(layer_finals)
    output = layer_input
    if valid is not None:  # zero the outputs at padded positions
        layout = valid if time_axis == 0 else valid.T
        output = where(Tensor(input.device.xp.asarray(layout[..., None]), input.device),
                       output, 0.0)
    final_states = tuple(stack([state[k] for state in finals], axis=0)
                         for k in range(len(state_parts)))
    if unbatched:
        output = squeeze(output, 1)
        final_states = tuple(squeeze(state, 1) for state in final_states)
    return output, (final_states if mode == "lstm" else final_states[0])


def rnn(input, hx, weights, *, nonlinearity: str = "tanh", batch_first: bool = False,
        bidirectional: bool = False, dropout: float = 0.0, training: bool = False,
        lengths=None, mask=None, generator=None) -> tuple:
    """Elman RNN over a sequence: `(output, h_n)` with PyTorch's shapes.

    `weights` lists `(w_ih, w_hh, b_ih, b_hh)` per layer and direction (layer 0 forward,
    layer 0 reverse, layer 1 forward, ...); biases may be None. `hx` is (L*D, N, H) or None.

    >>> import ember
    >>> w = [(ember.ones((2, 3)), ember.zeros((2, 2)), None, None)]
    >>> out, h_n = ember.nn.functional.rnn(ember.zeros((5, 4, 3)), None, w)
    >>> out.shape, h_n.shape
    ((5, 4, 2), (1, 4, 2))
    """
    if nonlinearity not in ("tanh", "relu"):
        raise EmberError(f"rnn: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    return _recurrent(f"rnn_{nonlinearity}", input, hx, weights, batch_first, bidirectional,
                      dropout, training, lengths, mask, generator)


def lstm(input, hx, weights, *, batch_first: bool = False, bidirectional: bool = False,
         dropout: float = 0.0, training: bool = False, lengths=None, mask=None,
         generator=None) -> tuple:
    """LSTM over a sequence: `(output, (h_n, c_n))`; `hx` is `(h_0, c_0)` or None.

    Weights are listed as for `rnn` (gate blocks i, f, g, o).

    >>> import ember
    >>> w = [(ember.zeros((8, 3)), ember.zeros((8, 2)), None, None)]
    >>> out, (h_n, c_n) = ember.nn.functional.lstm(ember.ones((2, 5, 3)), None, w,
    ...                                            batch_first=True, lengths=[5, 2])
    >>> out.shape, c_n.shape, out[1, 2:].abs().sum().item()
    ((2, 5, 2), (1, 2, 2), 0.0)
    """
    return _recurrent("lstm", input, hx, weights, batch_first, bidirectional, dropout,
                      training, lengths, mask, generator)


def gru(input, hx, weights, *, batch_first: bool = False, bidirectional: bool = False,
        dropout: float = 0.0, training: bool = False, lengths=None, mask=None,
        generator=None) -> tuple:
    """GRU over a sequence: `(output, h_n)`; weights as for `rnn` (gate blocks r, z, n).

    >>> import ember
    >>> w = [(ember.zeros((6, 3)), ember.zeros((6, 2)), None, None)] * 2
    >>> out, h_n = ember.nn.functional.gru(ember.ones((4, 3)), None, w, bidirectional=True)
    >>> out.shape, h_n.shape
    ((4, 4), (2, 2))
    """
    return _recurrent("gru", input, hx, weights, batch_first, bidirectional, dropout,
                      training, lengths, mask, generator)
