"""Softmax family: softmax, log_softmax and the fused softmax cross-entropy over class indices.

softmax and the cross-entropy exponentiate through `_exp_and_sums`, which shifts by the row
maximum only when a row needs it (see there); log_softmax always shifts. All compute in the
input's float dtype; float16/bfloat16 rows are summed in float32, as PyTorch does, because a
half-precision sum over thousands of classes loses the small terms.
"""
from __future__ import annotations

import numpy as np

from ember._core import dtypes
from ember._core.errors import DTypeError, user_frame
from ember._core.primitive import (
    STATE,
    AbstractValue,
    Primitive,
    WithResiduals,
    apply,
    shape_error,
)
from ember._core.shapes import normalize_axis
from ember._core.tensor import Tensor
from ember.ops import movement
from ember.ops._fastmath import KERNEL_DTYPES
from ember.ops._softmax_kernels import cross_entropy_grad_rows, cross_entropy_rows, sum_range
from ember.ops._util import as_tensor, cast, unary_float
from ember.ops.elementwise import exp, where
from ember.ops.indexing import IndexOutOfRange
from ember.ops.reduce import sum as reduce_sum
from ember.ops.scatter import take_along_axis


def _compute_dtype(xp, x):
    """float32 for half-precision inputs (accumulation precision), else the input's dtype."""
    return xp.float32 if x.dtype.itemsize < 4 else x.dtype


def _exp_and_sums(xp, x, axis):
    """(work, exps, sums, shift): x in the compute dtype, exp(work - shift), its sums along
    `axis` (kept as size 1) and the shift: None, or the maximum along `axis` (size 1 kept).

    Shifting by the maximum keeps exp from overflowing but costs two passes over x (max,
    subtract), about a third of the forward time. Typical logits lie far inside exp's range,
    and there exp(x) is exactly as accurate as exp(x - max), so exp(x) is tried first; the
    shift is applied only when some row sum overflowed, or fell so low (below sqrt(tiny)) that
    its terms could be subnormal. The check reads one value per row.
    """
    work = x.astype(_compute_dtype(xp, x), copy=False)
    with np.errstate(over="ignore", under="ignore"):  # an overflow only selects the shift
        exps = xp.exp(work)
    sums = exps.sum(axis=axis, keepdims=True)
    limits = xp.finfo(work.dtype)
    if bool(((sums >= float(limits.tiny) ** 0.5) & (sums <= float(limits.max))).all()):
        return work, exps, sums, None
    shift = work.max(axis=axis, keepdims=True)
    xp.subtract(work, shift, out=exps)
    xp.exp(exps, out=exps)
    return work, exps, exps.sum(axis=axis, keepdims=True), shift


def check_class_range(op: str, target, classes: int, ignore_index: int) -> None:
    """Raise IndexOutOfRange, naming up to 8 of them, when the integer array `target` holds
    class indices outside [0, classes) other than `ignore_index`."""
    bad = ((target < 0) | (target >= classes)) & (target != ignore_index)
    if bool(bad.any()):
        values = sorted({int(v) for v in target[bad].reshape(-1)[:8].tolist()})
        raise IndexOutOfRange(f"{op}: target holds class indices {values} outside [0, "
                              f"{classes}) for an input with {classes} classes (ignore_index="
                              f"{ignore_index}) at {user_frame()}")


def _row_kernels_apply(xp, rows) -> bool:
    """Whether the Numba row kernels (ember/ops/_softmax_kernels.py) serve these (M, C) rows:
    NumPy float32/float64 with at least one class."""
    return xp is np and rows.dtype in KERNEL_DTYPES and rows.shape[1] > 0


class Softmax(Primitive):
    """exp(x) / sum(exp(x)) along `axis`."""

    def infer(self, x, axis):
        return AbstractValue(x.shape, x.dtype, x.device)

    def forward(self, xp, x, axis):
        if x.size == 0:
            return xp.empty_like(x)
        _, exps, sums, _ = _exp_and_sums(xp, x, axis)
        exps /= sums
        return exps.astype(x.dtype, copy=False)

    def vjp(self, ctx, gy):
        # J^T gy = y * (gy - <gy, y>) along the axis.
        y = ctx.out
        axis = ctx.params["axis"]
        return (y * (gy - reduce_sum(gy * y, axis=axis, keepdims=True)),)


class LogSoftmax(Primitive):
    """x - logsumexp(x) along `axis`."""

    def infer(self, x, axis):
        return AbstractValue(x.shape, x.dtype, x.device)

    def forward(self, xp, x, axis):
        if x.size == 0:
            return xp.empty_like(x)
        # Always shifted: (x - max) - log(sum) keeps log-probabilities near 0 accurate to their
        # own ulp, where x - logsumexp(x) would round at the ulp of x itself.
        work = x.astype(_compute_dtype(xp, x), copy=False)
        out = work - work.max(axis=axis, keepdims=True)
        out -= xp.log(xp.exp(out).sum(axis=axis, keepdims=True))
        return out.astype(x.dtype, copy=False)

    def vjp(self, ctx, gy):
        # d/dx (x - lse(x)) applied to gy: gy - softmax(x) * sum(gy).
        axis = ctx.params["axis"]
        return (gy - exp(ctx.out) * reduce_sum(gy, axis=axis, keepdims=True),)


