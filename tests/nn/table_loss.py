"""Layer-table rows for the loss modules (ember/nn/layers/loss.py).

Losses own no parameters; class weights (and BCEWithLogitsLoss's pos_weight) are buffers,
present in the state dict only when given, exactly as in PyTorch.
"""
from __future__ import annotations

import numpy as np

import ember
from tests.nn.layertable import LayerSpec

try:
    import torch
except ImportError:
    torch = None

N, C = 5, 3
POSITIVE = {"weight": lambda rng, shape: rng.uniform(0.5, 2.0, shape),
            "pos_weight": lambda rng, shape: rng.uniform(0.5, 2.0, shape)}


def _log_softmax(x):
    shifted = x - x.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _logits_and_classes(rng, dtype):
    return [rng.uniform(-1, 1, (N, C)).astype(dtype), rng.integers(0, C, N)]


def _probabilities(rng, dtype):
    return [rng.uniform(0.1, 0.9, (N, C)).astype(dtype), rng.uniform(0, 1, (N, C)).astype(dtype)]


def _distributions(rng, dtype):
    return [_log_softmax(rng.standard_normal((N, C))).astype(dtype),
            np.exp(_log_softmax(rng.standard_normal((N, C)))).astype(dtype)]


def _pairs_with_labels(rng, dtype):
    return [rng.standard_normal((N, C)).astype(dtype), rng.standard_normal((N, C)).astype(dtype),
            np.where(rng.random(N) < 0.5, 1, -1)]


def _ranking(rng, dtype):
    return [rng.standard_normal(N).astype(dtype), rng.standard_normal(N).astype(dtype),
            np.where(rng.random(N) < 0.5, 1.0, -1.0).astype(dtype)]


def _picked(log_probs, target, weight):
    return -log_probs[np.arange(len(target)), target] * weight[target]


def _cross_entropy(p, x, t):
    weight = p.get("weight", np.ones(C))
    return _picked(_log_softmax(x), t, weight).sum() / weight[t].sum()


def _bce_logits(p, x, t):
    log_sigmoid = -np.logaddexp(0, -x)
    log_one_minus = -np.logaddexp(0, x)
    loss = -(p["pos_weight"] * t * log_sigmoid + (1 - t) * log_one_minus)
    return (loss * p["weight"]).mean()


def _cosine(p, a, b, y):
    cosine = (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))
    return np.where(y == 1, 1 - cosine, np.maximum(cosine - 0.1, 0)).sum()


def _triplet(p, a, pos, neg):
    def distance(u, v):
        return np.sqrt(((u - v + 1e-6) ** 2).sum(1))

    return np.maximum(distance(a, pos) - distance(a, neg) + 1.0, 0).mean()


def _torch(factory):
    return factory if torch is not None else None


ROWS = [
    LayerSpec("cross_entropy_loss", lambda: ember.nn.CrossEntropyLoss(), _cross_entropy,
              ((N, C), (N,)), {}, make=_logits_and_classes,
              torch=_torch(lambda: torch.nn.CrossEntropyLoss())),
    LayerSpec("cross_entropy_loss_weight",
              lambda: ember.nn.CrossEntropyLoss(weight=ember.ones(C)), _cross_entropy,
              ((N, C), (N,)), {"weight": (C,)}, make=_logits_and_classes,
              make_params=POSITIVE,
              torch=_torch(lambda: torch.nn.CrossEntropyLoss(weight=torch.ones(C)))),
    LayerSpec("nll_loss_weight_sum",
              lambda: ember.nn.NLLLoss(weight=ember.ones(C), reduction="sum"),
              lambda p, x, t: _picked(x, t, p["weight"]).sum(), ((N, C), (N,)),
              {"weight": (C,)}, make=_logits_and_classes, make_params=POSITIVE,
              torch=_torch(lambda: torch.nn.NLLLoss(weight=torch.ones(C), reduction="sum"))),
    LayerSpec("bce_loss_none", lambda: ember.nn.BCELoss(reduction="none"),
              lambda p, x, t: -(t * np.log(x) + (1 - t) * np.log(1 - x)), ((N, C), (N, C)),
              {}, make=_probabilities, torch=_torch(lambda: torch.nn.BCELoss(reduction="none"))),
    LayerSpec("bce_with_logits_loss_weights",
              lambda: ember.nn.BCEWithLogitsLoss(weight=ember.ones(C), pos_weight=ember.ones(C)),
              _bce_logits, ((N, C), (N, C)), {"weight": (C,), "pos_weight": (C,)},
              make=_probabilities, make_params=POSITIVE,
              torch=_torch(lambda: torch.nn.BCEWithLogitsLoss(weight=torch.ones(C),
                                                              pos_weight=torch.ones(C)))),
    LayerSpec("mse_loss", lambda: ember.nn.MSELoss(), lambda p, x, t: ((x - t) ** 2).mean(),
              ((N, C), (N, C)), {}, torch=_torch(lambda: torch.nn.MSELoss())),
    LayerSpec("l1_loss_sum", lambda: ember.nn.L1Loss(reduction="sum"),
              lambda p, x, t: np.abs(x - t).sum(), ((N, C), (N, C)), {},
              torch=_torch(lambda: torch.nn.L1Loss(reduction="sum"))),
    LayerSpec("smooth_l1_loss", lambda: ember.nn.SmoothL1Loss(beta=0.5),
              lambda p, x, t: np.where(np.abs(x - t) < 0.5, (x - t) ** 2, np.abs(x - t) - 0.25
                                       ).mean(), ((N, C), (N, C)), {},
              torch=_torch(lambda: torch.nn.SmoothL1Loss(beta=0.5))),
    LayerSpec("huber_loss", lambda: ember.nn.HuberLoss(delta=0.5),
              lambda p, x, t: np.where(np.abs(x - t) < 0.5, 0.5 * (x - t) ** 2,
                                       0.5 * (np.abs(x - t) - 0.25)).mean(),
              ((N, C), (N, C)), {}, torch=_torch(lambda: torch.nn.HuberLoss(delta=0.5))),
    LayerSpec("kl_div_loss_batchmean", lambda: ember.nn.KLDivLoss(reduction="batchmean"),
              lambda p, x, q: (q * (np.log(q) - x)).sum() / N, ((N, C), (N, C)), {},
              make=_distributions,
              torch=_torch(lambda: torch.nn.KLDivLoss(reduction="batchmean"))),
    LayerSpec("cosine_embedding_loss_sum",
              lambda: ember.nn.CosineEmbeddingLoss(0.1, reduction="sum"), _cosine,
              ((N, C), (N, C), (N,)), {}, make=_pairs_with_labels,
              torch=_torch(lambda: torch.nn.CosineEmbeddingLoss(0.1, reduction="sum"))),
    LayerSpec("margin_ranking_loss", lambda: ember.nn.MarginRankingLoss(0.2),
              lambda p, a, b, y: np.maximum(-y * (a - b) + 0.2, 0).mean(), ((N,), (N,), (N,)),
              {}, make=_ranking, grad=(0, 1),
              torch=_torch(lambda: torch.nn.MarginRankingLoss(0.2))),
    LayerSpec("triplet_margin_loss", lambda: ember.nn.TripletMarginLoss(), _triplet,
              ((N, C), (N, C), (N, C)), {}, domain=(-2.0, 2.0),
              torch=_torch(lambda: torch.nn.TripletMarginLoss())),
]
