"""Loss modules: thin wrappers that hold a loss's options and call `ember.nn.functional`.

As in PyTorch, a class weight (and BCEWithLogitsLoss's pos_weight) is a buffer: it follows
`.to(device/dtype)` and appears in the state dict only when given.
"""
from __future__ import annotations

from ember.nn.functional.loss import (
    check_reduction,
    cosine_embedding_loss,
    huber_loss,
    l1_loss,
    margin_ranking_loss,
    mse_loss,
    smooth_l1_loss,
    tensor_of,
    triplet_margin_loss,
)
from ember.nn.functional.loss_classification import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    kl_div,
    nll_loss,
)
from ember.nn.module import Module

_WITH_BATCHMEAN = ("none", "mean", "sum", "batchmean")


class _Loss(Module):
    reductions = ("none", "mean", "sum")

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        check_reduction(type(self).__name__, reduction, self.reductions)
        self.reduction = reduction

    def extra_repr(self):
        return f"reduction={self.reduction!r}" if self.reduction != "mean" else ""


class _WeightedLoss(_Loss):
    def __init__(self, weight=None, reduction: str = "mean"):
        super().__init__(reduction)
        self.register_buffer("weight", tensor_of(weight) if weight is not None else None)


class CrossEntropyLoss(_WeightedLoss):
    """Cross-entropy of logits against class indices or class probabilities.

    >>> import ember
    >>> loss = ember.nn.CrossEntropyLoss(label_smoothing=0.1)
    >>> loss(ember.zeros((2, 3)), ember.tensor([0, 2])).shape
    ()
    """

    def __init__(self, weight=None, *, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0):
        super().__init__(weight, reduction)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input, target):
        return cross_entropy(input, target, self.weight, ignore_index=self.ignore_index,
                             reduction=self.reduction, label_smoothing=self.label_smoothing)


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of log-probabilities at the target classes."""

    def __init__(self, weight=None, *, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__(weight, reduction)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return nll_loss(input, target, self.weight, ignore_index=self.ignore_index,
                        reduction=self.reduction)


class BCELoss(_WeightedLoss):
    """Binary cross-entropy on probabilities (apply sigmoid first, or use BCEWithLogitsLoss)."""

    def __init__(self, weight=None, *, reduction: str = "mean"):
        super().__init__(weight, reduction)

    def forward(self, input, target):
        return binary_cross_entropy(input, target, self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Sigmoid and binary cross-entropy in one numerically stable step.

    >>> import ember
    >>> loss = ember.nn.BCEWithLogitsLoss(pos_weight=ember.ones(3))
    >>> list(loss.state_dict())
    ['pos_weight']
    """

    def __init__(self, weight=None, *, reduction: str = "mean", pos_weight=None):
        super().__init__(reduction)
        self.register_buffer("weight", tensor_of(weight) if weight is not None else None)
        self.register_buffer("pos_weight",
                             tensor_of(pos_weight) if pos_weight is not None else None)

    def forward(self, input, target):
        return binary_cross_entropy_with_logits(
            input, target, self.weight, reduction=self.reduction, pos_weight=self.pos_weight)


class KLDivLoss(_Loss):
    """KL divergence of log-probabilities from a target distribution ('batchmean' is the
    true KL per sample)."""

    reductions = _WITH_BATCHMEAN

    def __init__(self, *, reduction: str = "mean", log_target: bool = False):
        super().__init__(reduction)
        self.log_target = log_target

    def forward(self, input, target):
        return kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


class MSELoss(_Loss):
    """Mean squared error.

    >>> import ember
    >>> ember.nn.MSELoss(reduction="sum")(ember.ones(3), ember.zeros(3))
    tensor(3.)
    """

    def __init__(self, *, reduction: str = "mean"):
        super().__init__(reduction)

    def forward(self, input, target):
        return mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    """Mean absolute error."""

    def __init__(self, *, reduction: str = "mean"):
        super().__init__(reduction)

    def forward(self, input, target):
        return l1_loss(input, target, reduction=self.reduction)


class SmoothL1Loss(_Loss):
    """Quadratic below `beta`, linear above (Fast R-CNN's box loss)."""

    def __init__(self, *, reduction: str = "mean", beta: float = 1.0):
        super().__init__(reduction)
        self.beta = beta

    def forward(self, input, target):
        return smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class HuberLoss(_Loss):
    """Quadratic below `delta`, linear (slope delta) above."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0):
        super().__init__(reduction)
        self.delta = delta

    def forward(self, input, target):
        return huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class CosineEmbeddingLoss(_Loss):
    """Pulls pairs labelled 1 to cosine 1; pushes pairs labelled -1 below cosine `margin`."""

    def __init__(self, margin: float = 0.0, *, reduction: str = "mean"):
        super().__init__(reduction)
        self.margin = margin

    def forward(self, input1, input2, target):
        return cosine_embedding_loss(input1, input2, target, self.margin,
                                     reduction=self.reduction)


class MarginRankingLoss(_Loss):
    """max(0, -y (x1 - x2) + margin): ranks x1 above x2 where y = 1."""

    def __init__(self, margin: float = 0.0, *, reduction: str = "mean"):
        super().__init__(reduction)
        self.margin = margin

    def forward(self, input1, input2, target):
        return margin_ranking_loss(input1, input2, target, self.margin,
                                   reduction=self.reduction)


class TripletMarginLoss(_Loss):
    """max(d(a, p) - d(a, n) + margin, 0) with p-norm distances (optionally swapped)."""

    def __init__(self, margin: float = 1.0, p: float = 2.0, eps: float = 1e-6,
                 swap: bool = False, *, reduction: str = "mean"):
        super().__init__(reduction)
        self.margin, self.p, self.eps, self.swap = margin, p, eps, swap

    def forward(self, anchor, positive, negative):
        return triplet_margin_loss(anchor, positive, negative, self.margin, self.p, self.eps,
                                   self.swap, reduction=self.reduction)
