"""A whole GRU layer-direction over time as one primitive (the GRU twin of `rnn_sequence`).

`xw` holds x @ W_ih^T + b_ih for every step (time on `time_axis`); the hidden bias `b_hh`
comes in separately because, as in PyTorch, the candidate's hidden part (W_hn h + b_hn) is
scaled by the reset gate. Forward runs the time loop on raw arrays (one GEMM per step);
backward runs BPTT on raw arrays with one GEMM per step for dh and single stacked reductions
for dW_hh and db_hh. `valid` is None or a (T, N, 1) array of 1.0 (valid) / 0.0 (padded: the
state is carried over and the output is that state). Under `create_graph=True` the vjp
rebuilds BPTT from per-step ember ops, so gradients of gradients are exact.
"""
from __future__ import annotations

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
from ember.ops.elementwise import where
from ember.ops.linalg import matmul
from ember.ops.movement import matrix_transpose, reshape, split, stack
from ember.ops.reduce import sum as reduce_sum
from ember.ops.rnn import _gru_cell_vjp, _sigmoid_, fused_gru_cell
from ember.ops.rnn_sequence import _order, _previous, _step_view, time_major_residuals


class GruSequence(Primitive):
    """(outputs, h_n) of one GRU layer-direction from all input projections `xw`."""

    name = "gru_sequence"

    def infer(self, xw, w_hh, b_hh, h0, valid, time_axis=0, reverse=False):
        hidden = w_hh.shape[-1] if w_hh.ndim == 2 else 0
        batch = xw.shape[1 - time_axis] if xw.ndim == 3 else 0
        if xw.ndim != 3 or tuple(w_hh.shape) != (3 * hidden, hidden) or \
                xw.shape[-1] != 3 * hidden or tuple(b_hh.shape) != (3 * hidden,) or \
                tuple(h0.shape) != (batch, hidden):
            raise shape_error("gru_sequence", "expected xw (T, N, 3H) (or (N, T, 3H)), "
                              "w_hh (3H, H), b_hh (3H,) and h0 (N, H)", xw, w_hh, b_hh, h0)
        if not (xw.dtype is w_hh.dtype is b_hh.dtype is h0.dtype):
            raise DTypeError(f"gru_sequence: inputs must share one dtype at {user_frame()}")
        return (AbstractValue(xw.shape[:2] + (hidden,), xw.dtype, xw.device),
                AbstractValue((batch, hidden), xw.dtype, xw.device))

    def residual_avals(self, xw, w_hh, b_hh, h0, valid, time_axis=0, reverse=False):
        # reset/update gates, candidates and the hidden candidate pre-activations
        return time_major_residuals(xw, w_hh, time_axis, 2)

    def forward(self, xp, xw, w_hh, b_hh, h0, valid, time_axis=0, reverse=False):
        at = _step_view(time_axis)
        steps, hidden = xw.shape[time_axis], w_hh.shape[1]
        batch = xw.shape[1 - time_axis]
        reset_update = xp.empty((steps, batch, 2 * hidden), dtype=xw.dtype)
        candidates = xp.empty((steps, batch, hidden), dtype=xw.dtype)
        hidden_n = xp.empty_like(candidates)
        outputs = xp.empty(xw.shape[:2] + (hidden,), dtype=xw.dtype)
        h = h0
        for t in _order(steps, reverse):
            # W_hh @ h^T rather than h @ W_hh^T: the faster OpenBLAS shape at a small batch.
            product = xp.matmul(w_hh, h.T).T
            step_x, r_z, n, h_new = at(xw, t), reset_update[t], candidates[t], at(outputs, t)
            xp.add(product[:, 2 * hidden:], b_hh[2 * hidden:], out=hidden_n[t])
            xp.add(product[:, :2 * hidden], step_x[:, :2 * hidden], out=r_z)
            r_z += b_hh[:2 * hidden]
            _sigmoid_(xp, r_z)
            xp.multiply(r_z[:, :hidden], hidden_n[t], out=n)
            n += step_x[:, 2 * hidden:]
            xp.tanh(n, out=n)
            xp.subtract(h, n, out=h_new)  # h' = (1 - z) n + z h = n + z (h - n)
            h_new *= r_z[:, hidden:]
            h_new += n
            if valid is not None:  # a padded step carries the previous state over
                xp.copyto(h_new, h, where=valid[t] == 0)
            h = h_new
        return WithResiduals((outputs, h.copy()), (reset_update, candidates, hidden_n))

    def vjp(self, ctx, g_outputs, g_h):
        xw, w_hh, b_hh, h0, valid = ctx.inputs
        # create_graph: BPTT from differentiable per-step ops (also under ember.jit: no residuals)
        if STATE.grad_enabled or ctx.residuals is None:
            grads = _gru_sequence_vjp(xw, w_hh, b_hh, h0, valid, g_outputs, g_h, **ctx.params)
        else:
            saved = [Tensor(array, ctx.node.device) for array in ctx.residuals]
            grads = apply(GRU_SEQUENCE_GRAD, g_outputs, g_h, *saved,
                          Tensor(ctx.outputs_data[0], ctx.node.device), w_hh, h0, valid,
                          **ctx.params)
        return tuple(grad if ctx.node.edges[k] is not None else None
                     for k, grad in enumerate(grads)) + (None,)


