"""Affine maps: `linear` and `bilinear` (weights laid out as in PyTorch: (out, in))."""
from __future__ import annotations

from ember._core.tensor import Tensor
from ember.nn.functional._checks import expect_last_dim
from ember.ops.dense import dense
from ember.ops.einsum import einsum


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x @ weight.T + bias, over any leading dimensions.

    >>> import ember
    >>> w = ember.ones((3, 2)); b = ember.zeros(3)
    >>> ember.nn.functional.linear(ember.ones((4, 2)), w, b).shape
    (4, 3)
    """
    return dense(x, weight, bias)


def bilinear(x1: Tensor, x2: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y[..., o] = sum_ij x1[..., i] weight[o, i, j] x2[..., j] + bias[o]."""
    expect_last_dim("bilinear", x1, weight.shape[1], "in1_features")
    expect_last_dim("bilinear", x2, weight.shape[2], "in2_features")
    y = einsum("...i,oij,...j->...o", x1, weight, x2)
    return y + bias if bias is not None else y
