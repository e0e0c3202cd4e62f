"""A whole LSTM layer-direction over time as one primitive: the time loop on raw arrays.

Per step the per-cell path (`ember.ops.rnn`) costs a matmul, a fused cell and, with masks,
two `where`s, each an autograd node; backward then adds one weight-gradient GEMM and one
accumulation per step. Here the forward loop writes every step into preallocated buffers (one
GEMM W_hh @ h^T plus in-place gate math per step), and backward runs BPTT on raw arrays with
one GEMM per step for dh (gate math in one Numba kernel) and a single stacked GEMM for dW_hh.

`xw` holds the input projections of every step (x @ W_ih^T + biases, one GEMM outside), with
time on axis `time_axis` (0: (T, N, 4H); 1: (N, T, 4H)); the output sequence uses the same
layout. `valid` is None or a (T, N, 1) array of 1.0 (valid step) / 0.0 (padded step: the state
is carried over unchanged, and the output at that step is that carried state).
Under `create_graph=True` the vjp rebuilds BPTT from per-step ember ops, so gradients of
gradients are exact.
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
from ember.ops._fastmath import KERNEL_DTYPES
from ember.ops._rnn_kernels import lstm_step_backward, lstm_step_forward
from ember.ops.elementwise import where
from ember.ops.linalg import matmul
from ember.ops.movement import matrix_transpose, reshape, split, stack
from ember.ops.rnn import _lstm_cell_vjp, fused_lstm_cell


def _step_view(time_axis: int):
    return (lambda array, t: array[t]) if time_axis == 0 else (lambda array, t: array[:, t])


def _order(steps: int, reverse: bool):
    return range(steps - 1, -1, -1) if reverse else range(steps)


def _previous(xp, states, initial, time_axis: int, reverse: bool):
    """The state entering each step, in the layout of `states`: initial, then shifted."""
    prev = xp.empty_like(states)
    if states.shape[time_axis] == 0:
        return prev
    head, tail = (slice(None, -1), slice(1, None))
    src, dst, first = (tail, head, -1) if reverse else (head, tail, 0)
    if time_axis == 0:
        prev[dst], prev[first] = states[src], initial
    else:
        prev[:, dst], prev[:, first] = states[:, src], initial
    return prev


def time_major_residuals(xw, w_hh, time_axis: int, gates: int) -> tuple:
    """Avals of a recurrent sequence's saved arrays, time-major whatever the input layout:
    (T, N, gates * H) pre-activations, then two (T, N, H) arrays."""
    steps, batch, hidden = xw.shape[time_axis], xw.shape[1 - time_axis], w_hh.shape[1]
    state = AbstractValue((steps, batch, hidden), xw.dtype, xw.device)
    return AbstractValue((steps, batch, gates * hidden), xw.dtype, xw.device), state, state


def _valid_rows(xp, valid, steps: int, batch: int, dtype):
    """(T, N, 1) weights of each step: 1.0 valid, 0.0 padded (all ones without a mask)."""
    return xp.ones((steps, batch, 1), dtype=dtype) if valid is None else valid


def _kernels_apply(xp, like, valid) -> bool:
    """Whether the Numba step kernels (`lstm_step_forward` / `_backward`) serve this sequence:
    NumPy float32/float64, with a mask (if any) of the same dtype."""
    return xp is np and like.dtype in KERNEL_DTYPES and (valid is None or
                                                          valid.dtype == like.dtype)


class _GenericStep:
    """One step's gate math as in-place `xp` calls (backward: the Numba kernel's formulas,
    for other backends and dtypes)."""

    def __init__(self, xp, hidden: int, dtype):
        self.xp, self.hidden = xp, hidden
        # sigmoid(x) = (1 + tanh(x / 2)) / 2 never overflows; as a per-gate scale and shift
        # one tanh covers all four gates on contiguous memory.
        self.scale = xp.repeat(xp.asarray([0.5, 0.5, 1.0, 0.5], dtype=dtype), hidden)
        self.shift = xp.repeat(xp.asarray([0.5, 0.5, 0.0, 0.5], dtype=dtype), hidden)

    def _split(self, array) -> tuple:
        return tuple(array[:, k * self.hidden:(k + 1) * self.hidden] for k in range(4))

    def forward(self, product, xw, h_prev, c_prev, valid, gates, c_new, tanh_c, h_new):
        xp = self.xp
        xp.add(product.T, xw, out=gates)
        gates *= self.scale
        xp.tanh(gates, out=gates)
        gates *= self.scale
        gates += self.shift
        i, f, g, o = self._split(gates)
        xp.multiply(f, c_prev, out=c_new)
        c_new += i * g
        xp.tanh(c_new, out=tanh_c)
        xp.multiply(o, tanh_c, out=h_new)
        if valid is not None:  # a padded step carries the previous state over
            keep = valid == 0
            xp.copyto(c_new, c_prev, where=keep)
            xp.copyto(h_new, h_prev, where=keep)

    def backward(self, d_h, d_c, g_out, gates, tanh_c, c_prev, valid, d_gates):
        xp = self.xp
        i, f, g, o = self._split(gates)
        d_i, d_f, d_g, d_o = self._split(d_gates)
        d_h += g_out
        d_h_new, d_c_new = d_h * valid, d_c * valid
        # d_o = d_h tanh_c o (1 - o); d_c += d_h o (1 - tanh_c^2)
        xp.multiply(d_h_new, tanh_c, out=d_o)
        d_o *= o * (1 - o)
        d_c_new += d_h_new * o * (1 - tanh_c * tanh_c)
        # d_i = d_c g i (1 - i); d_f = d_c c_prev f (1 - f); d_g = d_c i (1 - g^2)
        xp.multiply(d_c_new, g * i * (1 - i), out=d_i)
        xp.multiply(d_c_new, c_prev * f * (1 - f), out=d_f)
        xp.multiply(d_c_new, i * (1 - g * g), out=d_g)
        kept = 1 - valid  # what a padded step passes straight through
        d_c *= kept
        d_c += d_c_new * f
        d_h *= kept


class LstmSequence(Primitive):
    """(outputs, h_n, c_n) of one LSTM layer-direction from all input projections `xw`."""

    name = "lstm_sequence"

    def infer(self, xw, w_hh, h0, c0, valid, time_axis=0, reverse=False):
        hidden = w_hh.shape[-1] if w_hh.ndim == 2 else 0
        batch = xw.shape[1 - time_axis] if xw.ndim == 3 else 0
        if xw.ndim != 3 or tuple(w_hh.shape) != (4 * hidden, hidden) or \
                xw.shape[-1] != 4 * hidden or tuple(h0.shape) != (batch, hidden) or \
                tuple(c0.shape) != (batch, hidden):
            raise shape_error("lstm_sequence", "expected xw (T, N, 4H) (or (N, T, 4H)), "
                              "w_hh (4H, H), h0 and c0 (N, H)", xw, w_hh, h0, c0)
        if not (xw.dtype is w_hh.dtype is h0.dtype is c0.dtype):
            raise DTypeError(f"lstm_sequence: inputs must share one dtype at {user_frame()}")
        state = AbstractValue((batch, hidden), xw.dtype, xw.device)
        return AbstractValue(xw.shape[:2] + (hidden,), xw.dtype, xw.device), state, state

    def residual_avals(self, xw, w_hh, h0, c0, valid, time_axis=0, reverse=False):
        return time_major_residuals(xw, w_hh, time_axis, 4)  # gates, cells, tanh(cells)

    def forward(self, xp, xw, w_hh, h0, c0, valid, time_axis=0, reverse=False):
        at = _step_view(time_axis)
        steps, hidden = xw.shape[time_axis], w_hh.shape[1]
        batch = xw.shape[1 - time_axis]
        gates = xp.empty((steps, batch, 4 * hidden), dtype=xw.dtype)
        cells = xp.empty((steps, batch, hidden), dtype=xw.dtype)
        tanh_cells = xp.empty_like(cells)
        outputs = xp.empty(xw.shape[:2] + (hidden,), dtype=xw.dtype)
        if _kernels_apply(xp, xw, valid):
            return self._forward_kernel(xw, w_hh, h0, c0, valid, time_axis, reverse, gates,
                                        cells, tanh_cells, outputs)
        step = _GenericStep(xp, hidden, xw.dtype).forward
        rows = [None] * steps if valid is None else valid
        h, c = h0, c0
        for t in _order(steps, reverse):
            # W_hh @ h^T rather than h @ W_hh^T: OpenBLAS runs the tall product about 1.7x
            # faster at a small batch (measured N=20, H=256); the step reads it transposed.
            step(xp.matmul(w_hh, h.T), at(xw, t), h, c, rows[t], gates[t], cells[t],
                 tanh_cells[t], at(outputs, t))
            h, c = at(outputs, t), cells[t]
        return WithResiduals((outputs, h.copy(), c.copy()), (gates, cells, tanh_cells))

    @staticmethod
    def _forward_kernel(xw, w_hh, h0, c0, valid, time_axis, reverse, gates, cells, tanh_cells,
                        outputs):
        """NumPy float32/float64: each step's gate math is one Numba kernel on contiguous
        time-major rows (strided batch-first views would keep it from vectorizing)."""
        at = _step_view(time_axis)
        steps, batch, hidden = cells.shape
        rows = _valid_rows(np, valid, steps, batch, xw.dtype)
        states = outputs if time_axis == 0 else np.empty_like(cells)
        h, c = np.ascontiguousarray(h0), np.ascontiguousarray(c0)
        for t in _order(steps, reverse):
            np.add(np.matmul(w_hh, h.T).T, at(xw, t), out=gates[t])  # as in _GenericStep
            lstm_step_forward(gates[t], h, c, rows[t], cells[t], tanh_cells[t], states[t])
            h, c = states[t], cells[t]
        if time_axis != 0:
            outputs[...] = states.transpose(1, 0, 2)
        return WithResiduals((outputs, h.copy(), c.copy()), (gates, cells, tanh_cells))

    def vjp(self, ctx, g_outputs, g_h, g_c):
        xw, w_hh, h0, c0, valid = ctx.inputs
        # create_graph: BPTT from differentiable per-step ops (also under ember.jit: no residuals)
        if STATE.grad_enabled or ctx.residuals is None:
            grads = _lstm_sequence_vjp(xw, w_hh, h0, c0, valid, g_outputs, g_h, g_c,
                                       **ctx.params)
        else:
            saved = [Tensor(array, ctx.node.device) for array in ctx.residuals]
            grads = apply(LSTM_SEQUENCE_GRAD, g_outputs, g_h, g_c, *saved,
                          Tensor(ctx.outputs_data[0], ctx.node.device), w_hh, h0, c0, valid,
                          **ctx.params)
        return tuple(grad if ctx.node.edges[k] is not None else None
                     for k, grad in enumerate(grads)) + (None,)


class LstmSequenceGrad(Primitive):
    """Gradients of `lstm_sequence` w.r.t. xw, w_hh, h0 and c0, by BPTT on raw arrays."""

    name = "lstm_sequence_grad"
    differentiable = False  # under create_graph the vjp uses `_lstm_sequence_vjp` instead

    def infer(self, g_outputs, g_h, g_c, gates, cells, tanh_cells, outputs, w_hh, h0, c0,
              valid, time_axis=0, reverse=False):
        shape = gates.shape if time_axis == 0 else (gates.shape[1], gates.shape[0],
                                                    gates.shape[2])
        return (AbstractValue(shape, gates.dtype, gates.device),
                AbstractValue(w_hh.shape, w_hh.dtype, w_hh.device),
                AbstractValue(h0.shape, h0.dtype, h0.device),
                AbstractValue(c0.shape, c0.dtype, c0.device))

    def forward(self, xp, g_outputs, g_h, g_c, gates, cells, tanh_cells, outputs, w_hh, h0,
                c0, valid, time_axis=0, reverse=False):
        steps, batch, width = gates.shape
        hidden = width // 4
        step = lstm_step_backward if _kernels_apply(xp, gates, valid) else \
            _GenericStep(xp, hidden, gates.dtype).backward
        rows = _valid_rows(xp, valid, steps, batch, gates.dtype)
        # time-major and contiguous, whatever the layout: the step kernel vectorizes only on
        # contiguous rows
        g_steps = xp.ascontiguousarray(xp.swapaxes(g_outputs, 0, 1) if time_axis else g_outputs)
        d_xw = xp.empty((steps, batch, width), dtype=gates.dtype)
        d_h, d_c = xp.ascontiguousarray(g_h).copy(), xp.ascontiguousarray(g_c).copy()
        order = list(_order(steps, reverse))
        for position in range(steps - 1, -1, -1):
            t = order[position]
            c_prev = c0 if position == 0 else cells[order[position - 1]]
            step(d_h, d_c, g_steps[t], gates[t], tanh_cells[t], c_prev, rows[t], d_xw[t])
            if valid is None:
                d_h = xp.matmul(d_xw[t], w_hh)
            else:  # d_h holds what padded steps carry straight through
                d_h += xp.matmul(d_xw[t], w_hh)
        # dW_hh in one GEMM over all steps: dG (T*N, 4H)^T @ h_prev (T*N, H).
        h_prev = _previous(xp, outputs, h0, time_axis, reverse)
        if time_axis:
            h_prev = xp.swapaxes(h_prev, 0, 1)
        d_w_hh = xp.matmul(d_xw.reshape(-1, width).T,
                           xp.ascontiguousarray(h_prev).reshape(-1, hidden))
        return (xp.swapaxes(d_xw, 0, 1) if time_axis else d_xw), d_w_hh, d_h, d_c


def _lstm_sequence_vjp(xw, w_hh, h0, c0, valid, g_outputs, g_h, g_c, time_axis=0,
                       reverse=False):
    """`lstm_sequence`'s vector-Jacobian product in differentiable ember ops."""
    steps = xw.shape[time_axis]
    xw_steps = split(xw, steps, axis=time_axis)
    g_steps = split(g_outputs, steps, axis=time_axis)
    squeeze = (lambda a: reshape(a, (a.shape[0] * a.shape[1],) + a.shape[2:])) \
        if time_axis == 0 else (lambda a: reshape(a, (a.shape[0], a.shape[2])))
    batch = xw.shape[1 - time_axis]
    masks = None if valid is None else [reshape(m, (batch, 1)) for m in split(valid, steps,
                                                                              axis=0)]
    order = list(_order(steps, reverse))
    h, c, saved = h0, c0, []
    for t in order:  # recompute the forward states as ember ops
        hidden_gates = matrix_transpose(matmul(w_hh, matrix_transpose(h)))
        h_new, c_new = fused_lstm_cell(squeeze(xw_steps[t]), hidden_gates, c)
        saved.append((h, c, hidden_gates))
        if masks is not None:
            h_new, c_new = where(masks[t] > 0, h_new, h), where(masks[t] > 0, c_new, c)
        h, c = h_new, c_new
    d_h, d_c = g_h, g_c
    d_xw, d_w_hh = [None] * steps, None
    for position in range(steps - 1, -1, -1):
        t = order[position]
        h_prev, c_prev, hidden_gates = saved[position]
        d_h = d_h + squeeze(g_steps[t])
        d_h_new, d_c_new = d_h, d_c
        if masks is not None:
            d_h_new, d_c_new = d_h * masks[t], d_c * masks[t]
        d_gates, d_c_prev = _lstm_cell_vjp(squeeze(xw_steps[t]), hidden_gates, c_prev,
                                           d_h_new, d_c_new)
        d_xw[t] = d_gates
        step_w = matmul(matrix_transpose(d_gates), h_prev)
        d_w_hh = step_w if d_w_hh is None else d_w_hh + step_w
        d_h_prev = matmul(d_gates, w_hh)
        if masks is not None:
            d_h_prev = d_h_prev + d_h * (1 - masks[t])
            d_c_prev = d_c_prev + d_c * (1 - masks[t])
        d_h, d_c = d_h_prev, d_c_prev
    return stack(d_xw, axis=time_axis), d_w_hh, d_h, d_c


LSTM_SEQUENCE, LSTM_SEQUENCE_GRAD = LstmSequence(), LstmSequenceGrad()


def lstm_sequence(xw, w_hh, h0, c0, valid=None, *, time_axis: int = 0,
                  reverse: bool = False) -> tuple:
    """One LSTM layer-direction over time: `(outputs, h_n, c_n)` from input projections.

    `xw` is x @ W_ih^T + b_ih + b_hh for every step, (T, N, 4H) (or (N, T, 4H) with
    `time_axis=1`), gates i, f, g, o; `valid` is None or a (T, N, 1) tensor of 1.0 / 0.0
    (0.0: a padded step that carries the state over).

    >>> import ember
    >>> from ember.ops.rnn_sequence import lstm_sequence
    >>> out, h_n, c_n = lstm_sequence(ember.zeros((5, 2, 12)), ember.zeros((12, 3)),
    ...                               ember.zeros((2, 3)), ember.ones((2, 3)))
    >>> out.shape, round(c_n[0, 0].item(), 4)   # f = 0.5 halves c at each of 5 steps
    ((5, 2, 3), 0.0312)
    """
    return apply(LSTM_SEQUENCE, xw, w_hh, h0, c0, valid, time_axis=time_axis,
                 reverse=reverse)
