"""Algebraic simplification: identities that make a node return one of its operands.

`x * 1`, `1 * x`, `x + 0`, `0 + x`, `x - 0`, `x / 1` and `-(-x)` become `x`, where the
constant may be a scalar or an array of ones/zeros -- but only when the node's result has
exactly x's shape, dtype and device, so broadcasting and type promotion are never lost
(`int_x * 1.0` stays). Note `x + 0` gives `+0.0` for `x = -0.0`; as in most compilers the
sign of zero is not preserved by this rewrite. Nodes defining graph outputs are kept (an
output must not alias an input or a parameter); `dce` removes the bypassed nodes.
"""
from __future__ import annotations

from ember.jit.ir import Graph, Value
from ember.jit.passes._rewrite import constant_equals, output_ids, rebuild, resolve
from ember.ops.elementwise import ADD, DIVIDE, MULTIPLY, NEGATIVE, SUBTRACT

# primitive -> (identity constant, positions the constant may take)
_IDENTITIES = {MULTIPLY: (1, (0, 1)), ADD: (0, (0, 1)), SUBTRACT: (0, (1,)),
               DIVIDE: (1, (1,))}


def simplify(graph: Graph) -> Graph:
    """A copy of `graph` in which identity operations are bypassed.

    >>> import ember
    >>> from ember._core.primitive import AbstractValue
    >>> from ember.ops.elementwise import EXP
    >>> g = Graph("f")
    >>> x = g.add_input(AbstractValue((3,), ember.float32))
    >>> (a,) = g.add_node(MULTIPLY, (x, 1.0), {}).outputs
    >>> (y,) = g.add_node(EXP, (a,), {}).outputs
    >>> g.outputs = [y]
    >>> print(simplify(g))
    graph f(%0: float32[3]):
      %1 = multiply(%0, 1.0) : float32[3]
      %2 = exp(%0) : float32[3]
      return %2
    """
    outputs = output_ids(graph)
    replace: dict = {}
    producers: dict = {}  # value id -> the (rewritten) node defining it
    for node in graph.nodes:
        inputs = tuple(resolve(operand, replace) for operand in node.inputs)
        for value in node.outputs:
            producers[value.id] = (node, inputs)
        if len(node.outputs) != 1 or node.outputs[0].id in outputs:
            continue
        found = _identity_operand(node, inputs, producers)
        if isinstance(found, Value) and found.aval == node.outputs[0].aval:
            replace[node.outputs[0].id] = found
    return rebuild(graph, graph.nodes, replace)


def _identity_operand(node, inputs, producers):
    """The operand the node returns unchanged, or None."""
    if node.prim is NEGATIVE:
        (operand,) = inputs
        inner = producers.get(operand.id) if isinstance(operand, Value) else None
        if inner is not None and inner[0].prim is NEGATIVE:
            return inner[1][0]
        return None
    rule = _IDENTITIES.get(node.prim)
    if rule is None or node.params or len(inputs) != 2:
        return None
    constant, positions = rule
    for position in positions:
        if constant_equals(inputs[position], constant):
            return inputs[1 - position]
    return None
