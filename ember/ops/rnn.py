"""Fused recurrent cells: the elementwise gate math of one LSTM / GRU time step.

The two GEMMs of a step (x @ W_ih^T, h @ W_hh^T) stay ordinary matmuls outside; these
primitives take their results ("gate pre-activations", gates laid out as PyTorch lays them:
i, f, g, o for the LSTM, r, z, n for the GRU) and do the rest in one dispatch, saving the
activated gates for backward. Without fusion a step costs ~15 elementwise ops forward and
~25 backward, each a Python dispatch on a small array.

Each vjp has two forms, both ember ops. When no higher-order graph is being recorded (the
usual `loss.backward()`) it calls a second fused primitive that computes all input gradients
from the saved activations in one dispatch. Under `create_graph=True` it rebuilds the same
formulas from the inputs out of elementary ops, so gradients of gradients are exact.
"""
from __future__ import annotations

import numpy as np

from ember._core.errors import DTypeError, user_frame
from ember._core.primitive import (
    STATE,
    AbstractValue,
    Primitive,
    WithResiduals,
    apply,
    shape_error,
)
from ember._core.tensor import Tensor
from ember.ops.elementwise import sigmoid, tanh
from ember.ops.movement import concat, split


def _sigmoid_(xp, x):
    """In-place logistic function: sigmoid(x) = (1 + tanh(x / 2)) / 2 never overflows."""
    xp.multiply(x, 0.5, out=x)
    xp.tanh(x, out=x)
    xp.multiply(x, 0.5, out=x)
    xp.add(x, 0.5, out=x)


def _check_gates(op: str, input_gates, hidden_gates, state, gate_count: int):
    hidden = state.shape[-1] if state.ndim else 0
    expected = tuple(state.shape[:-1]) + (gate_count * hidden,)
    if state.ndim == 0 or tuple(input_gates.shape) != expected or \
            tuple(hidden_gates.shape) != expected:
        raise shape_error(op, f"gate pre-activations must have shape {expected} "
                          f"({gate_count} x hidden size {hidden}) to match the state",
                          input_gates, hidden_gates, state)
    if not (input_gates.dtype is hidden_gates.dtype is state.dtype):
        raise DTypeError(f"{op}: gates and state must share one dtype, got "
                         f"{input_gates.dtype.name}, {hidden_gates.dtype.name} and "
                         f"{state.dtype.name} at {user_frame()}")


def _fits(input_gates, hidden_gates, state, gate_count: int) -> bool:
    # Checked in forward too: a mismatched state could otherwise broadcast silently.
    expected = state.shape[:-1] + (gate_count * state.shape[-1],) if state.ndim else None
    return (input_gates.shape == expected and hidden_gates.shape == expected
            and input_gates.dtype == hidden_gates.dtype == state.dtype)


def _needs(ctx, index: int) -> bool:
    return ctx.node.edges[index] is not None


def _saved(ctx, index: int) -> Tensor:
    return Tensor(ctx.residuals[index], ctx.node.device)


# ---- LSTM ---------------------------------------------------------------------------------
class LstmCell(Primitive):
    """(h, c) of one LSTM step from gate pre-activations (..., 4H) and the previous c."""

    name = "lstm_cell"

    def infer(self, input_gates, hidden_gates, c):
        _check_gates("lstm_cell", input_gates, hidden_gates, c, 4)
        return AbstractValue(c.shape, c.dtype, c.device), AbstractValue(c.shape, c.dtype,
                                                                        c.device)

    def residual_avals(self, input_gates, hidden_gates, c):
        gates = np.broadcast_shapes(tuple(input_gates.shape), tuple(hidden_gates.shape))
        return (AbstractValue(gates, c.dtype, c.device), AbstractValue(c.shape, c.dtype,
                                                                      c.device))

    def forward(self, xp, input_gates, hidden_gates, c):
        size = c.shape[-1]
        if not _fits(input_gates, hidden_gates, c, 4):
            raise ValueError("gate shapes do not match the state")
        gates = input_gates + hidden_gates  # fresh array: activated in place below
        # sigmoid(x) = (1 + tanh(x / 2)) / 2 never overflows, and writing it as a per-gate
        # scale and shift lets one tanh cover all four gates on contiguous memory (about
        # twice as fast as activating each strided gate block on its own).
        scale = xp.repeat(xp.asarray([0.5, 0.5, 1.0, 0.5], dtype=gates.dtype), size)
        xp.multiply(gates, scale, out=gates)
        xp.tanh(gates, out=gates)
        xp.multiply(gates, scale, out=gates)
        xp.add(gates, xp.repeat(xp.asarray([0.5, 0.5, 0.0, 0.5], dtype=gates.dtype), size),
               out=gates)
        i, f, g, o = (gates[..., k * size:(k + 1) * size] for k in range(4))
        c_new = f * c
        c_new += i * g
        tanh_c = xp.tanh(c_new)
        return WithResiduals((o * tanh_c, c_new), (gates, tanh_c))

    def vjp(self, ctx, gh, gc):
        input_gates, hidden_gates, c = ctx.inputs
        # create_graph: differentiable formulas from the inputs (also under ember.jit: no residuals)
        if STATE.grad_enabled or ctx.residuals is None:
            d_gates, d_c = _lstm_cell_vjp(input_gates, hidden_gates, c, gh, gc)
        else:
            d_gates, d_c = apply(LSTM_CELL_GRAD, gh, gc, _saved(ctx, 0), _saved(ctx, 1), c)
        return (d_gates if _needs(ctx, 0) else None, d_gates if _needs(ctx, 1) else None,
                d_c if _needs(ctx, 2) else None)


