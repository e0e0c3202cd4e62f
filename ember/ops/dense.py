"""The affine map y = x W^T + b as one primitive (DESIGN section 2: coarse where speed needs it).

As three primitives (transpose, matmul, add) a small `Linear` layer spent most of its time
in dispatch and graph linking: 21 µs per call on (4, 16) against PyTorch's 7 µs. One
primitive does one dispatch, and leading axes are folded into a single 2-d GEMM (the weight
gradient is then one GEMM too, not a batched product summed over the batch).
"""
from __future__ import annotations

import numpy as np

from ember._core import dtypes
from ember._core.primitive import AbstractValue, Primitive, apply, shape_error
from ember._core.tensor import Tensor
from ember.ops.linalg import _blas_ready, matmul
from ember.ops.movement import matrix_transpose, reshape
from ember.ops.reduce import sum as reduce_sum


class Dense(Primitive):
    """x (..., in), weight (out, in), bias (out,) or None -> (..., out)."""

    def infer(self, x, weight, bias):
        if x.ndim == 0 or weight.ndim != 2 or x.shape[-1] != weight.shape[1]:
            raise shape_error("linear", f"expected the last dimension of the input to be "
                              f"in_features={weight.shape[1] if weight.ndim == 2 else '?'} "
                              f"for a weight of shape (out_features, in_features)", x, weight)
        if bias is not None and tuple(bias.shape) != (weight.shape[0],):
            raise shape_error("linear", f"expected a bias of shape ({weight.shape[0]},)",
                              bias, weight)
        return AbstractValue(x.shape[:-1] + (weight.shape[0],),
                             dtypes.promote_types(x.dtype, weight.dtype), x.device)

    def forward(self, xp, x, weight, bias):
        if bias is not None and bias.shape != weight.shape[:1]:
            raise ValueError("bias shape")  # `infer` names it; a (1,) bias must not broadcast
        rows = x.reshape(-1, x.shape[-1]) if x.ndim != 2 else x
        if xp is np:
            rows = _blas_ready(rows)
        out = rows @ weight.T
        if out.dtype != x.dtype:  # NumPy multiplies bfloat16 in float32
            out = out.astype(x.dtype)
        if bias is not None:
            out += bias
        return out.reshape(x.shape[:-1] + (weight.shape[0],)) if x.ndim != 2 else out

    def vjp(self, ctx, gy):
        x, weight, bias = ctx.inputs
        edges = ctx.node.edges
        gx = matmul(gy, weight) if edges[0] is not None else None
        gw = gb = None
        if edges[1] is not None:
            rows_gy = reshape(gy, (-1, gy.shape[-1])) if gy.ndim != 2 else gy
            rows_x = reshape(x, (-1, x.shape[-1])) if x.ndim != 2 else x
            gw = matmul(matrix_transpose(rows_gy), rows_x)
        if bias is not None and edges[2] is not None:
            gb = reduce_sum(gy, axis=tuple(range(gy.ndim - 1))) if gy.ndim > 1 else gy
        return gx, gw, gb


DENSE = Dense()


def dense(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weight.T + bias in one primitive (the math of `ember.nn.functional.linear`)."""
    return apply(DENSE, x, weight, bias)
