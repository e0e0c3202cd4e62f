"""Dropout layers: Dropout (element-wise) and Dropout1d/2d/3d (whole channels).

In training they zero units with probability p and scale the survivors by 1 / (1 - p); in
evaluation (`module.eval()`) they return the input unchanged.
"""
from __future__ import annotations

from ember.nn.functional.dropout import (
    _check_probability,
    dropout,
    dropout1d,
    dropout2d,
    dropout3d,
)
from ember.nn.module import Module


class _DropoutNd(Module):
    _function = staticmethod(dropout)
    _op = "dropout"

    def __init__(self, p: float = 0.5, inplace: bool = False, generator=None):
        super().__init__()
        self.p = _check_probability(self._op, p)
        self.inplace = inplace
        self.generator = generator

    def forward(self, x):
        return self._function(x, self.p, self.training, generator=self.generator)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """Zero each element with probability p during training (inverted scaling).

    `generator` (an ember.random.Generator) replaces the global one for this layer's masks.

    >>> import ember
    >>> layer = ember.nn.Dropout(0.5).eval()
    >>> x = ember.ones(4)
    >>> layer(x) is x
    True
    """


class Dropout1d(_DropoutNd):
    """Zero whole channels of (N, C, L) inputs with probability p during training."""

    _function = staticmethod(dropout1d)
    _op = "dropout1d"


class Dropout2d(_DropoutNd):
    """Zero whole channels of (N, C, H, W) inputs with probability p during training.

    >>> import ember
    >>> y = ember.nn.Dropout2d(0.5)(ember.ones((2, 8, 3, 3)))
    >>> sorted(set(y.numpy().std(axis=(2, 3)).ravel().tolist()))
    [0.0]
    """

    _function = staticmethod(dropout2d)
    _op = "dropout2d"


class Dropout3d(_DropoutNd):
    """Zero whole channels of (N, C, D, H, W) inputs with probability p during training."""

    _function = staticmethod(dropout3d)
    _op = "dropout3d"
