"""The elementwise fusion pass (before/after IR on hand-built graphs) and its Numba kernels
(every template against eager NumPy, broadcasting, reductions, the on-disk cache)."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import ember
from ember._core.primitive import AbstractValue
from ember.jit import jit
from ember.jit.execute import Executable
from ember.jit.ir import Graph
from ember.jit.passes.fusion import fuse
from ember.ops.elementwise import ADD, EXP, MULTIPLY
from ember.ops.linalg import MATMUL
from ember.ops.reduce import SUM
from ember.ops.special import erf

F32 = ember.float32


def _graph(*shapes, dtype=F32):
    graph = Graph("f")
    return graph, [graph.add_input(AbstractValue(shape, dtype)) for shape in shapes]


def _node(graph, prim, *inputs, **params):
    return graph.add_node(prim, inputs, params).outputs[0]


def _run(graph, *arrays):
    return Executable(graph)(*arrays)


def test_a_chain_with_a_broadcast_operand_becomes_one_kernel():
    graph, (x, b) = _graph((4, 8), (8,))
    t = _node(graph, MULTIPLY, x, 2.0)
    u = _node(graph, ADD, t, b)
    graph.outputs = [_node(graph, EXP, u)]
    after = fuse(graph)
    after.verify()
    assert str(after) == ("graph f(%0: float32[4, 8], %1: float32[8]):\n"
                          "  %4 = fused{multiply,add,exp}(%0, %1) : float32[4, 8]\n"
                          "  return %4")
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((4, 8)).astype(np.float32),
              rng.standard_normal(8).astype(np.float32)]
    np.testing.assert_allclose(_run(after, *arrays)[0], _run(graph, *arrays)[0], rtol=1e-6)


def test_values_read_outside_the_group_are_outputs_and_the_reader_seals_it():
    graph, (x, w) = _graph((3, 5), (5, 2))
    a = _node(graph, EXP, x)
    b = _node(graph, MULTIPLY, a, 3.0)
    m = _node(graph, MATMUL, b, w)            # an outside reader of b: the group closes
    c = _node(graph, ADD, b, 1.0)             # so this starts a group of its own (alone)
    graph.outputs = [m, c, a]                 # a is a graph output: exposed too
    after = fuse(graph)
    after.verify()
    assert [node.prim.name for node in after.nodes] == ["fused{exp,multiply}", "matmul", "add"]
    assert [value.id for value in after.nodes[0].outputs] == [a.id, b.id]
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal((3, 5)).astype(np.float32),
              rng.standard_normal((5, 2)).astype(np.float32)]
    for got, ref in zip(_run(after, *arrays), _run(graph, *arrays)):
        np.testing.assert_allclose(got, ref, rtol=1e-6)


def test_open_groups_of_one_shape_merge_and_a_sum_closes_the_group():
    graph, (x, y) = _graph((6, 4), (6, 4))
    a = _node(graph, MULTIPLY, x, 0.9)        # two independent starts ...
    b = _node(graph, MULTIPLY, y, 0.1)
    c = _node(graph, ADD, a, b)               # ... joined here: one group
    s = _node(graph, SUM, c, axes=(1,), keepdims=True)
    graph.outputs = [c, s]
    after = fuse(graph)
    after.verify()
    assert str(after) == ("graph f(%0: float32[6, 4], %1: float32[6, 4]):\n"
                          "  %4, %5 = fused{multiply,multiply,add,sum}(%0, %1) : "
                          "float32[6, 4], float32[6, 1]\n"
                          "  return %4, %5")
    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal((6, 4)).astype(np.float32) for _ in range(2)]
    for got, ref in zip(_run(after, *arrays), _run(graph, *arrays)):
        np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("axes, keepdims", [((0,), False), ((1,), True), ((0, 2), False),
                                            ((2,), False), ((0, 1, 2), False)])
def test_reductions_over_any_axes(axes, keepdims):
    graph, (x, b) = _graph((5, 6, 7), (7,), dtype=ember.float64)
    t = _node(graph, MULTIPLY, x, b)
    graph.outputs = [_node(graph, SUM, _node(graph, EXP, t), axes=axes,
                           keepdims=keepdims)]
    after = fuse(graph)
    assert len(after.nodes) == 1
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal((5, 6, 7)), rng.standard_normal(7)]
    np.testing.assert_allclose(_run(after, *arrays)[0], _run(graph, *arrays)[0], rtol=1e-12)
    # a reduced innermost axis accumulates in a local (vectorizable), not in the output
    source = after.nodes[0].prim._plan.source
    assert ("acc += " in source) == (2 in axes)
    assert ("'reassoc'" in source) == (2 in axes)


def test_unsupported_dtypes_and_lone_nodes_stay_as_they_are():
    graph, (x,) = _graph((4,), dtype=ember.float16)
    graph.outputs = [_node(graph, EXP, _node(graph, MULTIPLY, x, 2.0))]
    assert str(fuse(graph)) == str(graph)  # float16: NumPy computes it
    graph, (x,) = _graph((4,))
    graph.outputs = [_node(graph, EXP, x)]
    assert str(fuse(graph)) == str(graph)  # one node: nothing to gain


def test_a_relu_mask_and_its_where_fuse_with_both_outputs_kept():
    def relu_and_mask(x):
        m = x <= 0
        return ember.where(m, 0.0, x), m

    compiled = jit(relu_and_mask)
    data = ember.asarray(np.linspace(-2, 2, 24, dtype=np.float32).reshape(8, 3))
    fused = compiled.lower(data, fused=True)
    assert [node.prim.name for node in fused.nodes] == ["fused{less_equal,where}"]
    got = compiled(data)
    ref = relu_and_mask(data)
    for a, b in zip(got, ref):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


_UNARY = ["exp", "expm1", "log", "log1p", "log2", "log10", "sqrt", "sin", "cos", "tan",
          "tanh", "sinh", "cosh", "floor", "ceil", "trunc", "sign", "abs", "negative",
          "positive", "square", "isnan", "isinf", "isfinite", "logical_not"]
_BINARY = ["add", "subtract", "multiply", "divide", "pow", "maximum", "minimum", "equal",
           "not_equal", "less", "less_equal", "greater", "greater_equal", "logical_and",
           "logical_or"]


def _inputs(dtype, shape=(7, 9), seed=0, positive=False):
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(shape) * 2
    if positive:
        values = np.abs(values) + 0.1
    values.flat[:4] = [0.0, np.nan, np.inf, -np.inf] if dtype.startswith("float") else 0
    return ember.asarray(values.astype(dtype))


def _compare(function, *args):
    compiled = jit(function)
    names = [node.prim.name for node in compiled.lower(*args, fused=True).nodes]
    assert sum(name.startswith("fused{") for name in names) == 1, names
    got, ref = compiled(*args), function(*args)
    assert got.dtype == ref.dtype and got.shape == ref.shape
    np.testing.assert_allclose(got.numpy().astype(np.float64), ref.numpy().astype(np.float64),
                               rtol=2e-6, atol=1e-6, equal_nan=True)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", _UNARY)
def test_every_unary_template_matches_numpy(name, dtype):
    op = getattr(ember, name)
    positive = name in ("log", "log1p", "log2", "log10", "sqrt")
    x = _inputs(dtype, positive=positive)
    if name in ("isnan", "isinf", "isfinite", "logical_not"):
        _compare(lambda x: ember.logical_and(op(x * 2.0), x < 1.0), x)
    else:
        _compare(lambda x: op(x * 2.0) + 1.0, x)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name, dtype", [
    (name, dtype) for name in _BINARY for dtype in ("float32", "float64", "int64", "int32")
    if name != "pow" or dtype.startswith("float")])  # integer powers are left to NumPy
def test_every_binary_template_matches_numpy(name, dtype):
    op = getattr(ember, name)
    x, y = _inputs(dtype, seed=1), _inputs(dtype, shape=(9,), seed=2)  # y broadcasts
    if name in ("logical_and", "logical_or"):
        _compare(lambda x, y: op(x > 0, y < 0.5 if dtype.startswith("float") else y < 1), x, y)
    elif name in ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal"):
        _compare(lambda x, y: ember.logical_or(op(x, y), x == 3), x, y)
    elif name == "divide" and not dtype.startswith("float"):
        _compare(lambda x, y: op(x + 100, y) * 2.0, x, y)
    elif name == "pow":
        _compare(lambda x, y: op(ember.abs(x) + 0.5, y) - 1.0, x, y)
    else:
        _compare(lambda x, y: op(x, y) * 3, x, y)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_where_sigmoid_erf_and_casts_match_numpy(dtype):
    x = _inputs(dtype, seed=4)
    _compare(lambda x: ember.where(x > 0, ember.nn.functional.sigmoid(x), erf(x) * 0.5), x)
    _compare(lambda x: ember.astype(x > 0.5, x.dtype) * x, x)
    _compare(lambda x: ember.astype(x * 100.0, ember.int32) + 1, x)


def test_a_second_process_loads_the_kernels_from_the_disk_cache(tmp_path):
    """Compile count, measured: the first process compiles, the second only loads."""
    code = (
        "import numpy as np, ember\n"
        "from ember.jit.kernels import COMPILE_STATS\n"
        "f = ember.jit(lambda x, b: ember.exp(x * 0.5 + b) - 1.0)\n"
        "f(ember.ones((64, 32)), ember.ones(32))\n"
        "print(COMPILE_STATS.compiled, COMPILE_STATS.loaded, COMPILE_STATS.sources)\n")
    env = dict(os.environ, EMBER_CACHE_DIR=str(tmp_path))
    counts = []
    for _ in range(2):
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        counts.append(tuple(int(n) for n in result.stdout.split()))
    print(f"first process: {counts[0]}, second: {counts[1]} (compiled, loaded, sources)")
    assert counts[0][0] >= 1 and counts[0][1] == 0
    assert counts[1][0] == 0 and counts[1][1] == counts[0][0]


def test_a_cheap_intermediate_read_by_a_later_group_is_recomputed_there():
    """GELU's shape: the forward group's x * c and exp(x * c) are read by a later group that
    reads x too (a backward). x * c is recomputed there (no array for it); the exp is not
    (recomputing transcendental functions costs more than the array's write and read)."""
    graph, (x, g, w) = _graph((4, 6), (4, 6), (6, 6))
    scaled = _node(graph, MULTIPLY, x, 0.5)
    e = _node(graph, EXP, scaled)
    y = _node(graph, MULTIPLY, e, x)
    m = _node(graph, MATMUL, y, w)             # ends the forward group
    h = _node(graph, MULTIPLY, g, m)           # the later group, of the same shape
    k = _node(graph, MULTIPLY, h, scaled)
    graph.outputs = [_node(graph, ADD, _node(graph, MULTIPLY, k, e), x)]
    after = fuse(graph)
    after.verify()
    first, _, second = after.nodes
    assert [value.id for value in first.outputs] == [e.id, y.id]  # no array for `scaled`
    assert second.prim.region.names[0] == "multiply" and scaled.id not in {
        value.id for value in second.inputs}
    assert {value.id for value in second.inputs} == {x.id, g.id, m.id, e.id}
    rng = np.random.default_rng(5)
    arrays = [rng.standard_normal(shape).astype(np.float32) for shape in ((4, 6),) * 2 + ((6, 6),)]
    np.testing.assert_allclose(_run(after, *arrays)[0], _run(graph, *arrays)[0], rtol=1e-5,
                               atol=1e-6)


def test_an_intermediate_is_not_recomputed_where_that_would_keep_an_operand_alive():
    # the later group does not read x (an array made in the graph, not an input): recomputing
    # x * 2 there would keep x alive until then
    graph, (a, w) = _graph((4, 6), (6, 6))
    x = _node(graph, MATMUL, a, w)
    doubled = _node(graph, MULTIPLY, x, 2.0)
    y = _node(graph, ADD, doubled, 1.0)
    m = _node(graph, MATMUL, y, w)
    graph.outputs = [_node(graph, ADD, _node(graph, MULTIPLY, m, doubled), 3.0)]
    after = fuse(graph)
    forward, backward = [node for node in after.nodes if node.prim.name.startswith("fused")]
    assert doubled.id in {value.id for value in forward.outputs}
    assert doubled.id in {value.id for value in backward.inputs}
