"""Elementwise fusion: chains and trees of elementwise nodes become one `fused` node.

A group holds nodes of one output shape (the iteration space); their operands may be any
values that broadcast into it, or scalar constants. A `sum` of a group value may close the
group (the softmax/layernorm shape: elementwise work, then a reduction). The fused node
computes every member in one pass over memory and returns only the values used outside the
group (by other nodes or as graph outputs); the rest never become arrays.

A group grows only while nothing outside it has read its values yet, and the fused node is
placed where its last member was: every operand of every member exists there, and every
outside reader comes later, so the schedule stays valid without reordering.

>>> import ember
>>> from ember._core.primitive import AbstractValue
>>> from ember.jit.ir import Graph
>>> from ember.ops.elementwise import ADD, EXP, MULTIPLY
>>> g = Graph("f")
>>> x = g.add_input(AbstractValue((4, 8), ember.float32))
>>> b = g.add_input(AbstractValue((8,), ember.float32))
>>> (t,) = g.add_node(MULTIPLY, (x, 2.0), {}).outputs
>>> (u,) = g.add_node(ADD, (t, b), {}).outputs
>>> (y,) = g.add_node(EXP, (u,), {}).outputs
>>> g.outputs = [y]
>>> print(fuse(g))
graph f(%0: float32[4, 8], %1: float32[8]):
  %4 = fused{multiply,add,exp}(%0, %1) : float32[4, 8]
  return %4
"""
from __future__ import annotations

import numpy as np

from ember._core.device import CPU
from ember.jit.ir import Graph, Node, Value
from ember.jit.kernels import ELEMENTWISE, FusedElementwise, Region, fusible_dtype, fusible_node
from ember.jit.passes._rewrite import output_ids, reader_positions, rebuild

MIN_GROUP = 2  # a lone node gains nothing from a kernel of its own


def fuse(graph: Graph, min_group: int = MIN_GROUP, keep=frozenset()) -> Graph:
    """A copy of `graph` with each group of at least `min_group` fusible nodes as one node;
    a smaller group computing one of the value ids in `keep` is fused too (a lone state
    update, `param - lr * grad` with lr 1, is then a kernel writing into its storage)."""
    groups: list[_Group] = []
    group_of: dict[int, _Group] = {}  # value id -> the group computing it
    for position, node in enumerate(graph.nodes):
        readers = {group_of[operand.id] for operand in node.inputs
                   if isinstance(operand, Value) and operand.id in group_of}
        target = _target(node, readers)
        if isinstance(target, list):  # open groups of this shape: merged into the first
            first = target[0]
            for other in target[1:]:
                first.absorb(other)
                for member in other.nodes:
                    for value in member.outputs:
                        group_of[value.id] = first
            target = first
        for group in readers:
            if group is not target and not group.merged:
                group.sealed = True  # an outside reader: the group may not grow any more
        if target is None:
            if not _elementwise(node):
                continue
            target = _Group(tuple(node.outputs[0].aval.shape))
            groups.append(target)
        target.add(node, position)
        if node.prim.name == "sum":
            target.sealed = True  # the reduction closes the group
        for value in node.outputs:
            group_of[value.id] = target
    chosen = [group for group in groups if not group.merged
              and (len(group.nodes) >= min_group
                   or any(value.id in keep for node in group.nodes for value in node.outputs))]
    if not chosen:
        return graph
    return _rewrite(graph, chosen)


class _Group:
    __slots__ = ("shape", "nodes", "positions", "sealed", "merged")

    def __init__(self, shape):
        self.shape = shape
        self.nodes: list[Node] = []
        self.positions: list[int] = []
        self.sealed = False
        self.merged = False  # absorbed into another group

    def add(self, node: Node, position: int):
        self.nodes.append(node)
        self.positions.append(position)

    def absorb(self, other: "_Group"):
        """Take `other`'s members (both open: nothing outside has read either yet, so one
        kernel at the later position computes both)."""
        pairs = sorted(zip(self.positions + other.positions, self.nodes + other.nodes),
                       key=lambda pair: pair[0])
        self.positions = [position for position, _ in pairs]
        self.nodes = [node for _, node in pairs]
        other.merged = True


def _elementwise(node: Node) -> bool:
    if node.prim.name not in ELEMENTWISE or node.residuals or node.params.keys() - {"dtype"}:
        return False
    values = [operand for operand in node.inputs if isinstance(operand, Value)]
    if not values or any(not _supported(value) for value in values + list(node.outputs)):
        return False
    if not fusible_node(node.prim.name, [value.aval.dtype.np for value in values]):
        return False
    return all(isinstance(operand, Value) or _scalar(operand)
               or (isinstance(operand, np.dtype) and node.prim.name == "astype")
               for operand in node.inputs)


def _supported(value: Value) -> bool:
    return value.aval.device is CPU and fusible_dtype(value.aval.dtype)


def _scalar(operand) -> bool:
    if isinstance(operand, np.ndarray):
        return operand.ndim == 0 and fusible_dtype(operand.dtype)
    return isinstance(operand, (bool, int, float, np.bool_, np.integer, np.floating))


def _target(node: Node, readers: set):
    """What `node` joins: a list of the open groups it reads of its own shape (elementwise
    nodes; merged when several), the group a closing `sum` reads, or None."""
    open_groups = [group for group in readers if not group.sealed and not group.merged]
    if not open_groups:
        return None
    if _elementwise(node):
        shape = tuple(node.outputs[0].aval.shape)
        same = [group for group in open_groups if group.shape == shape]
        return sorted(same, key=lambda group: group.positions[0]) or None
    if (node.prim.name == "sum" and len(open_groups) == 1 and isinstance(node.inputs[0], Value)
            and _supported(node.inputs[0]) and node.inputs[0].aval.dtype.kind == "f"
            and open_groups[0].shape == tuple(node.inputs[0].aval.shape)):
        return open_groups[0]
    return None


def _rewrite(graph: Graph, groups: list) -> Graph:
    outputs = output_ids(graph)
    read_by = reader_positions(graph)
    members: set[int] = set()
    fused_at: dict[int, Node] = {}
    for group in groups:
        inside_positions = set(group.positions)
        members |= inside_positions
        inside = {value.id for node in group.nodes for value in node.outputs}
        exposed = [value for node in group.nodes for value in node.outputs
                   if value.id in outputs
                   or set(read_by.get(value.id, ())) - inside_positions]
        operands: list = []
        seen: set[int] = set()
        for node in group.nodes:
            for operand in node.inputs:
                if isinstance(operand, Value) and operand.id not in inside and \
                        operand.id not in seen:
                    seen.add(operand.id)
                    operands.append(operand)
        prim = FusedElementwise(Region(group.nodes, operands, exposed))
        fused_at[group.positions[-1]] = Node(prim, tuple(operands), {}, tuple(exposed), True)
    nodes = [fused_at[position] if position in fused_at else node
             for position, node in enumerate(graph.nodes)
             if position in fused_at or position not in members]
    new = rebuild(graph, nodes, {})
    for node in new.nodes:
        for value in node.outputs:
            value.producer = node
    return new