class SoftmaxCrossEntropy(Primitive):
    """Per-row -log_softmax(logits)[i, target[i]] for (M, C) logits and (M,) class indices.

    Forward is exp, row sums and a pick of the M target entries: no log-softmax matrix and no
    one-hot matrix is built. Rows whose target equals `ignore_index` give 0 and
    no gradient. The unnormalized exponentials and the reciprocal row sums are kept for the
    backward pass, which saves normalizing the (M, C) softmax in forward; backward scales them
    in the one pass that writes the gradient.
    """

    def infer(self, logits, target, ignore_index):
        if len(logits.shape) != 2 or tuple(target.shape) != tuple(logits.shape[:1]):
            raise shape_error("softmax_cross_entropy", "expected (M, C) logits and (M,) "
                              "targets", logits, target)
        return AbstractValue(logits.shape[:1], logits.dtype, logits.device)

    def residual_avals(self, logits, target, ignore_index):
        rows = logits.shape[:1]
        return (AbstractValue(logits.shape, logits.dtype, logits.device),
                AbstractValue(rows, logits.dtype, logits.device),
                AbstractValue(rows, dtypes.bool_, logits.device),
                AbstractValue(rows, target.dtype, logits.device))

    def forward(self, xp, logits, target, ignore_index):
        return self._losses(xp, logits, None, target, ignore_index)

    def _losses(self, xp, logits, bias, target, ignore_index):
        """The forward of `logits + bias` (bias (C,) or None)."""
        if xp is np:  # eager losses check first; a traced step meets the check here
            check_class_range("softmax_cross_entropy", target, logits.shape[1], ignore_index)
        rows = xp.arange(logits.shape[0])
        valid = target != ignore_index
        safe_target = xp.where(valid, target, 0)
        if _row_kernels_apply(xp, logits):
            return self._forward_kernel(logits, bias, target, ignore_index, valid, safe_target)
        if bias is not None:
            logits = logits + bias
        work, exps, sums, shift = _exp_and_sums(xp, logits, 1)
        picked = work[rows, safe_target]
        if shift is not None:
            picked -= shift[:, 0]
        # Unshifted, the loss rounds at the ulp of the logits (1e-6 for logits near 10): far
        # below any loss that matters, and the gradient keeps full relative precision.
        nll = xp.log(sums[:, 0]) - picked
        nll = xp.where(valid, nll, 0).astype(logits.dtype, copy=False)
        residuals = (exps.astype(logits.dtype, copy=False),
                     (1 / sums[:, 0]).astype(logits.dtype, copy=False), valid, safe_target)
        return WithResiduals(nll, residuals)

    @staticmethod
    def _forward_kernel(logits, bias, target, ignore_index, valid, safe_target):
        """One pass per row (`cross_entropy_rows`), with the same shift rule and residuals;
        a `bias` (C,) is added to every row as it is read."""
        exps = np.empty_like(logits)
        inverse = np.empty(logits.shape[0], dtype=logits.dtype)
        nll = np.empty_like(inverse)
        cross_entropy_rows(logits, bias, target, ignore_index, *sum_range(logits.dtype), exps,
                           inverse, nll)
        return WithResiduals(nll, (exps, inverse, valid, safe_target))

    def vjp(self, ctx, gy):
        logits, target = ctx.inputs
        device = logits._device
        if ctx.residuals is None:  # traced by ember.jit: rebuild the mask in ember ops
            valid = target != ctx.params["ignore_index"]
            safe_target = where(valid, target, 0)
        else:
            exps, inverse_sums, valid, safe_target = ctx.residuals
            valid, safe_target = Tensor(valid, device), Tensor(safe_target, device)
        scale = where(valid, gy, 0.0)
        if STATE.grad_enabled or ctx.residuals is None:
            # create_graph (or jit): the softmax must be a function of the logits in ember ops.
            probs = softmax(logits, axis=1)
            return apply(SOFTMAX_CE_GRAD, probs, safe_target, scale, scale), None
        probs_unnormalized = Tensor(exps, device)
        prob_scale = scale * Tensor(inverse_sums, device)
        return apply(SOFTMAX_CE_GRAD, probs_unnormalized, safe_target, prob_scale, scale), None


class SoftmaxCrossEntropyBias(SoftmaxCrossEntropy):
    """`softmax_cross_entropy(logits + bias, target)` for a (C,) bias, outputs and residuals
    alike, without the (M, C) sum: the row kernel adds the bias as it reads each row.

    Made by `ember.jit.passes.bias.fold_bias` from a dense layer's bias add whose only
    reader is the loss (after differentiation: the backward reads only the residuals)."""

    name = "softmax_cross_entropy_bias"
    differentiable = False

    def infer(self, logits, bias, target, ignore_index):
        if tuple(bias.shape) != tuple(logits.shape[1:]) or bias.dtype != logits.dtype:
            raise shape_error("softmax_cross_entropy_bias", "expected a (C,) bias of the "
                              "logits' dtype", logits, bias)
        return super().infer(logits, target, ignore_index)

    def residual_avals(self, logits, bias, target, ignore_index):
        return super().residual_avals(logits, target, ignore_index)

    def forward(self, xp, logits, bias, target, ignore_index):
        return self._losses(xp, logits, bias, target, ignore_index)


