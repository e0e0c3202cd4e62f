"""Classification losses: cross_entropy, nll_loss, binary cross-entropy (on probabilities and on
logits) and kl_div, with PyTorch's arguments, defaults and weighting rules.

Class-index targets are validated before the math: an integer dtype, the input's shape without
the class axis, and every index in [0, C) unless it equals `ignore_index`. A float target of
the input's shape is read by cross_entropy as class probabilities.
"""
from __future__ import annotations

import math

from ember._core.errors import DTypeError, EmberError, user_frame
from ember._core.primitive import STATE, shape_error
from ember._core.tensor import Tensor
from ember.nn.functional.loss import (
    broadcast_weight,
    check_reduction,
    float_input,
    float_target,
    reduce_loss,
    tensor_of,
)
from ember.ops import movement
from ember.ops._util import cast
from ember.ops.elementwise import astype, exp, log, logaddexp, where
from ember.ops.reduce import sum as reduce_sum
from ember.ops.scatter import take, take_along_axis
from ember.ops.softmax import check_class_range, log_softmax, softmax_cross_entropy
from ember.ops.special import floored_log


# ---- class-index targets ----------------------------------------------------------------------
def _class_axis(x: Tensor) -> int:
    return 0 if x.ndim == 1 else 1


def _index_shape(x: Tensor) -> tuple:
    """Shape of a class-index target for input x: (N, d1, ...) for (N, C, d1, ...)."""
    return () if x.ndim == 1 else x.shape[:1] + x.shape[2:]


def _class_indices(op: str, x: Tensor, target: Tensor, ignore_index: int) -> Tensor:
    if x.ndim == 0:
        raise shape_error(op, "expected an input of shape (C,), (N, C) or (N, C, d1, ...)", x)
    expected = _index_shape(x)
    if target._data.dtype.kind not in "iu":
        hint = ("cast it with target.astype(ember.int64)" if target.shape == expected else
                f"class indices need shape {expected}")
        raise DTypeError(f"{op}: class-index target must be an integer tensor, got "
                         f"{target.dtype.name} of shape {target.shape} at {user_frame()}; "
                         f"{hint}")
    if target.shape != expected:
        raise shape_error(op, f"expected a class-index target of shape {expected} for an input "
                          f"of shape {x.shape} (classes on axis {_class_axis(x)}); losses do "
                          f"not broadcast", x, target)
    _check_class_range(op, target, x.shape[_class_axis(x)], ignore_index)
    return target


def _check_class_range(op: str, target: Tensor, classes: int, ignore_index: int):
    data = target._data
    if STATE.tracer is not None or data.size == 0:
        return
    check_class_range(op, data, classes, ignore_index)


def _class_weight(op: str, weight, x: Tensor) -> Tensor | None:
    if weight is None:
        return None
    weight = tensor_of(weight)
    classes = x.shape[_class_axis(x)]
    if weight.shape != (classes,):
        raise shape_error(op, f"expected a class weight of shape ({classes},), one per class",
                          x, weight)
    return cast(weight, x.dtype)


def _target_weights(x: Tensor, target: Tensor, weight, ignore_index: int) -> Tensor:
    """weight[target] per target (0 where ignored); 1/0 for valid/ignored without weights."""
    valid = target != ignore_index
    if weight is None:
        return astype(valid, x.dtype)
    safe_target = where(valid, target, 0)
    return where(valid, take(weight, safe_target, axis=0), 0.0)


def _weighted_reduce(loss: Tensor, weights: Tensor, reduction: str) -> Tensor:
    """PyTorch's weighted mean divides by the summed weights of the non-ignored targets."""
    if reduction == "mean":
        # All targets ignored: the mean is NaN as in PyTorch, but the gradient must stay
        # zero (a 0/0 in the graph would put NaN into every parameter).
        total = reduce_sum(weights)
        empty = total == 0
        mean = reduce_sum(loss) / where(empty, 1.0, total)
        return where(empty, math.nan, mean)
    return reduce_loss(loss, reduction)


def _unbatched(x: Tensor, target: Tensor):
    """(C,) input with a () target becomes a batch of one."""
    return movement.reshape(x, (1,) + x.shape), movement.reshape(target, (1,))


