"""The IR: a typed SSA graph of primitive applications.

One IR serves the compiler, the symbolic API, export and drawing (DESIGN.md section 2).
A `Graph` has input `Value`s, captured values (Tensors that existed outside the traced
function, e.g. parameters, read live at run time so in-place updates are seen), a list of
`Node`s in execution order and output Values. Every Value is defined exactly once, by an
input, a capture or one node, and carries its `AbstractValue` (shape, dtype, device).
Node inputs are Values or constants (Python scalars, None) passed to the primitive as is.
"""
from __future__ import annotations

import itertools

import numpy as np

from ember._core.errors import EmberError
from ember._core.primitive import AbstractValue, Primitive, abstract


class IRError(EmberError):
    """A graph breaks an IR invariant (found by `Graph.verify`)."""


class Value:
    """One SSA value: `id` (printed `%id`), its abstract value, and the node defining it."""

    __slots__ = ("id", "aval", "producer")

    def __init__(self, id: int, aval: AbstractValue, producer=None):
        self.id = id
        self.aval = aval
        self.producer = producer

    def __repr__(self):
        return f"%{self.id}"


class Node:
    """One primitive application: `outputs = prim(*inputs, **params)`.

    `multiple` is True when the primitive returns a tuple (even of one value). The last
    `residuals` outputs (0 unless the node's backward was traced too) are the arrays the
    forward saves for its vjp (`WithResiduals`), typed by `prim.residual_avals`."""

    __slots__ = ("prim", "inputs", "params", "outputs", "multiple", "residuals")

    def __init__(self, prim: Primitive, inputs: tuple, params: dict, outputs: tuple,
                 multiple: bool = False, residuals: int = 0):
        self.prim = prim
        self.inputs = inputs
        self.params = params
        self.outputs = outputs
        self.multiple = multiple
        self.residuals = residuals

    def copy(self, inputs=None, params=None) -> "Node":
        """The same application on other operands (the outputs are shared, not copied)."""
        return Node(self.prim, self.inputs if inputs is None else tuple(inputs),
                    dict(self.params if params is None else params), self.outputs,
                    self.multiple, self.residuals)

    def __repr__(self):
        return _node_text(self)


class Graph:
    """A typed SSA graph.

    >>> import ember
    >>> from ember.ops.elementwise import ADD
    >>> from ember._core.primitive import AbstractValue
    >>> g = Graph("f")
    >>> x = g.add_input(AbstractValue((4, 8), ember.float32))
    >>> (y,) = g.add_node(ADD, (x, 1.0), {}).outputs
    >>> g.outputs = [y]
    >>> g.verify()
    >>> print(g)
    graph f(%0: float32[4, 8]):
      %1 = add(%0, 1.0) : float32[4, 8]
      return %1
    """

    def __init__(self, name: str = "graph"):
        self.name = name
        self.inputs: list[Value] = []
        self.captures: list[tuple[Value, object]] = []  # (value, Tensor read at run time)
        self.nodes: list[Node] = []
        self.outputs: list[Value] = []
        self._ids = itertools.count()

    def new_value(self, aval: AbstractValue, producer=None) -> Value:
        return Value(next(self._ids), aval, producer)

    def add_input(self, aval: AbstractValue) -> Value:
        value = self.new_value(aval)
        self.inputs.append(value)
        return value

    def add_capture(self, tensor) -> Value:
        value = self.new_value(abstract(tensor))
        self.captures.append((value, tensor))
        return value

    def add_node(self, prim: Primitive, inputs, params: dict, avals=None,
                 residuals: bool = False) -> Node:
        """Append `prim(*inputs, **params)`; output avals come from `prim.infer` unless given.
        With `residuals`, the arrays the forward saves for its vjp are outputs too."""
        inputs = tuple(inputs)
        if avals is None:
            out = infer_raw(prim, inputs, params)
            multiple = isinstance(out, (tuple, list))
            avals = tuple(out) if multiple else (out,)
        else:
            avals = tuple(avals)
            multiple = len(avals) != 1
        saved = tuple(_residual_avals(prim, inputs, params)) if residuals else ()
        node = Node(prim, inputs, dict(params), (), multiple, len(saved))
        avals = avals + saved
        node.outputs = tuple(self.new_value(aval, node) for aval in avals)
        self.nodes.append(node)
        return node

    def verify(self) -> None:
        """Check the invariants: each value defined once before use, avals match `infer`."""
        defined: set[int] = set()

        def define(value, where):
            if not isinstance(value, Value):
                raise IRError(f"{self.name}: {where} defines {value!r}, which is not a Value")
            if value.id in defined:
                raise IRError(f"{self.name}: {value!r} is defined twice ({where})")
            defined.add(value.id)

        for value in self.inputs:
            define(value, "an input")
        for value, _ in self.captures:
            define(value, "a capture")
        for position, node in enumerate(self.nodes):
            for operand in node.inputs:
                if isinstance(operand, Value) and operand.id not in defined:
                    raise IRError(f"{self.name}: node {position} ({node.prim.name}) uses "
                                  f"{operand!r} before it is defined")
            expected = _infer(node.prim, node.inputs, node.params)
            if node.residuals:
                expected += tuple(_residual_avals(node.prim, node.inputs, node.params))
            got = [value.aval for value in node.outputs]
            if list(expected) != got:
                raise IRError(f"{self.name}: node {position} ({node.prim.name}) has outputs "
                              f"{got} but infer gives {list(expected)}")
            for value in node.outputs:
                define(value, f"node {position} ({node.prim.name})")
        for value in self.outputs:
            if not isinstance(value, Value) or value.id not in defined:
                raise IRError(f"{self.name}: output {value!r} is never defined")

    def print(self) -> None:
        """Print the readable form (see `str(graph)`)."""
        print(str(self))

    def __str__(self):
        args = ", ".join(f"{value!r}: {value.aval!r}" for value in self.inputs)
        lines = [f"graph {self.name}({args}):"]
        for value, _ in self.captures:
            lines.append(f"  {value!r} = capture : {value.aval!r}")
        lines.extend("  " + _node_text(node) for node in self.nodes)
        lines.append("  return " + ", ".join(repr(value) for value in self.outputs))
        return "\n".join(lines)

    def __repr__(self):
        return f"<Graph {self.name}: {len(self.inputs)} inputs, {len(self.nodes)} nodes>"


def infer_raw(prim: Primitive, inputs: tuple, params: dict):
    """What `prim.infer` returns for graph operands (Values or constants)."""
    avals = [operand.aval if isinstance(operand, Value)
             else abstract(operand) if isinstance(operand, np.ndarray) else operand
             for operand in inputs]
    return prim.infer(*avals, **params)


def _residual_avals(prim: Primitive, inputs: tuple, params: dict):
    avals = [operand.aval if isinstance(operand, Value)
             else abstract(operand) if isinstance(operand, np.ndarray) else operand
             for operand in inputs]
    return prim.residual_avals(*avals, **params)


def _infer(prim: Primitive, inputs: tuple, params: dict) -> tuple:
    out = infer_raw(prim, inputs, params)
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def _node_text(node: Node) -> str:
    operands = [repr(operand) for operand in node.inputs]
    operands += [f"{key}={_param_text(value)}" for key, value in node.params.items()]
    results = ", ".join(repr(value) for value in node.outputs)
    types = ", ".join(repr(value.aval) for value in node.outputs)
    saved = f" (last {node.residuals} saved for backward)" if node.residuals else ""
    return f"{results} = {node.prim.name}({', '.join(operands)}) : {types}{saved}"


def _param_text(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
