"""Functional transforms: grad, value_and_grad, vjp, jvp (ember/func.py)."""
from __future__ import annotations

import numpy as np
import pytest

import ember


def _f(x, y):
    return (ember.sin(x) * y ** 2).sum()


def test_grad_argnums_and_values():
    x = ember.tensor([0.1, 0.5], dtype=ember.float64)
    y = ember.tensor([2.0, 3.0], dtype=ember.float64)
    gx = ember.grad(_f)(x, y)
    np.testing.assert_allclose(gx.numpy(), np.cos([0.1, 0.5]) * [4.0, 9.0])
    gx2, gy = ember.grad(_f, argnums=(0, 1))(x, y)
    np.testing.assert_allclose(gx2.numpy(), gx.numpy())
    np.testing.assert_allclose(gy.numpy(), 2 * np.sin([0.1, 0.5]) * [2.0, 3.0])
    assert not gx.requires_grad and x.grad is None


def test_value_and_grad_has_aux():
    def loss(w):
        prediction = w * 3
        return (prediction ** 2).sum(), {"prediction": prediction}

    (value, aux), gradient = ember.value_and_grad(loss, has_aux=True)(ember.tensor([1.0]))
    assert value.item() == 9.0
    np.testing.assert_allclose(aux["prediction"].numpy(), [3.0])
    np.testing.assert_allclose(gradient.numpy(), [18.0])
    gradient, aux = ember.grad(loss, has_aux=True)(ember.tensor([2.0]))
    np.testing.assert_allclose(gradient.numpy(), [36.0])


def test_nested_grad_gives_higher_derivatives():
    third = ember.grad(ember.grad(ember.grad(lambda x: x ** 4)))
    assert third(ember.tensor(2.0, dtype=ember.float64)).item() == pytest.approx(48.0)
    # grad of a gradient norm (mixes reduction, elementwise and double backward)
    def penalty(w):
        g = ember.grad(lambda v: (ember.exp(v) * v).sum())(w)
        return (g * g).sum()

    w = ember.tensor([0.3, -0.2], dtype=ember.float64)
    analytic = ember.grad(penalty)(w).numpy()
    eps = 1e-6
    numeric = [(penalty(w + eps * e).item() - penalty(w - eps * e).item()) / (2 * eps)
               for e in np.eye(2)]
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6)


def test_grad_requires_scalar_output():
    with pytest.raises(ember.EmberError, match="scalar"):
        ember.grad(lambda x: x * 2)(ember.tensor([1.0, 2.0]))


def test_vjp_matches_jacobian_transpose():
    x = ember.tensor([0.2, 0.4, 0.6], dtype=ember.float64)
    out, vjp_fn = ember.vjp(lambda v: ember.tanh(v) * v, x)
    cotangent = ember.tensor([1.0, -2.0, 0.5], dtype=ember.float64)
    (g,) = vjp_fn(cotangent)
    v = x.numpy()
    jacobian_diag = (1 - np.tanh(v) ** 2) * v + np.tanh(v)
    np.testing.assert_allclose(g.numpy(), cotangent.numpy() * jacobian_diag)
    (g_again,) = vjp_fn(cotangent)  # vjp_fn can be called more than once
    np.testing.assert_allclose(g_again.numpy(), g.numpy())
    np.testing.assert_allclose(out.numpy(), np.tanh(v) * v)


def test_jvp_matches_finite_differences():
    def f(a, b):
        return ember.exp(a) * ember.sum(b ** 2)

    a = ember.tensor([0.1, 0.2], dtype=ember.float64)
    b = ember.tensor([1.0, -1.0, 0.5], dtype=ember.float64)
    ta = ember.tensor([1.0, 0.0], dtype=ember.float64)
    tb = ember.tensor([0.3, 0.1, -0.2], dtype=ember.float64)
    out, tangent = ember.jvp(f, (a, b), (ta, tb))
    eps = 1e-6
    numeric = (f(a + eps * ta, b + eps * tb).numpy() - f(a - eps * ta, b - eps * tb).numpy()) \
        / (2 * eps)
    np.testing.assert_allclose(tangent.numpy(), numeric, rtol=1e-6)
    np.testing.assert_allclose(out.numpy(), f(a, b).numpy())
