"""The IR: construction, printout, verifier."""
from __future__ import annotations

import pytest

import ember
from ember._core.primitive import AbstractValue
from ember.jit.ir import Graph, IRError, Value
from ember.ops.elementwise import ADD, MULTIPLY

F32 = ember.float32


def _graph():
    graph = Graph("f")
    x = graph.add_input(AbstractValue((4, 8), F32))
    y = graph.add_input(AbstractValue((8,), F32))
    (product,) = graph.add_node(MULTIPLY, (x, y), {}).outputs
    (total,) = graph.add_node(ADD, (product, 1.0), {}).outputs
    graph.outputs = [total]
    return graph


def test_printout():
    assert str(_graph()) == (
        "graph f(%0: float32[4, 8], %1: float32[8]):\n"
        "  %2 = multiply(%0, %1) : float32[4, 8]\n"
        "  %3 = add(%2, 1.0) : float32[4, 8]\n"
        "  return %3")


def test_verify_accepts_a_good_graph():
    _graph().verify()


def test_verify_rejects_use_before_definition():
    graph = _graph()
    graph.nodes.reverse()
    with pytest.raises(IRError, match="before it is defined"):
        graph.verify()


def test_verify_rejects_wrong_avals():
    graph = _graph()
    graph.nodes[0].outputs[0].aval = AbstractValue((4,), F32)
    with pytest.raises(IRError, match="infer gives"):
        graph.verify()


def test_verify_rejects_undefined_output():
    graph = _graph()
    graph.outputs = [Value(99, AbstractValue((1,), F32))]
    with pytest.raises(IRError, match="never defined"):
        graph.verify()
