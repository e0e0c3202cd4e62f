"""Shared helpers of the passes: copying a graph with some values replaced.

Passes never change the graph they are given. A rewritten graph has new `Node` objects and
lists but shares the input, capture and output `Value`s of the original (SSA values are
immutable facts about the program), so printouts of both use the same `%ids`.
"""
from __future__ import annotations

import itertools

import numpy as np

from ember.jit.ir import Graph, Value


def rebuild(graph: Graph, nodes, replace: dict) -> Graph:
    """A new graph with `nodes` (old Node objects, in order) whose Value operands are
    replaced through `replace` (value id -> Value or constant); inputs, captures and outputs
    are kept as they are (passes never redefine a graph output)."""
    new = Graph(graph.name)
    new.inputs = list(graph.inputs)
    new.captures = list(graph.captures)
    for node in nodes:
        inputs = tuple(resolve(operand, replace) for operand in node.inputs)
        copy = node.copy(inputs)
        new.nodes.append(copy)
    new.outputs = list(graph.outputs)
    new._ids = itertools.count(_next_id(graph))
    return new


def resolve(operand, replace: dict):
    """`operand` after the replacements (followed transitively)."""
    while isinstance(operand, Value) and operand.id in replace:
        operand = replace[operand.id]
    return operand


def reader_positions(graph: Graph) -> dict[int, list]:
    """value id -> positions of the nodes reading it, in order."""
    readers: dict[int, list] = {}
    for position, node in enumerate(graph.nodes):
        for operand in node.inputs:
            if isinstance(operand, Value):
                readers.setdefault(operand.id, []).append(position)
    return readers


def output_ids(graph: Graph) -> set[int]:
    """Ids of the graph outputs: the user's results and the state/grad write-backs."""
    return {value.id for value in graph.outputs}


def is_constant(operand) -> bool:
    """True for graph constants: anything but a Value (scalars, None, NumPy arrays)."""
    return not isinstance(operand, Value)


def constant_equals(operand, number) -> bool:
    """True when `operand` is a constant (scalar or array) all of whose elements equal
    `number` (booleans do not count as numbers)."""
    if isinstance(operand, (bool, np.bool_)) or operand is None or isinstance(operand, Value):
        return False
    if isinstance(operand, np.ndarray):
        return operand.dtype.kind in "iuf" and bool(np.all(operand == number))
    return isinstance(operand, (int, float, np.integer, np.floating)) and operand == number


def _next_id(graph: Graph) -> int:
    ids = [value.id for value in graph.inputs]
    ids += [value.id for value, _ in graph.captures]
    ids += [value.id for node in graph.nodes for value in node.outputs]
    return max(ids, default=-1) + 1