# ---- nll / cross-entropy ----------------------------------------------------------------------
def nll_loss(input, target, weight=None, *, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood: -weight[t] * input[n, t] for log-probabilities `input`.

    Input (N, C), (N, C, d1, ...) or (C,); target the matching integer class indices.

    >>> import ember
    >>> logp = ember.log(ember.tensor([[0.5, 0.5], [0.9, 0.1]]))
    >>> ember.nn.functional.nll_loss(logp, ember.tensor([0, 1]), reduction="none")
    tensor([0.6931472, 2.3025851])
    """
    op = "nll_loss"
    check_reduction(op, reduction)
    x = float_input(op, input)
    target = _class_indices(op, x, tensor_of(target), ignore_index)
    weight = _class_weight(op, weight, x)
    single = x.ndim == 1
    if single:
        x, target = _unbatched(x, target)
    weights = _target_weights(x, target, weight, ignore_index)
    safe_target = where(target != ignore_index, target, 0)
    picked = take_along_axis(x, movement.expand_dims(safe_target, axis=1), axis=1)
    loss = -movement.squeeze(picked, axis=1) * weights
    if single and reduction == "none":
        return movement.reshape(loss, ())
    return _weighted_reduce(loss, weights, reduction)


def cross_entropy(input, target, weight=None, *, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy between logits and class indices or class probabilities.

    Input (N, C), (N, C, d1, ...) or (C,). An integer target holds class indices (shape
    without the class axis); a float target of the input's shape holds probabilities.
    Weights, `ignore_index`, label smoothing and the weighted mean follow PyTorch exactly.

    >>> import ember
    >>> logits = ember.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    >>> ember.nn.functional.cross_entropy(logits, ember.tensor([0, 2]), reduction="none")
    tensor([0.2395..., 1.0986...])
    """
    op = "cross_entropy"
    check_reduction(op, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise EmberError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing} at "
                         f"{user_frame()}")
    x = float_input(op, input)
    target = tensor_of(target)
    weight = _class_weight(op, weight, x) if x.ndim else weight
    if target._data.dtype.kind in "fV" and target.shape == x.shape:
        return _cross_entropy_probabilities(x, cast(target, x.dtype), weight, reduction,
                                            label_smoothing)
    target = _class_indices(op, x, target, ignore_index)
    single = x.ndim == 1
    if single:
        x, target = _unbatched(x, target)
    if label_smoothing > 0:
        loss, weights = _cross_entropy_smoothed(x, target, weight, ignore_index,
                                                label_smoothing)
    else:
        loss = _fused_cross_entropy(x, target, ignore_index)
        if weight is None and reduction != "none" and not _may_ignore(target, ignore_index):
            return reduce_loss(loss, reduction)  # every target counts once: a plain mean
        weights = _target_weights(x, target, weight, ignore_index)
        if weight is not None:
            loss = loss * weights
    if single and reduction == "none":
        return movement.reshape(loss, ())
    return _weighted_reduce(loss, weights, reduction)


def _fused_cross_entropy(x: Tensor, target: Tensor, ignore_index: int) -> Tensor:
    """Unweighted per-target loss through the fused primitive, which works on (M, C) rows:
    the class axis of a K-d input moves last first."""
    classes = x.shape[1]
    logits = x if x.ndim == 2 else movement.reshape(movement.moveaxis(x, 1, -1), (-1, classes))
    loss = softmax_cross_entropy(logits, movement.reshape(target, (-1,)), ignore_index)
    return movement.reshape(loss, target.shape)


def _may_ignore(target: Tensor, ignore_index: int) -> bool:
    """Whether ignore_index could occur (a negative one never passes the range check unless
    it is present, and checking presence costs the same as counting)."""
    return True if STATE.tracer is not None else bool((target._data == ignore_index).any())


def _cross_entropy_smoothed(x, target, weight, ignore_index, smoothing):
    """PyTorch's smoothing: (1 - eps) * nll + eps / C * sum_c(-w_c log p_c) per target, both
    terms normalized alike (by the summed target weights under 'mean'). Returns the per-target
    loss and the target weights."""
    classes = x.shape[1]
    log_probs = log_softmax(x, axis=1)
    weights = _target_weights(x, target, weight, ignore_index)
    safe_target = where(target != ignore_index, target, 0)
    picked = take_along_axis(log_probs, movement.expand_dims(safe_target, axis=1), axis=1)
    nll = -movement.squeeze(picked, axis=1) * weights
    if weight is not None:
        log_probs = log_probs * movement.reshape(weight, (1, classes) + (1,) * (x.ndim - 2))
    smooth = where(target != ignore_index, -reduce_sum(log_probs, axis=1), 0.0)
    return nll * (1 - smoothing) + smooth * (smoothing / classes), weights


