"""Linear algebra beyond the op table: error messages, decomposition identities, gauge-invariant
gradients, einsum and norms against NumPy, Tensor methods, shape rules under tracing."""
from __future__ import annotations

import os

import ml_dtypes
import numpy as np
import pytest

import ember
from ember import linalg
from ember._core.primitive import abstract, tracing
from ember.autograd import gradcheck

HERE = os.path.basename(__file__)


def _t(array, requires_grad=False):
    out = ember.asarray(np.asarray(array))
    return out.requires_grad_(True) if requires_grad else out


def _random(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# ---- matmul errors and dtypes -----------------------------------------------------------------
@pytest.mark.parametrize("call", [lambda a, b: a @ b, lambda a, b: linalg.matmul(a, b),
                                  lambda a, b: a.matmul(b)])
def test_matmul_mismatch_names_op_both_shapes_and_user_line(call):
    with pytest.raises(ember.ShapeError) as info:
        call(ember.ones((3, 4)), ember.ones((5, 6)))
    message = str(info.value)
    assert "matmul" in message and "(3, 4)" in message and "(5, 6)" in message
    assert HERE in message


@pytest.mark.parametrize("shape1, shape2", [((2, 3, 4), (3, 4, 5)), ((3,), (4,)), ((), (3,)),
                                            ((4,), (3, 5))])
def test_matmul_other_mismatches(shape1, shape2):
    with pytest.raises(ember.ShapeError) as info:
        ember.ones(shape1) @ ember.ones(shape2)
    message = str(info.value)
    assert "matmul" in message and str(shape1) in message and str(shape2) in message
    assert HERE in message


def test_matmul_promotes_dtypes_and_keeps_half_precision():
    out = ember.ones((2, 3), dtype=ember.float32) @ ember.ones((3,), dtype=ember.float64)
    assert out.dtype == ember.float64
    assert (ember.ones((2, 3), dtype=ember.int32) @ ember.ones((3, 2))).dtype == ember.float32
    a = np.arange(6.0).reshape(2, 3)
    half = ember.asarray(a.astype(ml_dtypes.bfloat16)) @ ember.asarray(
        a.T.astype(ml_dtypes.bfloat16))
    assert half.dtype == ember.bfloat16
    np.testing.assert_allclose(half.numpy().astype(np.float32), a @ a.T, rtol=1e-2)


def test_matmul_gradient_shapes_follow_broadcast_batch():
    x1 = _t(_random(2, 1, 3, 4), requires_grad=True)
    x2 = _t(_random(5, 4, 2), requires_grad=True)
    (x1 @ x2).sum().backward()
    assert x1.grad.shape == x1.shape and x2.grad.shape == x2.shape
    np.testing.assert_allclose(x1.grad.numpy(), np.broadcast_to(
        x2.numpy().sum(axis=(0, 2)), (2, 1, 3, 4)), rtol=1e-12)


def test_ndarray_at_tensor_and_methods():
    a, b = _random(3, 4), _random(4, 2)
    np.testing.assert_allclose((a @ _t(b)).numpy(), a @ b)
    np.testing.assert_allclose(_t(a).mm(_t(b)).numpy(), a @ b)
    v, w = _random(4), _random(4, seed=1)
    assert _t(v).dot(_t(w)).item() == pytest.approx(v @ w)
    np.testing.assert_allclose(_t(v).outer(_t(w)).numpy(), np.outer(v, w))
    with pytest.raises(ember.ShapeError, match="mm"):
        _t(v).mm(_t(b))
    with pytest.raises(ember.ShapeError, match="dot"):
        _t(a).dot(_t(v))


def test_tensor_linalg_methods():
    a = _random(3, 3) + 3 * np.eye(3)
    x = _t(a)
    assert x.det().item() == pytest.approx(np.linalg.det(a))
    np.testing.assert_allclose(x.inverse().numpy(), np.linalg.inv(a), rtol=1e-10)
    np.testing.assert_allclose(x.diagonal(1).numpy(), np.diagonal(a, 1))
    cube = _random(2, 3, 4)
    np.testing.assert_allclose(_t(cube).diagonal(0, 1, 2).numpy(), np.diagonal(cube, 0, 1, 2))
    np.testing.assert_allclose(_t(cube).trace(axis1=0, axis2=2).numpy(),
                               np.trace(cube, axis1=0, axis2=2))
    assert x.trace().item() == pytest.approx(np.trace(a))
    assert x.norm().item() == pytest.approx(np.linalg.norm(a))
    assert x.norm(1).item() == pytest.approx(np.abs(a).sum())
    assert x.norm("nuc").item() == pytest.approx(np.linalg.norm(a, "nuc"))
    np.testing.assert_allclose(x.norm(dim=1, keepdim=True).numpy(),
                               np.linalg.norm(a, axis=1, keepdims=True))


# ---- decompositions ---------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(5, 3), (3, 3), (2, 4, 3)])
def test_qr_reconstructs_with_orthonormal_q(shape):
    a = _random(*shape)
    q, r = linalg.qr(_t(a))
    np.testing.assert_allclose((q @ r).numpy(), a, atol=1e-12)
    qtq = (ember.matrix_transpose(q) @ q).numpy()
    np.testing.assert_allclose(qtq, np.broadcast_to(np.eye(shape[-1]), qtq.shape), atol=1e-12)
    np.testing.assert_allclose(np.tril(r.numpy(), -1), 0.0)


def test_qr_complete_mode_and_wide_gradient_error():
    q, r = linalg.qr(_t(_random(4, 2)), mode="complete")
    assert q.shape == (4, 4) and r.shape == (4, 2)
    wide = _t(_random(2, 4), requires_grad=True)
    q, r = linalg.qr(wide)
    with pytest.raises(ember.EmberError, match="m >= n"):
        r.sum().backward()


@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (2, 3, 3)])
def test_svd_reconstructs(shape):
    a = _random(*shape)
    u, s, vh = linalg.svd(_t(a))
    np.testing.assert_allclose(((u * ember.expand_dims(s, -2)) @ vh).numpy(), a, atol=1e-12)
    np.testing.assert_allclose(s.numpy(), np.linalg.svd(a, compute_uv=False), rtol=1e-12)
    np.testing.assert_allclose(linalg.svdvals(_t(a)).numpy(), s.numpy(), rtol=1e-12)


