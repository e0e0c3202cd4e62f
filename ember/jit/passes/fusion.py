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
    _rematerialize(graph, chosen)
    return _rewrite(graph, chosen)


class _Group:
    __slots__ = ("shape", "nodes", "positions", "sealed", "merged", "recomputed")

    def __init__(self, shape):
        self.shape = shape
        self.nodes: list[Node] = []
        self.positions: list[int] = []  # of its own members (not of recomputed ones)
        self.sealed = False
        self.merged = False  # absorbed into another group
        self.recomputed: set[int] = set()  # ids of another group's members it recomputes

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


MAX_RECOMPUTED = 6  # members a rematerialized value may take to recompute
# what a recomputed value may be made of: ops cheaper than an array's write and read back
# (erf and exp are not: recomputing GELU's erf in its backward cost more than it saved)
CHEAP = frozenset({"add", "subtract", "multiply", "negative", "positive", "square", "abs",
                   "sign", "astype", "maximum", "minimum", "where", "equal", "not_equal",
                   "less", "less_equal", "greater", "greater_equal", "logical_and",
                   "logical_or", "logical_not"})


def _rematerialize(graph: Graph, groups: list) -> None:
    """Values a group would write only for later groups to read back (the intermediates a
    forward group keeps for the backward pass, such as GELU's x / sqrt(2)) are recomputed
    there from the first group's operands instead, when those are read there anyway: their
    members join the later group too (a node may then belong to two groups), and one array
    write and read per value is saved for a few arithmetic operations.

    A value qualifies when it is no graph output, every reader outside its group is a member of
    later groups of the same shape, it takes at most MAX_RECOMPUTED members, all CHEAP, to
    compute, and each operand those members read is an operand of the reading group already,
    or a graph input or capture."""
    outputs = output_ids(graph)
    read_by = reader_positions(graph)
    group_at = {position: group for group in groups for position in group.positions}
    for group in groups:
        if group.nodes[-1].prim.name == "sum":
            continue
        inside = set(group.positions)
        for node, position in zip(group.nodes, group.positions):
            for value in node.outputs:
                outside = [p for p in read_by.get(value.id, ()) if p not in inside]
                if not outside or value.id in outputs:
                    continue
                readers = {id(group_at.get(p)): group_at.get(p) for p in outside}
                if None in readers.values() or any(
                        reader.shape != group.shape or reader.positions[0] < position
                        for reader in readers.values()):
                    continue
                chain = _members_computing(group, value)
                if len(chain) > MAX_RECOMPUTED or any(member.prim.name not in CHEAP
                                                      for member in chain):
                    continue
                for reader in readers.values():
                    if _recomputable(chain, reader):
                        ids = {id(member) for member in chain}
                        reader.nodes = chain + [member for member in reader.nodes
                                                if id(member) not in ids]
                        reader.recomputed |= ids


def _members_computing(group, value) -> list:
    """The members of `group` that `value` depends on, in group order."""
    produced = {item.id: member for member in group.nodes for item in member.outputs}
    needed, pending = set(), [value]
    while pending:
        member = produced.get(pending.pop().id)
        if member is not None and id(member) not in needed:
            needed.add(id(member))
            pending.extend(item for item in member.inputs if isinstance(item, Value))
    return [member for member in group.nodes if id(member) in needed]


def _recomputable(chain, reader) -> bool:
    """Every array `chain` reads from outside itself is one `reader` reads anyway (or a graph
    input or capture, alive throughout): recomputing it there extends no array's life."""
    made = {item.id for member in chain for item in member.outputs}
    already = {item.id for member in reader.nodes if id(member) not in reader.recomputed
               for item in member.inputs if isinstance(item, Value)}
    for member in chain:
        for item in member.inputs:
            if isinstance(item, Value) and item.id not in made and item.id not in already \
                    and getattr(item, "producer", None) is not None:
                return False
    return True


def _rewrite(graph: Graph, groups: list) -> Graph:
    outputs = output_ids(graph)
    read_by = reader_positions(graph)
    members: set[int] = set()
    fused_at: dict[int, Node] = {}
    # the groups each member node computes in (more than one for a recomputed value)
    computed_in: dict[int, list] = {}
    for group in groups:
        for node in group.nodes:
            computed_in.setdefault(id(node), []).append(group)
    group_at = {position: group for group in groups for position in group.positions}
    for group in groups:
        inside_positions = set(group.positions)
        members |= inside_positions
        inside = {value.id for node in group.nodes for value in node.outputs}

        def needed_outside(node, value):
            # a reader needs the array unless it is a member of a group that also computes
            # this node (this one, or one it was recomputed in)
            return any(group_at.get(p) not in computed_in[id(node)]
                       for p in read_by.get(value.id, ()))

        exposed = [value for node in group.nodes if id(node) not in group.recomputed
                   for value in node.outputs
                   if value.id in outputs or needed_outside(node, value)]
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
