"""Dead-code elimination: drop nodes none of whose outputs reach a graph output.

Graph outputs are the user's results and, after them, the write-backs `ember.jit` adds (the
gradients accumulated into `.grad` and the new values of tensors updated in place), so live
state updates are never removed. Primitives are pure (random draws are not primitives), so a
node whose results are unused has no effect.
"""
from __future__ import annotations

from ember.jit.ir import Graph, Value
from ember.jit.passes._rewrite import output_ids, rebuild
from ember.jit.passes.cse import mergeable


def dce(graph: Graph) -> Graph:
    """A copy of `graph` without the nodes whose results are never used.

    >>> import ember
    >>> from ember._core.primitive import AbstractValue
    >>> from ember.ops.elementwise import ADD, EXP
    >>> g = Graph("f")
    >>> x = g.add_input(AbstractValue((3,), ember.float32))
    >>> _ = g.add_node(EXP, (x,), {})
    >>> (y,) = g.add_node(ADD, (x, 1.0), {}).outputs
    >>> g.outputs = [y]
    >>> print(dce(g))
    graph f(%0: float32[3]):
      %2 = add(%0, 1.0) : float32[3]
      return %2
    """
    live = output_ids(graph)
    kept = []
    for node in reversed(graph.nodes):
        # a random draw stays even when unused: it advances its generator as eager code does
        if any(value.id in live for value in node.outputs) or not mergeable(node.prim):
            kept.append(node)
            live.update(operand.id for operand in node.inputs if isinstance(operand, Value))
    kept.reverse()
    return rebuild(graph, kept, {})