def test_svd_full_matrices_forward_and_gradient_refusal():
    a = _t(_random(4, 2), requires_grad=True)
    u, s, vh = linalg.svd(a, full_matrices=True)
    assert u.shape == (4, 4) and s.shape == (2,) and vh.shape == (2, 2)
    np.testing.assert_allclose(np.abs(u.numpy()), np.abs(np.linalg.svd(a.numpy())[0]),
                               atol=1e-12)
    with pytest.raises(ember.EmberError, match="full_matrices=False"):
        s.sum().backward()


@pytest.mark.parametrize("shape", [(5, 3), (3, 5)])
def test_svd_gauge_invariant_losses_have_correct_gradients(shape):
    a = _t(_random(*shape, seed=3), requires_grad=True)

    def loss(x):
        u, s, vh = linalg.svd(x)
        # each term is unchanged when a singular pair (u_i, v_i) flips sign
        projector = u @ ember.matrix_transpose(u)
        weighted = (u * ember.arange(1.0, 4.0, dtype=ember.float64)) @ vh
        return (projector * projector).sum() + (weighted ** 3).sum() + (s ** 2).sum()

    assert gradcheck(loss, (a,))


def test_svdvals_gradient_is_finite_for_repeated_values():
    a = _t(np.eye(3) * 2.0, requires_grad=True)
    linalg.svdvals(a).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), np.eye(3))
    b = _t(np.eye(3) * 2.0, requires_grad=True)
    linalg.svd(b).S.sum().backward()
    assert np.isfinite(b.grad.numpy()).all()


def test_cholesky_eigh_reconstruct():
    b = _random(4, 4)
    spd = b @ b.T + 4 * np.eye(4)
    lower = linalg.cholesky(_t(spd))
    np.testing.assert_allclose((lower @ ember.matrix_transpose(lower)).numpy(), spd,
                               atol=1e-12)
    upper = linalg.cholesky(_t(spd), upper=True)
    np.testing.assert_allclose(upper.numpy(), lower.numpy().T)
    w, v = linalg.eigh(_t(spd))
    np.testing.assert_allclose(((v * ember.expand_dims(w, -2)) @ v.mT).numpy(), spd,
                               atol=1e-10)


