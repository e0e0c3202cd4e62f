"""Checks derived from the op table: forward vs NumPy, gradients, double backward."""
from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.autograd import gradcheck
from tests.ops.optable import collect_rows, draw_inputs

ROWS = collect_rows()

FORWARD_CASES = [
    pytest.param(spec, shapes, dtype, id=f"{spec.name}-{'x'.join(map(str, shapes)) or 'none'}"
                 f"-{dtype}")
    for spec in ROWS for shapes in spec.shapes for dtype in spec.dtypes
]
GRAD_CASES = [
    pytest.param(spec, shapes, id=f"{spec.name}-{'x'.join(map(str, shapes)) or 'none'}")
    for spec in ROWS for shapes in spec.shapes
    if "float64" in spec.dtypes and spec.grad != ()
]
DOUBLE_CASES = [case for case in GRAD_CASES if case.values[0].double]


def _as_list(value):
    return list(value) if isinstance(value, (tuple, list)) else [value]


def _to_numpy(tensor):
    array = tensor.numpy()
    return array


@pytest.mark.parametrize("spec, shapes, dtype", FORWARD_CASES)
def test_forward_matches_numpy(spec, shapes, dtype):
    arrays = draw_inputs(spec, shapes, dtype)
    expected = _as_list(spec.ref(*[a.copy() for a in arrays]))
    got = _as_list(spec.fn(*[ember.asarray(a.copy()) for a in arrays]))
    assert len(got) == len(expected)
    for out, ref in zip(got, expected):
        ref = np.asarray(ref)
        assert out.shape == ref.shape, f"shape {out.shape} != reference {ref.shape}"
        if spec.check_dtype:
            assert out.dtype == ref.dtype, f"dtype {out.dtype} != reference {ref.dtype}"
        scale = 1e3 if dtype == "float16" else 1.0
        if ref.dtype.kind == "f" and np.dtype(dtype) != np.float64:
            np.testing.assert_allclose(_to_numpy(out), ref, rtol=max(spec.rtol, 1e-5) * 10 *
                                       scale, atol=max(spec.atol, 1e-6) * 10 * scale)
        else:
            np.testing.assert_allclose(_to_numpy(out), ref, rtol=spec.rtol, atol=spec.atol)


def _grad_inputs(spec, shapes):
    arrays = draw_inputs(spec, shapes, "float64", seed=1)
    tensors = [ember.asarray(a) for a in arrays]
    positions = spec.grad if spec.grad is not None else tuple(
        i for i, a in enumerate(arrays) if a.dtype.kind == "f")
    for position in positions:
        tensors[position].requires_grad_(True)
    return tensors, positions


@pytest.mark.parametrize("spec, shapes", GRAD_CASES)
def test_gradient_matches_finite_differences(spec, shapes):
    tensors, positions = _grad_inputs(spec, shapes)
    assert positions, "a row with grad checks needs a floating input"
    assert gradcheck(spec.fn, tensors, atol=spec.grad_atol, rtol=spec.grad_rtol)


@pytest.mark.parametrize("spec, shapes", DOUBLE_CASES)
def test_double_backward_matches_finite_differences(spec, shapes):
    tensors, positions = _grad_inputs(spec, shapes)
    outputs = _as_list(spec.fn(*tensors))
    rng = np.random.default_rng(2)
    cotangents = [ember.asarray(rng.standard_normal(o.shape)) for o in outputs
                  if o.requires_grad]

    def first_derivative(*inputs):
        inputs = [x if not isinstance(x, ember.Tensor) or x.requires_grad or i not in positions
                  else x.detach().requires_grad_(True) for i, x in enumerate(inputs)]
        outs = [o for o in _as_list(spec.fn(*inputs)) if o.requires_grad]
        grads = ember.autograd.grad(outs, [inputs[p] for p in positions], cotangents,
                                    create_graph=True, allow_unused=True)
        return [g for g in grads if g is not None and g.requires_grad]

    if not first_derivative(*tensors):
        # A linear op: its first derivative must not change when the inputs move.
        def detached(shift):
            moved = [ember.asarray(t.numpy() + shift).requires_grad_(True)
                     if i in positions else t for i, t in enumerate(tensors)]
            outs = [o for o in _as_list(spec.fn(*moved)) if o.requires_grad]
            grads = ember.autograd.grad(outs, [moved[p] for p in positions], cotangents,
                                        allow_unused=True)
            return [g.numpy() for g in grads if g is not None]

        for before, after in zip(detached(0.0), detached(0.1)):
            np.testing.assert_allclose(before, after)
        return
    assert gradcheck(first_derivative, tensors, atol=spec.grad_atol * 10,
                     rtol=spec.grad_rtol * 10)
