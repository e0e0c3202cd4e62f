"""Regression and embedding losses, plus the checks and reductions every loss shares.

Broadcasting between input and target is strict (DESIGN section 6): an `[n, 1]` input
against an `[n]` target would broadcast to `[n, n]` and average the wrong pairs, so any shape
mismatch is a ShapeError naming the loss and both shapes. Classification losses live in
`loss_classification.py`.
"""
from __future__ import annotations

import math

from ember._core.errors import DTypeError, EmberError, user_frame
from ember._core.primitive import shape_error
from ember._core.shapes import broadcast_shapes
from ember._core.tensor import Tensor
from ember.ops._util import as_tensor, cast
from ember.ops.elementwise import abs as elementwise_abs
from ember.ops.elementwise import clip, minimum, sqrt, where
from ember.ops.norm import vector_norm
from ember.ops.reduce import mean as reduce_mean
from ember.ops.reduce import sum as reduce_sum

REDUCTIONS = ("none", "mean", "sum")
_COSINE_EPS = 1e-12  # PyTorch's guard on the squared magnitudes in cosine_embedding_loss


# ---- shared checks ----------------------------------------------------------------------------
def tensor_of(value) -> Tensor:
    return value if isinstance(value, Tensor) else as_tensor(value)


def float_input(op: str, x) -> Tensor:
    x = tensor_of(x)
    if x._data.dtype.kind not in "fV":
        raise DTypeError(f"{op}: expected a floating input, got {x.dtype.name} at "
                         f"{user_frame()}; cast it, e.g. x.astype(ember.float32)")
    return x


def check_reduction(op: str, reduction: str, allowed: tuple = REDUCTIONS):
    if reduction not in allowed:
        choices = ", ".join(repr(r) for r in allowed)
        raise EmberError(f"{op}: reduction={reduction!r} is not one of {choices} at "
                         f"{user_frame()}")


def same_shape(op: str, x: Tensor, target: Tensor, what: str = "target"):
    if x.shape != target.shape:
        raise shape_error(op, f"the {what} must have the input's shape {x.shape}, got "
                          f"{target.shape}; losses do not broadcast (an [n, 1] vs [n] pair "
                          f"would silently compare every row with every target), so reshape "
                          f"one of them", x, target)


def float_target(op: str, x: Tensor, target, what: str = "target") -> Tensor:
    """The target with x's shape (strict) and x's dtype (a float64 target never upcasts)."""
    target = tensor_of(target)
    same_shape(op, x, target, what)
    return cast(target, x.dtype)


def broadcast_weight(op: str, weight, x: Tensor, what: str = "weight") -> Tensor:
    """A per-element rescaling weight: it may broadcast to x's shape but never enlarge it."""
    weight = tensor_of(weight)
    try:
        result = broadcast_shapes(weight.shape, x.shape, op=op)
    except EmberError:
        result = None
    if result != x.shape:
        raise shape_error(op, f"{what} of shape {weight.shape} must broadcast to the input's "
                          f"shape {x.shape}", x, weight)
    return cast(weight, x.dtype)


