"""Common-subexpression elimination: one node per (primitive, operands, params).

Two nodes applying the same primitive to the same operands with equal params compute the
same values, so the later one is dropped and its uses read the earlier one's outputs.
Primitives marked `effectful = True` or `random = True` (the `random` draws of ember.random)
are never merged. A node defining a graph output is kept, so two
outputs (e.g. two `.grad` write-backs) never share one array.
"""
from __future__ import annotations

import numpy as np

from ember.jit.ir import Graph, Value
from ember.jit.passes._rewrite import output_ids, rebuild, resolve


def cse(graph: Graph) -> Graph:
    """A copy of `graph` in which repeated computations are done once.

    >>> import ember
    >>> from ember._core.primitive import AbstractValue
    >>> from ember.ops.elementwise import ADD, EXP
    >>> g = Graph("f")
    >>> x = g.add_input(AbstractValue((3,), ember.float32))
    >>> (a,) = g.add_node(EXP, (x,), {}).outputs
    >>> (b,) = g.add_node(EXP, (x,), {}).outputs
    >>> (y,) = g.add_node(ADD, (a, b), {}).outputs
    >>> g.outputs = [y]
    >>> print(cse(g))
    graph f(%0: float32[3]):
      %1 = exp(%0) : float32[3]
      %3 = add(%1, %1) : float32[3]
      return %3
    """
    outputs = output_ids(graph)
    seen: dict = {}
    replace: dict = {}
    kept = []
    for node in graph.nodes:
        inputs = tuple(resolve(operand, replace) for operand in node.inputs)
        key = None if not mergeable(node.prim) else _key(node.prim, inputs, node.params,
                                                         node.residuals)
        first = seen.get(key) if key is not None else None
        if first is not None and not any(value.id in outputs for value in node.outputs):
            for old, new in zip(node.outputs, first.outputs):
                replace[old.id] = new
            continue
        if key is not None and first is None:
            seen[key] = node
        kept.append(node)
    return rebuild(graph, kept, replace)


def mergeable(prim) -> bool:
    """False for primitives that may not be deduplicated (random or with side effects)."""
    return not (getattr(prim, "effectful", False) or getattr(prim, "random", False))


def _key(prim, inputs, params, residuals=0):
    """A hashable identity of the computation, or None when a part cannot be compared."""
    try:
        key = (id(prim), residuals, tuple(_freeze(operand) for operand in inputs),
               tuple(sorted((name, _freeze(value)) for name, value in params.items())))
        hash(key)
    except TypeError:
        return None
    return key


def _freeze(value):
    """A hashable stand-in for an operand or param; types are part of it (1 != 1.0 != True)."""
    if isinstance(value, Value):
        return ("value", value.id)
    if isinstance(value, np.ndarray):
        return ("array", id(value))  # the same constant object only
    if isinstance(value, (tuple, list)):
        return (type(value).__name__, tuple(_freeze(item) for item in value))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((k, _freeze(v)) for k, v in value.items())))
    if isinstance(value, slice):
        return ("slice", _freeze(value.start), _freeze(value.stop), _freeze(value.step))
    return (type(value).__module__, type(value).__qualname__, value)
