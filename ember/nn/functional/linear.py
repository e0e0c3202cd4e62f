"""Affine maps: `linear` and `bilinear` (weights laid out as in PyTorch: (out, in))."""
from __future__ import annotations

from ember._core.tensor import Tensor
from ember.nn.functional._checks import expect_last_dim
from ember.ops.einsum import einsum
from ember.ops.linalg import matmul
from ember.ops.movement import matrix_transpose, reshape


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x @ weight.T + bias, over any leading dimensions.

    >>> import ember
    >>> w = ember.ones((3, 2)); b = ember.zeros(3)
    >>> ember.nn.functional.linear(ember.ones((4, 2)), w, b).shape
    (4, 3)
    """
    expect_last_dim("linear", x, weight.shape[1], "in_features")
    if x.ndim > 2:
        # One 2-d GEMM instead of a batched matmul: faster forward, and the weight gradient
        # is a single GEMM rather than a batched product summed over the batch.
        lead = x.shape[:-1]
        y = linear(reshape(x, (-1, x.shape[-1])), weight, bias)
        return reshape(y, (*lead, weight.shape[0]))
    y = matmul(x, matrix_transpose(weight))
    return y + bias if bias is not None else y


def bilinear(x1: Tensor, x2: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y[..., o] = sum_ij x1[..., i] weight[o, i, j] x2[..., j] + bias[o]."""
    expect_last_dim("bilinear", x1, weight.shape[1], "in1_features")
    expect_last_dim("bilinear", x2, weight.shape[2], "in2_features")
    y = einsum("...i,oij,...j->...o", x1, weight, x2)
    return y + bias if bias is not None else y
