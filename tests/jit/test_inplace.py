"""In-place planning for fused kernels (ember.jit.passes.inplace) on hand-built graphs."""
from __future__ import annotations

import numpy as np

import ember
from ember._core.primitive import AbstractValue
from ember.jit.execute import Executable
from ember.jit.ir import Graph
from ember.jit.passes.fusion import fuse
from ember.jit.passes.inplace import plan_buffer_reuse, plan_state_updates
from ember.ops.elementwise import EXP, MULTIPLY, SUBTRACT
from ember.ops.movement import RESHAPE

F32 = ember.float32


def _node(graph, prim, *inputs, **params):
    return graph.add_node(prim, inputs, params).outputs[0]


def _sgd_graph(read_old_later: bool):
    """p_new = p - 0.1 * (g * 2): the new value of captured p is the last output."""
    param = ember.asarray(np.arange(6, dtype=np.float32))
    graph = Graph("f")
    g = graph.add_input(AbstractValue((6,), F32))
    p = graph.add_capture(param)
    step = _node(graph, MULTIPLY, _node(graph, MULTIPLY, g, 2.0), 0.1)
    new = _node(graph, SUBTRACT, p, step)
    graph.outputs = [new]
    if read_old_later:
        graph.outputs = [_node(graph, EXP, p), new]  # exp reads the old p after the update
    return fuse(graph), param


def test_a_state_update_is_computed_into_the_tensors_storage():
    graph, param = _sgd_graph(read_old_later=False)
    assert plan_state_updates(graph, [param]) == 1
    fused = graph.nodes[0]
    assert fused.prim.name == "fused{multiply,multiply,subtract}"
    assert fused.prim.inplace == {0: 1}  # output 0 goes into operand 1 (the capture)
    storage = param._data
    (new,) = Executable(graph)(np.ones(6, np.float32))
    expected = np.arange(6, dtype=np.float32) - np.float32(0.1) * np.float32(2.0)
    np.testing.assert_allclose(storage, expected, rtol=1e-6)  # written where it lives
    assert np.shares_memory(new, storage) and param._data is storage


def test_no_state_update_in_place_when_the_old_value_is_read_afterwards():
    graph, param = _sgd_graph(read_old_later=True)
    assert plan_state_updates(graph, [param]) == 0
    before = param._data.copy()
    Executable(graph)(np.ones(6, np.float32))
    np.testing.assert_array_equal(param._data, before)


def _softmax_like(view_of_a: bool):
    """a = exp(x * 2) and its row sums s (one kernel, closed by the sum); b = (a - s) * 3 is
    a second kernel and the last reader of a."""
    from ember.ops.reduce import SUM

    graph = Graph("f")
    x = graph.add_input(AbstractValue((4, 5), F32))
    a = _node(graph, EXP, _node(graph, MULTIPLY, x, 2.0))
    s = _node(graph, SUM, a, axes=(1,), keepdims=True)
    view = _node(graph, RESHAPE, a, shape=(20,)) if view_of_a else None
    b = _node(graph, MULTIPLY, _node(graph, SUBTRACT, a, s), 3.0)
    graph.outputs = [b] if view is None else [view, b]
    return fuse(graph)


def _reference(x):
    a = np.exp(x * np.float32(2))
    return a, np.float32(3) * (a - a.sum(axis=1, keepdims=True))


def test_a_dying_fused_intermediate_becomes_the_next_kernels_output():
    graph = _softmax_like(view_of_a=False)
    assert [node.prim.name for node in graph.nodes] == [
        "fused{multiply,exp,sum}", "fused{subtract,multiply}"]
    assert plan_buffer_reuse(graph) == 1
    assert graph.nodes[1].prim.inplace == {0: 0}  # b is written over a
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    np.testing.assert_allclose(Executable(graph)(x)[0], _reference(x)[1], rtol=1e-5)


def test_a_view_of_the_intermediate_blocks_reuse():
    graph = _softmax_like(view_of_a=True)  # a reshape (a view of a) is returned: a must
    assert plan_buffer_reuse(graph) == 0   # keep its values
    x = np.random.default_rng(1).standard_normal((4, 5)).astype(np.float32)
    view, b = Executable(graph)(x)
    a, ref = _reference(x)
    np.testing.assert_allclose(view, a.reshape(20), rtol=1e-6)
    np.testing.assert_allclose(b, ref, rtol=1e-5)


def test_persistent_buffers_are_reused_but_never_returned():
    """Intermediates of fused kernels keep one buffer across runs; anything a caller can
    hold (an output, or a view of one) is fresh each run."""
    def f(x):
        a = ember.exp(x * 2.0) + 1.0          # an intermediate (read by a matmul)
        b = (a @ a) * 0.5 - 1.0               # returned
        c = (ember.tanh(x) * 3.0).reshape(-1)  # returned as a view of a kernel's output
        return b, c

    compiled = ember.jit(f)
    rng = np.random.default_rng(3)
    x1, x2 = (ember.asarray(rng.standard_normal((4, 4)).astype(np.float32)) for _ in range(2))
    first = [t.numpy().copy() for t in compiled(x1)]
    held = compiled(x1)
    compiled(x2)  # a later run must not write into arrays handed out before
    for got, ref in zip(held, first):
        np.testing.assert_array_equal(got.numpy(), ref)
    for got, ref in zip(compiled(x2), f(x2)):
        np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=1e-5)
    kernels = [node.prim for node in compiled.lower(x1, fused=True).nodes
               if node.prim.name.startswith("fused{")]
    assert [sorted(prim.persistent) for prim in kernels] == [[0], [], []]
