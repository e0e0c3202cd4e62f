"""Layout folding: a transpose feeding a matrix product becomes a flag of the GEMM call.

`matmul(permute_dims(a, swap of the last two axes), b)` (the weight gradient of every dense
layer has this shape) becomes `matmul_t(a, b, transpose_a=True)`: BLAS reads `a` transposed
in place, and the permute node, when nothing else reads it, is dropped by `dce`. Same for the
second operand, and both. Only 2-d and batched operands whose permutation swaps exactly the
last two axes qualify; other permutations change the memory walk and stay explicit.
"""
from __future__ import annotations

import numpy as np

from ember._core.primitive import AbstractValue, Primitive
from ember.jit.ir import Graph, Value
from ember.jit.passes._rewrite import rebuild
from ember.jit.passes.dce import dce
from ember.ops.linalg import MATMUL, Matmul, numpy_matmul
from ember.ops.movement import PERMUTE_DIMS


class MatmulTransposed(Primitive):
    """`matmul` of operands read with their last two axes swapped (`transpose_a/_b`)."""

    name = "matmul_t"
    differentiable = False  # made by the pass after differentiation

    def infer(self, a, b, transpose_a, transpose_b):
        a = AbstractValue(_swapped(a.shape, transpose_a), a.dtype, a.device)
        b = AbstractValue(_swapped(b.shape, transpose_b), b.dtype, b.device)
        return MATMUL.infer(a, b)

    def forward(self, xp, a, b, transpose_a, transpose_b):
        a = xp.swapaxes(a, -1, -2) if transpose_a else a
        b = xp.swapaxes(b, -1, -2) if transpose_b else b
        out = numpy_matmul(a, b) if xp is np else xp.matmul(a, b)
        return out if out.dtype == a.dtype else out.astype(a.dtype)


MATMUL_T = MatmulTransposed()


def _swapped(shape, swap: bool) -> tuple:
    shape = tuple(shape)
    return shape[:-2] + (shape[-1], shape[-2]) if swap else shape


def _is_last_swap(axes) -> bool:
    count = len(axes)
    return count >= 2 and tuple(axes) == tuple(range(count - 2)) + (count - 1, count - 2)


def fold_transposes(graph: Graph) -> Graph:
    """A copy of `graph` with last-axes transposes folded into the matmuls reading them.

    >>> import ember
    >>> from ember._core.primitive import AbstractValue
    >>> g = Graph("f")
    >>> a = g.add_input(AbstractValue((8, 3), ember.float32))
    >>> b = g.add_input(AbstractValue((8, 4), ember.float32))
    >>> (t,) = g.add_node(PERMUTE_DIMS, (a,), {"axes": (1, 0)}).outputs
    >>> (y,) = g.add_node(MATMUL, (t, b), {}).outputs
    >>> g.outputs = [y]
    >>> print(fold_transposes(g))
    graph f(%0: float32[8, 3], %1: float32[8, 4]):
      %3 = matmul_t(%0, %1, transpose_a=True, transpose_b=False) : float32[3, 4]
      return %3
    """
    producers = {value.id: node for node in graph.nodes for value in node.outputs}
    nodes = []
    changed = False
    for node in graph.nodes:
        if isinstance(node.prim, Matmul) and all(
                isinstance(operand, Value) and operand.aval.ndim >= 2
                for operand in node.inputs):
            operands, flags = [], []
            for operand in node.inputs:
                inner = producers.get(operand.id)
                if inner is not None and inner.prim is PERMUTE_DIMS and \
                        _is_last_swap(inner.params["axes"]):
                    operands.append(inner.inputs[0])
                    flags.append(True)
                else:
                    operands.append(operand)
                    flags.append(False)
            if any(flags):
                replacement = node.copy(operands, {"transpose_a": flags[0],
                                                   "transpose_b": flags[1]})
                replacement.prim = MATMUL_T
                nodes.append(replacement)
                changed = True
                continue
        nodes.append(node)
    if not changed:
        return graph
    return dce(rebuild(graph, nodes, {}))