def test_numerical_failures_raise_linalg_error_with_line():
    with pytest.raises(linalg.LinAlgError) as info:
        linalg.inv(ember.zeros((3, 3)))
    assert "inv" in str(info.value) and HERE in str(info.value)
    with pytest.raises(linalg.LinAlgError, match="positive definite"):
        linalg.cholesky(-ember.eye(3))


@pytest.mark.parametrize("function", [linalg.inv, linalg.det, linalg.cholesky, linalg.eigh])
def test_non_square_input_is_a_shape_error(function):
    with pytest.raises(ember.ShapeError) as info:
        function(ember.ones((2, 3)))
    assert function.__name__ in str(info.value) and "(2, 3)" in str(info.value)
    assert HERE in str(info.value)


def test_solve_shapes_and_half_precision():
    a = _random(3, 3) + 3 * np.eye(3)
    with pytest.raises(ember.ShapeError, match="solve"):
        linalg.solve(_t(a), ember.ones((4,)))
    out = linalg.solve(_t(a.astype(np.float16)), _t(np.ones(3, np.float16)))
    assert out.dtype == ember.float16
    np.testing.assert_allclose(out.numpy(), np.linalg.solve(a, np.ones(3)), rtol=1e-2)
    assert linalg.det(ember.eye(3, dtype=ember.int64)).dtype == ember.float32


def test_vecdot_keeps_integer_dtype():
    out = linalg.vecdot(ember.ones((2, 3), dtype=ember.int32), ember.ones(3, dtype=ember.int32))
    assert out.dtype == ember.int32 and out.tolist() == [3, 3]


def test_pinv_of_rank_deficient_matrix_matches_numpy():
    a = np.outer(_random(4), _random(3, seed=1))
    np.testing.assert_allclose(linalg.pinv(_t(a)).numpy(), np.linalg.pinv(a), atol=1e-12)
    assert linalg.matrix_rank(_t(a)).item() == 1


# ---- einsum -----------------------------------------------------------------------------------
@pytest.mark.parametrize("subscripts, shapes", [
    ("ij,jk->ik", [(2, 3), (3, 4)]), ("ij,jk", [(2, 3), (3, 4)]), ("ba", [(2, 3)]),
    ("Ba,aB", [(2, 3), (3, 2)]), ("i j , j k -> k i", [(2, 3), (3, 4)]), ("ii", [(3, 3)]),
    ("ii->i", [(3, 3)]), ("...ii->...i", [(2, 3, 3)]), ("i...->...", [(2, 3, 4)]),
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]), ("...,...", [(2, 3), (3,)]),
    ("ij,ij->", [(1, 3), (2, 3)]), ("a,b,c->abc", [(2,), (3,), (4,)]), ("", [()]),
    ("ijk,kji", [(2, 3, 4), (4, 3, 2)]),
])
def test_einsum_matches_numpy_with_gradients(subscripts, shapes):
    arrays = [_random(*shape, seed=i) for i, shape in enumerate(shapes)]
    tensors = [_t(a, requires_grad=True) for a in arrays]
    out = linalg.einsum(subscripts, *tensors)
    np.testing.assert_allclose(out.numpy(), np.einsum(subscripts, *arrays), atol=1e-12)
    assert gradcheck(lambda *xs: linalg.einsum(subscripts, *xs), tensors)


def test_einsum_promotes_dtypes_and_rejects_bad_subscripts():
    out = linalg.einsum("i,i", ember.ones(3, dtype=ember.int64), ember.ones(3))
    assert out.dtype == ember.float32 and out.item() == 3.0
    assert linalg.einsum("i,i", ember.arange(3), ember.arange(3)).item() == 5
    bad = [("ij,jk", [(2, 3), (4, 5)]), ("ij", [(2, 3, 4)]), ("ij,jk", [(2, 3)]),
           ("ij->ik", [(2, 3)]), ("i1", [(2, 3)]), ("ii->ii", [(3, 3)])]
    for subscripts, shapes in bad:
        with pytest.raises(ember.ShapeError, match="einsum") as info:
            linalg.einsum(subscripts, *[ember.ones(s) for s in shapes])
        assert HERE in str(info.value)