class GruSequenceGrad(Primitive):
    """Gradients of `gru_sequence` w.r.t. xw, w_hh, b_hh and h0, by BPTT on raw arrays."""

    name = "gru_sequence_grad"
    differentiable = False  # under create_graph the vjp uses `_gru_sequence_vjp` instead

    def infer(self, g_outputs, g_h, reset_update, candidates, hidden_n, outputs, w_hh, h0,
              valid, time_axis=0, reverse=False):
        like = (outputs.shape[:2] + (w_hh.shape[0],), outputs.dtype, outputs.device)
        return (AbstractValue(*like), AbstractValue(w_hh.shape, w_hh.dtype, w_hh.device),
                AbstractValue((w_hh.shape[0],), w_hh.dtype, w_hh.device),
                AbstractValue(h0.shape, h0.dtype, h0.device))

    def forward(self, xp, g_outputs, g_h, reset_update, candidates, hidden_n, outputs, w_hh,
                h0, valid, time_axis=0, reverse=False):
        at = _step_view(time_axis)
        steps, batch, hidden = candidates.shape
        d_xw = xp.empty(outputs.shape[:2] + (3 * hidden,), dtype=outputs.dtype)
        d_hidden = xp.empty((steps, batch, 3 * hidden), dtype=outputs.dtype)
        h_prev = _previous(xp, outputs, h0, time_axis, reverse)
        d_h = g_h.copy()
        for t in reversed(_order(steps, reverse)):
            d_h += at(g_outputs, t)
            d_step = d_h if valid is None else d_h * valid[t]
            r, z = reset_update[t][:, :hidden], reset_update[t][:, hidden:]
            n, d_in, d_hid = candidates[t], at(d_xw, t), d_hidden[t]
            d_r, d_z, d_n = (d_in[:, k * hidden:(k + 1) * hidden] for k in range(3))
            # d_n = d (1 - z)(1 - n^2); d_z = d (h - n) z (1 - z); d_r = d_n h_n r (1 - r)
            xp.multiply(d_step, 1 - z, out=d_n)
            d_n *= 1 - n * n
            xp.subtract(at(h_prev, t), n, out=d_z)
            d_z *= d_step
            d_z *= z * (1 - z)
            xp.multiply(d_n, hidden_n[t], out=d_r)
            d_r *= r * (1 - r)
            d_hid[:, :2 * hidden] = d_in[:, :2 * hidden]
            xp.multiply(d_n, r, out=d_hid[:, 2 * hidden:])
            d_direct = d_step * z
            if valid is not None:  # a padded step passes its gradient straight through
                d_direct += d_h * (1 - valid[t])
            d_h = xp.matmul(d_hid, w_hh)
            d_h += d_direct
        # dW_hh and db_hh over all steps at once: dG (T*N, 3H)^T @ h_prev (T*N, H).
        if time_axis == 1:
            h_prev = h_prev.transpose(1, 0, 2)
        flat = d_hidden.reshape(-1, 3 * hidden)
        d_w_hh = xp.matmul(flat.T, h_prev.reshape(-1, hidden))
        return d_xw, d_w_hh, flat.sum(axis=0), d_h