def _lstm_cell_vjp(input_gates, hidden_gates, c, gh, gc):
    """The LSTM step's vector-Jacobian product in elementary ember ops (double backward)."""
    a_i, a_f, a_g, a_o = split(input_gates + hidden_gates, 4, axis=-1)
    i, f, g, o = sigmoid(a_i), sigmoid(a_f), tanh(a_g), sigmoid(a_o)
    tanh_c = tanh(f * c + i * g)
    d_c = gc + gh * o * (1 - tanh_c * tanh_c)
    d_gates = concat([d_c * g * i * (1 - i), d_c * c * f * (1 - f), d_c * i * (1 - g * g),
                      gh * tanh_c * o * (1 - o)], axis=-1)
    return d_gates, d_c * f


class LstmCellGrad(Primitive):
    """Gradients of `lstm_cell` w.r.t. its gates and c, from the saved activations."""

    name = "lstm_cell_grad"
    differentiable = False  # under create_graph the vjp uses `_lstm_cell_vjp` instead

    def infer(self, gh, gc, gates, tanh_c, c):
        return (AbstractValue(gates.shape, gates.dtype, gates.device),
                AbstractValue(c.shape, c.dtype, c.device))

    def forward(self, xp, gh, gc, gates, tanh_c, c):
        size = c.shape[-1]
        i, f, g, o = (gates[..., k * size:(k + 1) * size] for k in range(4))
        d_gates = xp.empty_like(gates)
        d_i, d_f, d_g, d_o = (d_gates[..., k * size:(k + 1) * size] for k in range(4))
        # d_o = gh * tanh_c * o * (1 - o); d_c = gc + gh * o * (1 - tanh_c^2)
        xp.multiply(gh, tanh_c, out=d_o)
        d_c = gh * o
        xp.multiply(d_o, o, out=d_o)
        xp.multiply(d_o, 1 - o, out=d_o)
        d_c *= 1 - tanh_c * tanh_c
        d_c += gc
        # d_i = d_c g i (1 - i); d_f = d_c c f (1 - f); d_g = d_c i (1 - g^2)
        xp.multiply(d_c, g, out=d_i)
        xp.multiply(d_i, i, out=d_i)
        xp.multiply(d_i, 1 - i, out=d_i)
        xp.multiply(d_c, c, out=d_f)
        xp.multiply(d_f, f, out=d_f)
        xp.multiply(d_f, 1 - f, out=d_f)
        xp.multiply(d_c, i, out=d_g)
        xp.multiply(d_g, 1 - g * g, out=d_g)
        d_c *= f
        return d_gates, d_c


# ---- GRU ----------------------------------------------------------------------------------
class GruCell(Primitive):
    """h of one GRU step from gate pre-activations (..., 3H) and the previous h.

    As in PyTorch, the hidden pre-activation of the candidate n (including its bias b_hn)
    is scaled by the reset gate: n = tanh(x_n + r * h_n).
    """

    name = "gru_cell"

    def infer(self, input_gates, hidden_gates, h):
        _check_gates("gru_cell", input_gates, hidden_gates, h, 3)
        return AbstractValue(h.shape, h.dtype, h.device)

    def residual_avals(self, input_gates, hidden_gates, h):
        lead = np.broadcast_shapes(tuple(input_gates.shape[:-1]), tuple(hidden_gates.shape[:-1]))
        size = h.shape[-1]
        return (AbstractValue(lead + (2 * size,), h.dtype, h.device),
                AbstractValue(lead + (size,), h.dtype, h.device))

    def forward(self, xp, input_gates, hidden_gates, h):
        size = h.shape[-1]
        if not _fits(input_gates, hidden_gates, h, 3):
            raise ValueError("gate shapes do not match the state")
        reset_update = input_gates[..., :2 * size] + hidden_gates[..., :2 * size]
        _sigmoid_(xp, reset_update)
        r, z = reset_update[..., :size], reset_update[..., size:]
        n = r * hidden_gates[..., 2 * size:]
        n += input_gates[..., 2 * size:]
        xp.tanh(n, out=n)
        h_new = h - n  # h' = (1 - z) n + z h = n + z (h - n)
        h_new *= z
        h_new += n
        return WithResiduals(h_new, (reset_update, n))

    def vjp(self, ctx, gy):
        input_gates, hidden_gates, h = ctx.inputs
        # create_graph: differentiable formulas from the inputs (also under ember.jit: no residuals)
        if STATE.grad_enabled or ctx.residuals is None:
            grads = _gru_cell_vjp(input_gates, hidden_gates, h, gy)
        else:
            grads = apply(GRU_CELL_GRAD, gy, _saved(ctx, 0), _saved(ctx, 1), hidden_gates, h)
        return tuple(grad if _needs(ctx, k) else None for k, grad in enumerate(grads))