# ---- norms ------------------------------------------------------------------------------------
@pytest.mark.parametrize("ord", [None, 2, 1, -1, np.inf, -np.inf, 0, 3, 0.5, "fro", "nuc", -2])
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 1), (1, 0)])
def test_norm_matches_numpy(ord, axis):
    x = _random(3, 4)
    vector = isinstance(axis, int)
    if (vector and isinstance(ord, str)) or (not vector and ord in (0, 3, 0.5)):
        with pytest.raises(ember.ShapeError):
            linalg.norm(_t(x), ord=ord, axis=axis)
        return
    for keepdims in (False, True):
        got = linalg.norm(_t(x), ord=ord, axis=axis, keepdims=keepdims)
        np.testing.assert_allclose(got.numpy(), np.linalg.norm(x, ord, axis, keepdims),
                                   rtol=1e-12)


def test_norm_of_stack_and_float32_dtype():
    x = _random(2, 3, 4).astype(np.float32)
    got = linalg.norm(_t(x), axis=(0, 2), ord="nuc")
    np.testing.assert_allclose(got.numpy(), np.linalg.norm(x, "nuc", axis=(0, 2)), rtol=1e-5)
    assert got.dtype == ember.float32
    assert linalg.vector_norm(ember.arange(4)).dtype == ember.float32
    np.testing.assert_allclose(linalg.matrix_norm(_t(x), keepdims=True).numpy(),
                               np.linalg.norm(x, axis=(-2, -1), keepdims=True), rtol=1e-6)


@pytest.mark.parametrize("ord", [2, 3, 1, np.inf])
def test_vector_norm_gradient_at_zero_is_zero_not_nan(ord):
    x = ember.zeros(4, requires_grad=True)
    linalg.vector_norm(x, ord=ord).backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros(4))


# ---- shape rules (what the compiler and exporters see) ----------------------------------------
class _ShapeTracer:
    """Answers every primitive with zeros of the shape its `infer` rule promises."""

    def process(self, prim, args, params):
        out = prim.infer(*[abstract(a) for a in args], **params)
        outs = out if isinstance(out, tuple) else (out,)
        results = tuple(ember.Tensor(np.zeros(o.shape, o.dtype.np)) for o in outs)
        return results if isinstance(out, tuple) else results[0]


@pytest.mark.parametrize("call", [
    lambda: ember.ones((2, 1, 3, 4)) @ ember.ones((5, 4, 2)),
    lambda: ember.ones(4) @ ember.ones((3, 4, 2)),
    lambda: linalg.einsum("...ij,jk->k...", ember.ones((2, 3, 4)), ember.ones((4, 5))),
    lambda: linalg.diagonal(ember.ones((2, 3, 5)), offset=-1),
    lambda: linalg.solve(ember.eye(3), ember.ones((2, 3, 4))),
    lambda: linalg.slogdet(ember.eye(3)), lambda: linalg.qr(ember.ones((2, 5, 3))),
    lambda: linalg.qr(ember.ones((5, 3)), mode="complete"), lambda: linalg.svd(ember.ones((3, 5))),
    lambda: linalg.svdvals(ember.ones((3, 5))), lambda: linalg.eigh(ember.eye(3)),
    lambda: linalg.eigvalsh(ember.eye(3)), lambda: linalg.vector_norm(ember.ones((2, 3)), axis=0),
    lambda: linalg.cholesky(ember.eye(3)), lambda: linalg.det(ember.eye(3)),
])
def test_infer_rules_agree_with_eager_results(call):
    eager = call()
    with tracing(_ShapeTracer()):
        traced = call()
    eager = eager if isinstance(eager, tuple) else (eager,)
    traced = traced if isinstance(traced, tuple) else (traced,)
    assert [(t.shape, t.dtype) for t in traced] == [(e.shape, e.dtype) for e in eager]
