"""Transposes folded into GEMM calls (ember.jit.passes.layout) on hand-built graphs."""
from __future__ import annotations

import numpy as np
import pytest

import ember
from ember._core.primitive import AbstractValue
from ember.jit.execute import Executable
from ember.jit.ir import Graph
from ember.jit.passes.layout import fold_transposes
from ember.ops.elementwise import EXP
from ember.ops.linalg import MATMUL
from ember.ops.movement import PERMUTE_DIMS


def _graph(shape_a, axes_a, shape_b, axes_b, keep_transpose=False):
    graph = Graph("f")
    a = graph.add_input(AbstractValue(shape_a, ember.float64))
    b = graph.add_input(AbstractValue(shape_b, ember.float64))
    left = graph.add_node(PERMUTE_DIMS, (a,), {"axes": axes_a}).outputs[0] if axes_a else a
    right = graph.add_node(PERMUTE_DIMS, (b,), {"axes": axes_b}).outputs[0] if axes_b else b
    (y,) = graph.add_node(MATMUL, (left, right), {}).outputs
    graph.outputs = [y]
    if keep_transpose:  # the transposed value is needed elsewhere too
        graph.outputs.append(graph.add_node(EXP, (left,), {}).outputs[0])
    return graph


@pytest.mark.parametrize("shape_a, axes_a, shape_b, axes_b, flags", [
    ((8, 3), (1, 0), (8, 4), None, (True, False)),            # the weight gradient's shape
    ((3, 8), None, (4, 8), (1, 0), (False, True)),
    ((8, 3), (1, 0), (4, 8), (1, 0), (True, True)),
    ((2, 5, 3), (0, 2, 1), (2, 5, 4), None, (True, False)),   # batched
])
def test_swaps_of_the_last_two_axes_become_gemm_flags(shape_a, axes_a, shape_b, axes_b, flags):
    graph = _graph(shape_a, axes_a, shape_b, axes_b)
    after = fold_transposes(graph)
    after.verify()
    assert [node.prim.name for node in after.nodes] == ["matmul_t"]
    assert (after.nodes[0].params["transpose_a"], after.nodes[0].params["transpose_b"]) == flags
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(shape_a), rng.standard_normal(shape_b)]
    np.testing.assert_allclose(Executable(after)(*arrays)[0], Executable(graph)(*arrays)[0],
                               rtol=1e-12)


def test_other_permutations_and_shared_transposes():
    graph = _graph((3, 2, 4), (1, 0, 2), (4, 5), None)  # not a last-axes swap: kept
    assert str(fold_transposes(graph)) == str(graph)
    graph = _graph((8, 3), (1, 0), (8, 4), None, keep_transpose=True)
    after = fold_transposes(graph)  # folded, but the transpose stays for its other reader
    assert [node.prim.name for node in after.nodes] == ["permute_dims", "matmul_t", "exp"]


def test_the_mlp_training_step_folds_its_weight_gradient_transposes():
    from tests.jit.test_backward import _data, _mlp, _step_for

    model = _mlp()
    x, y = _data((8, 6), 4, 0)
    compiled = ember.jit(_step_for(model))
    names = [node.prim.name for node in compiled.lower(x, y, fused=True).nodes]
    assert names.count("matmul_t") == 2 and "permute_dims" not in names
    loss = compiled(x, y).numpy()
    model.zero_grad()
    np.testing.assert_allclose(loss, _step_for(model)(x, y).numpy(), rtol=1e-6)