def _gru_cell_vjp(input_gates, hidden_gates, h, gy):
    """The GRU step's vector-Jacobian product in elementary ember ops (double backward)."""
    x_r, x_z, x_n = split(input_gates, 3, axis=-1)
    h_r, h_z, h_n = split(hidden_gates, 3, axis=-1)
    r, z = sigmoid(x_r + h_r), sigmoid(x_z + h_z)
    n = tanh(x_n + r * h_n)
    d_a_n = gy * (1 - z) * (1 - n * n)
    d_a_z = gy * (h - n) * z * (1 - z)
    d_a_r = d_a_n * h_n * r * (1 - r)
    return (concat([d_a_r, d_a_z, d_a_n], axis=-1), concat([d_a_r, d_a_z, d_a_n * r], axis=-1),
            gy * z)


class GruCellGrad(Primitive):
    """Gradients of `gru_cell` w.r.t. both gate inputs and h, from the saved activations."""

    name = "gru_cell_grad"
    differentiable = False  # under create_graph the vjp uses `_gru_cell_vjp` instead

    def infer(self, gy, reset_update, n, hidden_gates, h):
        gates = AbstractValue(hidden_gates.shape, h.dtype, h.device)
        return gates, gates, AbstractValue(h.shape, h.dtype, h.device)

    def forward(self, xp, gy, reset_update, n, hidden_gates, h):
        size = h.shape[-1]
        r, z = reset_update[..., :size], reset_update[..., size:]
        d_input = xp.empty_like(hidden_gates)
        d_r, d_z, d_n = (d_input[..., k * size:(k + 1) * size] for k in range(3))
        # d_n = gy (1 - z)(1 - n^2); d_z = gy (h - n) z (1 - z); d_r = d_n h_n r (1 - r)
        xp.multiply(gy, 1 - z, out=d_n)
        xp.multiply(d_n, 1 - n * n, out=d_n)
        xp.subtract(h, n, out=d_z)
        xp.multiply(d_z, gy, out=d_z)
        xp.multiply(d_z, z, out=d_z)
        xp.multiply(d_z, 1 - z, out=d_z)
        xp.multiply(d_n, hidden_gates[..., 2 * size:], out=d_r)
        xp.multiply(d_r, r, out=d_r)
        xp.multiply(d_r, 1 - r, out=d_r)
        d_hidden = d_input.copy()
        xp.multiply(d_n, r, out=d_hidden[..., 2 * size:])
        return d_input, d_hidden, gy * z


LSTM_CELL, LSTM_CELL_GRAD = LstmCell(), LstmCellGrad()
GRU_CELL, GRU_CELL_GRAD = GruCell(), GruCellGrad()


# ---- public functions -----------------------------------------------------------------------
def fused_lstm_cell(input_gates: Tensor, hidden_gates: Tensor, c: Tensor) -> tuple:
    """One LSTM step's gate math: `(h, c)` from pre-activations (..., 4H) laid out i, f, g, o.

    `input_gates` is x @ W_ih^T + b_ih, `hidden_gates` is h @ W_hh^T + b_hh (they are summed);
    `c` is the previous cell state (..., H).

    >>> import ember
    >>> from ember.ops.rnn import fused_lstm_cell
    >>> h, c = fused_lstm_cell(ember.zeros((2, 12)), ember.zeros((2, 12)), ember.ones((2, 3)))
    >>> c[0, 0].item()   # f = sigmoid(0) = 0.5 keeps half of c; i * g = 0.5 * tanh(0) = 0
    0.5
    """
    return apply(LSTM_CELL, input_gates, hidden_gates, c)


def fused_gru_cell(input_gates: Tensor, hidden_gates: Tensor, h: Tensor) -> Tensor:
    """One GRU step's gate math: the new h from pre-activations (..., 3H) laid out r, z, n.

    `input_gates` is x @ W_ih^T + b_ih, `hidden_gates` is h @ W_hh^T + b_hh; `h` is the
    previous hidden state (..., H).

    >>> import ember
    >>> from ember.ops.rnn import fused_gru_cell
    >>> fused_gru_cell(ember.zeros((1, 6)), ember.zeros((1, 6)), ember.ones((1, 2)))
    tensor([[0.5, 0.5]])
    """
    return apply(GRU_CELL, input_gates, hidden_gates, h)