def reduce_loss(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return reduce_mean(loss)
    if reduction == "sum":
        return reduce_sum(loss)
    return loss


def _pointwise_pair(op: str, input, target, reduction: str):
    check_reduction(op, reduction)
    input = float_input(op, input)
    return input, float_target(op, input, target)


# ---- regression -------------------------------------------------------------------------------
def mse_loss(input, target, *, reduction: str = "mean") -> Tensor:
    """Squared error (input - target)^2, reduced by 'mean' (default), 'sum' or 'none'.

    >>> import ember
    >>> ember.nn.functional.mse_loss(ember.tensor([1.0, 2.0]), ember.tensor([1.0, 4.0]))
    tensor(2.)
    """
    input, target = _pointwise_pair("mse_loss", input, target, reduction)
    difference = input - target
    return reduce_loss(difference * difference, reduction)


def l1_loss(input, target, *, reduction: str = "mean") -> Tensor:
    """Absolute error |input - target|.

    >>> import ember
    >>> ember.nn.functional.l1_loss(ember.tensor([1.0, 2.0]), ember.tensor([0.0, 4.0]))
    tensor(1.5)
    """
    input, target = _pointwise_pair("l1_loss", input, target, reduction)
    return reduce_loss(elementwise_abs(input - target), reduction)


def smooth_l1_loss(input, target, *, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (d = input - target).

    >>> import ember
    >>> ember.nn.functional.smooth_l1_loss(ember.tensor([0.5, 3.0]), ember.zeros(2),
    ...                                    reduction="none")
    tensor([0.125, 2.5  ])
    """
    input, target = _pointwise_pair("smooth_l1_loss", input, target, reduction)
    if beta < 0:
        raise EmberError(f"smooth_l1_loss: beta must be >= 0, got {beta} at {user_frame()}")
    distance = elementwise_abs(input - target)
    if beta == 0:  # the quadratic zone vanishes: plain L1 (and no division by zero)
        return reduce_loss(distance, reduction)
    loss = where(distance < beta, distance * distance * (0.5 / beta), distance - 0.5 * beta)
    return reduce_loss(loss, reduction)


def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """0.5 d^2 where |d| <= delta, else delta (|d| - 0.5 delta); smooth_l1 scaled by delta.

    >>> import ember
    >>> ember.nn.functional.huber_loss(ember.tensor([0.5, 3.0]), ember.zeros(2), delta=2.0,
    ...                                reduction="none")
    tensor([0.125, 4.   ])
    """
    input, target = _pointwise_pair("huber_loss", input, target, reduction)
    if delta <= 0:
        raise EmberError(f"huber_loss: delta must be > 0, got {delta} at {user_frame()}")
    distance = elementwise_abs(input - target)
    loss = where(distance < delta, distance * distance * 0.5,
                 (distance - 0.5 * delta) * delta)
    return reduce_loss(loss, reduction)


# ---- embeddings and ranking -------------------------------------------------------------------
def _label_target(op: str, target, expected_shape: tuple, dtype, *operands) -> Tensor:
    target = tensor_of(target)
    if target.shape != expected_shape:
        raise shape_error(op, f"expected a target of shape {expected_shape} (one label per "
                          f"pair), got {target.shape}", *operands, target)
    return cast(target, dtype)


def cosine_embedding_loss(input1, input2, target, margin: float = 0.0, *,
                          reduction: str = "mean") -> Tensor:
    """1 - cos(x1, x2) for target 1; max(0, cos(x1, x2) - margin) for target -1.

    Inputs are (N, D) or (D,); the target (N,) or () holds 1 or -1.

    >>> import ember
    >>> x = ember.tensor([[1.0, 0.0], [1.0, 0.0]]); y = ember.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> ember.nn.functional.cosine_embedding_loss(x, y, ember.tensor([1, 1]), reduction="none")
    tensor([0., 1.])
    """
    op = "cosine_embedding_loss"
    check_reduction(op, reduction)
    input1, input2 = float_input(op, input1), float_input(op, input2)
    same_shape(op, input1, input2, "second input")
    if input1.ndim not in (1, 2):
        raise shape_error(op, "expected (N, D) or (D,) inputs", input1, input2)
    target = _label_target(op, target, input1.shape[:-1], input1.dtype, input1, input2)
    dot = reduce_sum(input1 * input2, axis=-1)
    squared1 = reduce_sum(input1 * input1, axis=-1) + _COSINE_EPS
    squared2 = reduce_sum(input2 * input2, axis=-1) + _COSINE_EPS
    cosine = dot / sqrt(squared1 * squared2)
    loss = where(target == 1, 1 - cosine, 0.0) + \
        where(target == -1, clip(cosine - margin, min=0.0), 0.0)
    return reduce_loss(loss, reduction)


def margin_ranking_loss(input1, input2, target, margin: float = 0.0, *,
                        reduction: str = "mean") -> Tensor:
    """max(0, -target * (input1 - input2) + margin); target 1 means input1 should rank higher.

    >>> import ember
    >>> ember.nn.functional.margin_ranking_loss(ember.tensor([1.0, 1.0]),
    ...     ember.tensor([0.0, 0.0]), ember.tensor([1.0, -1.0]), margin=0.5, reduction="none")
    tensor([0. , 1.5])
    """
    op = "margin_ranking_loss"
    check_reduction(op, reduction)
    input1, input2 = float_input(op, input1), float_input(op, input2)
    same_shape(op, input1, input2, "second input")
    target = _label_target(op, target, input1.shape, input1.dtype, input1, input2)
    loss = clip(-target * (input1 - input2) + margin, min=0.0)
    return reduce_loss(loss, reduction)


def _pairwise_distance(x1: Tensor, x2: Tensor, p: float, eps: float) -> Tensor:
    # PyTorch's pairwise_distance adds eps to the difference, keeping the norm off the origin.
    return vector_norm(x1 - x2 + eps, axis=-1, ord=p)


def triplet_margin_loss(anchor, positive, negative, margin: float = 1.0, p: float = 2,
                        eps: float = 1e-6, swap: bool = False, *,
                        reduction: str = "mean") -> Tensor:
    """max(d(a, p) - d(a, n) + margin, 0) with d the p-norm distance over the last axis.

    With `swap`, d(a, n) is replaced by min(d(a, n), d(p, n)) (Balntas et al., 2016).

    >>> import ember
    >>> a = ember.tensor([[0.0, 0.0]]); p = ember.tensor([[3.0, 4.0]])
    >>> ember.nn.functional.triplet_margin_loss(a, p, a, eps=0.0)
    tensor(6.)
    """
    op = "triplet_margin_loss"
    check_reduction(op, reduction)
    anchor, positive, negative = (float_input(op, t) for t in (anchor, positive, negative))
    same_shape(op, anchor, positive, "positive")
    same_shape(op, anchor, negative, "negative")
    if anchor.ndim not in (1, 2):
        raise shape_error(op, "expected (N, D) or (D,) inputs", anchor, positive, negative)
    if not (p > 0 or p == math.inf):
        raise EmberError(f"{op}: p must be positive, got {p} at {user_frame()}")
    positive_distance = _pairwise_distance(anchor, positive, p, eps)
    negative_distance = _pairwise_distance(anchor, negative, p, eps)
    if swap:
        negative_distance = minimum(negative_distance,
                                    _pairwise_distance(positive, negative, p, eps))
    loss = clip(positive_distance - negative_distance + margin, min=0.0)
    return reduce_loss(loss, reduction)