def _gru_sequence_vjp(xw, w_hh, b_hh, h0, valid, g_outputs, g_h, time_axis=0,
                      reverse=False):
    """`gru_sequence`'s vector-Jacobian product in differentiable ember ops."""
    steps, batch = xw.shape[time_axis], xw.shape[1 - time_axis]
    width = xw.shape[-1]
    xw_steps = [reshape(s, (batch, width)) for s in split(xw, steps, axis=time_axis)]
    g_steps = [reshape(s, (batch, -1)) for s in split(g_outputs, steps, axis=time_axis)]
    masks = None if valid is None else [reshape(m, (batch, 1)) for m in split(valid, steps,
                                                                              axis=0)]
    order = list(_order(steps, reverse))
    h, saved = h0, []
    for t in order:  # recompute the forward states as ember ops
        hidden_gates = matrix_transpose(matmul(w_hh, matrix_transpose(h))) + b_hh
        h_new = fused_gru_cell(xw_steps[t], hidden_gates, h)
        saved.append((h, hidden_gates))
        h = h_new if masks is None else where(masks[t] > 0, h_new, h)
    d_h, d_xw, d_w_hh, d_b_hh = g_h, [None] * steps, None, None
    for position in range(steps - 1, -1, -1):
        t = order[position]
        h_prev, hidden_gates = saved[position]
        d_h = d_h + g_steps[t]
        d_step = d_h if masks is None else d_h * masks[t]
        d_in, d_hid, d_direct = _gru_cell_vjp(xw_steps[t], hidden_gates, h_prev, d_step)
        d_xw[t] = d_in
        step_w, step_b = matmul(matrix_transpose(d_hid), h_prev), reduce_sum(d_hid, axis=0)
        d_w_hh = step_w if d_w_hh is None else d_w_hh + step_w
        d_b_hh = step_b if d_b_hh is None else d_b_hh + step_b
        d_h_prev = matmul(d_hid, w_hh) + d_direct
        if masks is not None:  # a padded step passes its gradient straight through
            d_h_prev = d_h_prev + d_h * (1 - masks[t])
        d_h = d_h_prev
    return stack(d_xw, axis=time_axis), d_w_hh, d_b_hh, d_h


GRU_SEQUENCE, GRU_SEQUENCE_GRAD = GruSequence(), GruSequenceGrad()


def gru_sequence(xw, w_hh, b_hh, h0, valid=None, *, time_axis: int = 0,
                 reverse: bool = False) -> tuple:
    """One GRU layer-direction over time: `(outputs, h_n)` from input projections.

    `xw` is x @ W_ih^T + b_ih for every step, (T, N, 3H) (or (N, T, 3H) with `time_axis=1`),
    gates r, z, n; `b_hh` (3H,) is the hidden bias; `valid` is None or a (T, N, 1) tensor of
    1.0 / 0.0 (0.0: a padded step that carries the state over).

    >>> import ember
    >>> from ember.ops.gru_sequence import gru_sequence
    >>> out, h_n = gru_sequence(ember.zeros((3, 2, 6)), ember.zeros((6, 2)), ember.zeros(6),
    ...                         ember.ones((2, 2)))
    >>> out.shape, h_n[0, 0].item()   # z = 0.5, n = 0: h halves at each of 3 steps
    ((3, 2, 2), 0.125)
    """
    return apply(GRU_SEQUENCE, xw, w_hh, b_hh, h0, valid, time_axis=time_axis,
                 reverse=reverse)
