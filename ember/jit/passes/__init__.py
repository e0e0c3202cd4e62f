"""Graph-to-graph optimization passes. Each is pure: it returns a new graph that verifies.

`run_default(graph)` is the pipeline `ember.jit` applies to each traced graph before it runs:
simplify, fold, cse and dce, repeated while they still remove nodes (at most 4 rounds).
"""
from __future__ import annotations

from ember.jit.ir import Graph
from ember.jit.passes.cse import cse
from ember.jit.passes.dce import dce
from ember.jit.passes.fold import fold
from ember.jit.passes.simplify import simplify

DEFAULT_PASSES = (simplify, fold, cse, dce)

__all__ = ["DEFAULT_PASSES", "cse", "dce", "fold", "run_default", "simplify"]


def run_default(graph: Graph, passes=DEFAULT_PASSES, rounds: int = 4) -> Graph:
    """Apply `passes` in order until the node count stops falling; the result is verified.

    >>> import ember
    >>> from ember._core.primitive import AbstractValue
    >>> from ember.ops.elementwise import ADD, EXP, MULTIPLY
    >>> g = Graph("f")
    >>> x = g.add_input(AbstractValue((3,), ember.float32))
    >>> (a,) = g.add_node(MULTIPLY, (x, 1.0), {}).outputs
    >>> (b,) = g.add_node(EXP, (a,), {}).outputs
    >>> (c,) = g.add_node(EXP, (x,), {}).outputs
    >>> (y,) = g.add_node(ADD, (b, c), {}).outputs
    >>> g.outputs = [y]
    >>> print(run_default(g))
    graph f(%0: float32[3]):
      %2 = exp(%0) : float32[3]
      %4 = add(%2, %2) : float32[3]
      return %4
    """
    for _ in range(rounds):
        before = len(graph.nodes)
        for apply_pass in passes:
            graph = apply_pass(graph)
        if len(graph.nodes) >= before:
            break
    graph.verify()
    return graph
