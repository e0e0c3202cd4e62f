"""Layer-table rows for the dense layers (ember/nn/layers/linear.py)."""
from __future__ import annotations

import numpy as np

import ember
from tests.nn.layertable import LayerSpec

try:
    import torch
except ImportError:
    torch = None


def _linear(p, x):
    y = x @ p["weight"].T
    return y + p["bias"] if "bias" in p else y


ROWS = [
    LayerSpec("linear", lambda: ember.nn.Linear(4, 3), _linear, ((5, 4),),
              {"weight": (3, 4), "bias": (3,)}, torch=lambda: torch.nn.Linear(4, 3)),
    LayerSpec("linear_nobias_3d", lambda: ember.nn.Linear(4, 2, bias=False), _linear,
              ((2, 3, 4),), {"weight": (2, 4)},
              torch=lambda: torch.nn.Linear(4, 2, bias=False)),
    LayerSpec("bilinear", lambda: ember.nn.Bilinear(3, 2, 4),
              lambda p, a, b: np.einsum("ni,oij,nj->no", a, p["weight"], b) + p["bias"],
              ((5, 3), (5, 2)), {"weight": (4, 3, 2), "bias": (4,)},
              torch=lambda: torch.nn.Bilinear(3, 2, 4)),
    LayerSpec("flatten", lambda: ember.nn.Flatten(), lambda p, x: x.reshape(2, -1),
              ((2, 3, 4),), {}),
    LayerSpec("unflatten", lambda: ember.nn.Unflatten(1, (3, 4)),
              lambda p, x: x.reshape(2, 3, 4, 5), ((2, 12, 5),), {}),
    LayerSpec("identity", lambda: ember.nn.Identity(), lambda p, x: x, ((3,),), {}),
]