def _cross_entropy_probabilities(x, target, weight, reduction, smoothing):
    """-sum_c w_c q_c log p_c per sample; the 'mean' divides by the sample count (PyTorch
    does not weight the denominator for probability targets)."""
    axis = _class_axis(x)
    classes = x.shape[axis]
    if smoothing > 0:
        target = target * (1 - smoothing) + smoothing / classes
    weighted = log_softmax(x, axis=axis) * target
    if weight is not None:
        shape = (classes,) + (1,) * (x.ndim - 1 - axis)
        weighted = weighted * movement.reshape(weight, shape)
    loss = -reduce_sum(weighted, axis=axis)
    if reduction == "mean":
        return reduce_sum(loss) / (x.size // classes)
    return reduce_loss(loss, reduction)


# ---- binary -----------------------------------------------------------------------------------
def binary_cross_entropy(input, target, weight=None, *, reduction: str = "mean") -> Tensor:
    """-w [t log p + (1 - t) log(1 - p)] on probabilities p in [0, 1] (logs floored at -100).

    >>> import ember
    >>> ember.nn.functional.binary_cross_entropy(ember.tensor([0.5, 0.9]),
    ...                                          ember.tensor([1.0, 0.0]), reduction="none")
    tensor([0.693..., 2.302...])
    """
    op = "binary_cross_entropy"
    check_reduction(op, reduction)
    x = float_input(op, input)
    target = float_target(op, x, target)
    data = x._data
    if STATE.tracer is None and data.size and bool(((data < 0) | (data > 1)).any()):
        raise EmberError(f"{op}: input must hold probabilities in [0, 1], found values from "
                         f"{float(data.min())} to {float(data.max())} at {user_frame()}; "
                         f"apply sigmoid first, or use binary_cross_entropy_with_logits")
    loss = -(target * floored_log(x) + (1 - target) * floored_log(1 - x))
    if weight is not None:
        loss = loss * broadcast_weight(op, weight, x)
    return reduce_loss(loss, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, *, reduction: str = "mean",
                                     pos_weight=None) -> Tensor:
    """Sigmoid + binary cross-entropy in one stable expression on logits x:
    (1 - t) x + (1 + (pos_weight - 1) t) softplus(-x), with softplus(-x) = logaddexp(0, -x).

    `pos_weight` (e.g. shape (C,)) broadcasts along the last axis and weighs positives.

    >>> import ember
    >>> ember.nn.functional.binary_cross_entropy_with_logits(ember.tensor([0.0, 100.0]),
    ...     ember.tensor([1.0, 0.0]), reduction="none")
    tensor([  0.6931472, 100.       ])
    """
    op = "binary_cross_entropy_with_logits"
    check_reduction(op, reduction)
    x = float_input(op, input)
    target = float_target(op, x, target)
    softplus_negative = logaddexp(-x, 0.0)
    if pos_weight is not None:
        pos_weight = broadcast_weight(op, pos_weight, x, "pos_weight")
        softplus_negative = softplus_negative * ((pos_weight - 1) * target + 1)
    loss = (1 - target) * x + softplus_negative
    if weight is not None:
        loss = loss * broadcast_weight(op, weight, x)
    return reduce_loss(loss, reduction)


# ---- divergence -------------------------------------------------------------------------------
def kl_div(input, target, *, reduction: str = "mean", log_target: bool = False) -> Tensor:
    """KL(target || exp(input)) pointwise: target (log target - input); input holds
    log-probabilities, target probabilities (or log-probabilities with `log_target`).
    'batchmean' divides the sum by the batch size, the mathematically correct KL.

    >>> import ember
    >>> q = ember.tensor([[0.5, 0.5]]); logp = ember.log(ember.tensor([[0.25, 0.75]]))
    >>> ember.nn.functional.kl_div(logp, q, reduction="batchmean")
    tensor(0.1438...)
    """
    op = "kl_div"
    check_reduction(op, reduction, ("none", "mean", "sum", "batchmean"))
    x = float_input(op, input)
    target = float_target(op, x, target)
    if log_target:
        loss = exp(target) * (target - x)
    else:
        positive = target > 0  # 0 log 0 = 0: the where keeps 0 out of log
        loss = where(positive, target * log(where(positive, target, 1.0)), 0.0) - target * x
    if reduction == "batchmean":
        return reduce_sum(loss) / (x.shape[0] if x.ndim else 1)
    return reduce_loss(loss, reduction)
