"""Optimization passes on small hand-built graphs (before/after IR), and on a jitted step."""
from __future__ import annotations

import numpy as np

import ember
import ember.nn.functional as F
from ember._core.primitive import AbstractValue
from ember.jit import jit
from ember.jit.ir import Graph
from ember.jit.passes import cse, dce, fold, run_default, simplify
from ember.ops.elementwise import ADD, EXP, MULTIPLY, NEGATIVE, SUBTRACT
from tests.jit.test_backward import _data, _mlp

F32 = ember.float32


def _graph(n_inputs=1, shape=(3,), dtype=F32):
    graph = Graph("f")
    return graph, [graph.add_input(AbstractValue(shape, dtype)) for _ in range(n_inputs)]


def _node(graph, prim, *inputs):
    return graph.add_node(prim, inputs, {}).outputs[0]


def test_dce_keeps_outputs_and_their_inputs_only():
    graph, (x,) = _graph()
    _node(graph, EXP, x)
    kept = _node(graph, NEGATIVE, x)
    graph.outputs = [_node(graph, ADD, kept, 1.0)]
    after = dce(graph)
    after.verify()
    assert str(after) == ("graph f(%0: float32[3]):\n"
                          "  %2 = negative(%0) : float32[3]\n"
                          "  %3 = add(%2, 1.0) : float32[3]\n"
                          "  return %3")
    assert len(graph.nodes) == 3  # the input graph is unchanged


def test_cse_merges_equal_nodes_but_not_graph_outputs():
    graph, (x, y) = _graph(2)
    a, b = _node(graph, MULTIPLY, x, y), _node(graph, MULTIPLY, x, y)
    c = _node(graph, MULTIPLY, y, x)  # other operand order: not merged
    total = _node(graph, ADD, _node(graph, ADD, a, b), c)
    twin = _node(graph, ADD, x, 2.0)
    graph.outputs = [total, twin, _node(graph, ADD, x, 2.0)]
    after = dce(cse(graph))
    after.verify()
    assert str(after) == ("graph f(%0: float32[3], %1: float32[3]):\n"
                          "  %2 = multiply(%0, %1) : float32[3]\n"
                          "  %4 = multiply(%1, %0) : float32[3]\n"
                          "  %5 = add(%2, %2) : float32[3]\n"
                          "  %6 = add(%5, %4) : float32[3]\n"
                          "  %7 = add(%0, 2.0) : float32[3]\n"
                          "  %8 = add(%0, 2.0) : float32[3]\n"
                          "  return %6, %7, %8")


def test_cse_tells_scalar_types_apart_and_skips_effectful_primitives():
    graph, (x,) = _graph()
    a, b = _node(graph, ADD, x, 1), _node(graph, ADD, x, 1.0)
    graph.outputs = [_node(graph, ADD, a, b)]
    assert len(cse(graph).nodes) == 3
    EXP.effectful = True
    try:
        graph, (x,) = _graph()
        graph.outputs = [_node(graph, ADD, _node(graph, EXP, x), _node(graph, EXP, x))]
        assert len(cse(graph).nodes) == 3
    finally:
        del EXP.effectful


def test_fold_evaluates_constant_chains_once():
    graph, (x,) = _graph(shape=(2,))
    three = _node(graph, MULTIPLY, np.ones(2, np.float32), 3.0)
    four = _node(graph, ADD, three, 1.0)
    graph.outputs = [_node(graph, ADD, x, four)]
    after = dce(fold(graph))
    after.verify()
    assert str(after) == ("graph f(%0: float32[2]):\n"
                          "  %3 = add(%0, array([4., 4.], dtype=float32)) : float32[2]\n"
                          "  return %3")
    assert (np.asarray(run(after, np.ones(2, np.float32))) == 5).all()


def test_fold_skips_large_results_and_graph_outputs():
    graph, _ = _graph()
    big = _node(graph, ADD, np.zeros(10, np.float32), 1.0)
    graph.outputs = [_node(graph, EXP, big)]
    assert len(fold(graph, max_elements=5).nodes) == 2
    assert len(fold(graph).nodes) == 1  # the output node stays
    assert str(fold(graph).nodes[0]).startswith("%2 = exp(array([1., 1.")


def test_simplify_bypasses_identities_keeping_shapes_and_dtypes():
    graph, (x,) = _graph()
    a = _node(graph, MULTIPLY, x, 1.0)
    b = _node(graph, SUBTRACT, a, 0)
    c = _node(graph, NEGATIVE, _node(graph, NEGATIVE, b))
    broadcast = _node(graph, ADD, c, np.zeros((2, 3), np.float32))  # shape changes: kept
    graph.outputs = [_node(graph, EXP, broadcast)]
    after = dce(simplify(graph))
    after.verify()
    assert str(after) == ("graph f(%0: float32[3]):\n"
                          "  %5 = add(%0, array([[0., 0., 0.],\n"
                          "       [0., 0., 0.]], dtype=float32)) : float32[2, 3]\n"
                          "  %6 = exp(%5) : float32[2, 3]\n"
                          "  return %6")


def test_simplify_keeps_promotions():
    graph, (x,) = _graph(dtype=ember.int32)
    graph.outputs = [_node(graph, EXP, _node(graph, MULTIPLY, x, 1.0))]
    assert len(dce(simplify(graph)).nodes) == 2


def run(graph, *arrays):
    from ember.jit.execute import Executable
    return Executable(graph)(*arrays)[0]


def test_default_pipeline_shrinks_the_mlp_training_step_with_equal_results():
    ember.manual_seed(0)
    model = _mlp()
    x, y = _data((8, 6), 4, 0)

    def step(x, y):  # `* 1.0 + 0.0` and the repeated logits are what the passes remove
        logits = model(x)
        loss = F.cross_entropy(logits, y) * 1.0 + 0.0 + (model(x) - logits).sum()
        loss.backward()
        return loss

    plain = jit(step, optimize=False)
    optimized = jit(step)
    before, after = len(plain.lower(x, y).nodes), len(optimized.lower(x, y).nodes)
    print(f"MLP training step: {before} nodes traced, {after} after run_default")
    assert after < before
    # only the parameters are captures; scalars the ops made while tracing are constants
    params = {id(p) for p in model.parameters()}
    assert {id(tensor) for _, tensor in plain.lower(x, y).captures} == params
    assert len(run_default(plain.lower(x, y)).nodes) == after
    results = []
    for compiled in (plain, optimized):
        model.zero_grad()
        loss = compiled(x, y).numpy()
        results.append([loss] + [p.grad.numpy().copy() for p in model.parameters()])
    for got, ref in zip(*results):
        np.testing.assert_array_equal(got, ref)


def test_tensors_created_while_tracing_are_constants_that_fold():
    outside = ember.full((3,), 5.0)

    def f(x):
        scale = ember.full((3,), 2.0) * ember.ones(3)  # made by the trace: folded
        return x * scale + outside  # a closure tensor: still a capture, read live

    compiled = jit(f)
    graph = compiled.lower(ember.ones(3))
    assert [tensor for _, tensor in graph.captures] == [outside]
    assert [node.prim.name for node in graph.nodes] == ["multiply", "add"]
    outside[...] = 1.0
    np.testing.assert_array_equal(compiled(ember.ones(3)).numpy(), np.full(3, 3.0))
