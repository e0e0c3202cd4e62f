"""Constant folding: a node whose operands are all constants is evaluated once, now.

Its result (a NumPy array) replaces its uses as a constant operand of later nodes, so chains
of constant nodes fold in one sweep. Skipped: results larger than `max_elements` (a constant
is kept in the graph for its whole life), nodes on a non-CPU device, primitives that are
random or have side effects, nodes whose evaluation fails or disagrees with their
abstract value, and nodes defining a graph output (they stay, and `dce` keeps them).
"""
from __future__ import annotations

import numpy as np

from ember._core.device import CPU
from ember._core.primitive import WithResiduals
from ember.jit.ir import Graph
from ember.jit.passes._rewrite import is_constant, output_ids, rebuild, resolve
from ember.jit.passes.cse import mergeable

MAX_ELEMENTS = 1_000_000


def fold(graph: Graph, max_elements: int = MAX_ELEMENTS) -> Graph:
    """A copy of `graph` with constant subexpressions evaluated.

    >>> import numpy as np, ember
    >>> from ember._core.primitive import AbstractValue
    >>> from ember.ops.elementwise import ADD, MULTIPLY
    >>> g = Graph("f")
    >>> x = g.add_input(AbstractValue((2,), ember.float32))
    >>> (c,) = g.add_node(MULTIPLY, (np.ones(2, np.float32), 3.0), {}).outputs
    >>> (y,) = g.add_node(ADD, (x, c), {}).outputs
    >>> g.outputs = [y]
    >>> print(fold(g))
    graph f(%0: float32[2]):
      %2 = add(%0, array([3., 3.], dtype=float32)) : float32[2]
      return %2
    """
    outputs = output_ids(graph)
    replace: dict = {}
    kept = []
    for node in graph.nodes:
        inputs = tuple(resolve(operand, replace) for operand in node.inputs)
        results = None
        if all(is_constant(operand) for operand in inputs) and not any(
                value.id in outputs for value in node.outputs):
            results = _evaluate(node, inputs, max_elements)
        if results is None:
            kept.append(node)
            continue
        for value, array in zip(node.outputs, results):
            replace[value.id] = array
    return rebuild(graph, kept, replace)


def _evaluate(node, inputs, max_elements):
    """The node's output arrays, or None when it must not be folded."""
    avals = [value.aval for value in node.outputs]
    if not mergeable(node.prim) or node.residuals or any(aval.device is not CPU
                                                         for aval in avals):
        return None
    if any(_size(aval.shape) > max_elements for aval in avals):
        return None
    try:
        result = node.prim.forward(np, *inputs, **node.params)
    except Exception:  # left for run time, where the error is reported in context
        return None
    if type(result) is WithResiduals:
        result = result.outputs
    results = tuple(result) if node.multiple else (result,)
    arrays = tuple(np.asarray(array) for array in results)
    for array, aval in zip(arrays, avals):
        if array.shape != tuple(aval.shape) or array.dtype != aval.dtype.np:
            return None
    for array in arrays:
        array.flags.writeable = False  # shared by every run
    return arrays


def _size(shape) -> int:
    size = 1
    for dim in shape:
        size *= dim
    return size