class SoftmaxCrossEntropyGrad(Primitive):
    """gx = probs * prob_scale[:, None] - onehot(target) * target_scale[:, None].

    The backward of `SoftmaxCrossEntropy`; its own vjp (in ember ops) gives double backward.
    """

    def infer(self, probs, target, prob_scale, target_scale):
        return AbstractValue(probs.shape, probs.dtype, probs.device)

    def forward(self, xp, probs, target, prob_scale, target_scale):
        if _row_kernels_apply(xp, probs) and \
                prob_scale.dtype == target_scale.dtype == probs.dtype:
            gx = np.empty_like(probs)
            cross_entropy_grad_rows(probs, target, prob_scale, target_scale, gx)
            return gx
        gx = probs * prob_scale[:, None]
        gx[xp.arange(gx.shape[0]), target] -= target_scale
        return gx

    def vjp(self, ctx, ggx):
        probs, target, prob_scale, _ = ctx.inputs
        g_probs = ggx * movement.expand_dims(prob_scale, axis=1)
        g_prob_scale = reduce_sum(ggx * probs, axis=1)
        picked = take_along_axis(ggx, movement.expand_dims(target, axis=1), axis=1)
        g_target_scale = -movement.reshape(picked, (-1,))
        return g_probs, None, g_prob_scale, g_target_scale


SOFTMAX, LOG_SOFTMAX = Softmax(), LogSoftmax()
SOFTMAX_CE, SOFTMAX_CE_GRAD = SoftmaxCrossEntropy(), SoftmaxCrossEntropyGrad()
SOFTMAX_CE_BIAS = SoftmaxCrossEntropyBias()


# ---- public functions -------------------------------------------------------------------------
def _along(prim, x, dim, axis, dtype):
    x = unary_float(x)
    if dtype is not None:
        x = cast(x, dtypes.as_dtype(dtype))
    axis = dim if axis is None else axis
    if axis is None:
        axis = -1
    if x.ndim == 0:  # a single element: treat it as a one-element row
        return movement.reshape(apply(prim, movement.reshape(x, (1,)), axis=0), ())
    return apply(prim, x, axis=normalize_axis(axis, x.ndim, prim.name))


def softmax(x, dim: int | None = -1, *, axis: int | None = None, dtype=None) -> Tensor:
    """exp(x) / sum(exp(x)) along `dim` (alias `axis`), stable for large inputs.

    >>> import ember
    >>> ember.nn.functional.softmax(ember.tensor([[1.0, 1.0], [0.0, 1000.0]]), dim=1)
    tensor([[0.5, 0.5],
            [0. , 1. ]])
    """
    return _along(SOFTMAX, x, dim, axis, dtype)


def log_softmax(x, dim: int | None = -1, *, axis: int | None = None, dtype=None) -> Tensor:
    """log(softmax(x)) along `dim` (alias `axis`), computed as x - logsumexp(x).

    >>> import ember
    >>> ember.nn.functional.log_softmax(ember.tensor([0.0, 0.0]))
    tensor([-0.6931472, -0.6931472])
    """
    return _along(LOG_SOFTMAX, x, dim, axis, dtype)


def softmax_cross_entropy(logits, target, ignore_index: int = -100) -> Tensor:
    """Per-row cross-entropy of (M, C) logits against (M,) integer class indices.

    Rows with target == ignore_index give 0. The building block of
    `ember.nn.functional.cross_entropy`, which adds weights, reductions and K-d inputs.

    >>> import ember
    >>> from ember.ops.softmax import softmax_cross_entropy
    >>> softmax_cross_entropy(ember.zeros((2, 4)), ember.tensor([1, -100]))
    tensor([1.3862944, 0.       ])
    """
    logits = logits if isinstance(logits, Tensor) else as_tensor(logits)
    target = target if isinstance(target, Tensor) else as_tensor(target)
    if logits._data.dtype.kind not in "fV":
        raise DTypeError(f"softmax_cross_entropy: logits must be floating, got "
                         f"{logits.dtype.name} at {user_frame()}")
    if target._data.dtype.kind not in "iu":
        raise DTypeError(f"softmax_cross_entropy: target must hold integer class indices, "
                         f"got {target.dtype.name} at {user_frame()}")
    if logits.ndim != 2 or target.shape != logits.shape[:1]:
        raise shape_error("softmax_cross_entropy", "expected (M, C) logits and (M,) targets",
                          logits, target)
    return apply(SOFTMAX_CE, logits, target, ignore_index=int(ignore_index))
