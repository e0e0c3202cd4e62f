"""The autograd engine: accumulation, graph release, hooks, grad modes, custom Functions."""
from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import ember
from ember.autograd import gradcheck


def f64(values, requires_grad=True):
    return ember.tensor(values, dtype=ember.float64, requires_grad=requires_grad)


def test_gradients_accumulate_across_backward_calls():
    x = f64([1.0, 2.0])
    (x * x).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2 + 3, 4 + 3])


def test_broadcast_operand_gradient_has_operand_shape():
    a = f64(np.ones((2, 3)))
    b = f64(np.arange(3.0))
    c = f64(2.0)
    (a * b + c).sum().backward()
    assert b.grad.shape == (3,) and c.grad.shape == ()
    np.testing.assert_allclose(b.grad.numpy(), [2, 2, 2])
    np.testing.assert_allclose(c.grad.numpy(), 6)
    np.testing.assert_allclose(a.grad.numpy(), np.tile(np.arange(3.0), (2, 1)))


def test_integer_and_bool_inputs_never_get_grads():
    x = f64([1.0, 2.0])
    index_like = ember.tensor([1, 2])
    mask = ember.tensor([True, False])
    y = (x * index_like + ember.where(mask, x, 0.0)).sum()
    y.backward()
    assert index_like.grad is None and not index_like.requires_grad
    assert mask.grad is None
    with pytest.raises(ember.DTypeError, match="floating-point"):
        ember.tensor([1, 2]).requires_grad_()


def test_gradient_dtype_matches_operand_dtype():
    x = ember.tensor([1.0, 2.0], dtype=ember.float32, requires_grad=True)
    (x.astype(ember.float64) * f64([3.0, 4.0], requires_grad=False)).sum().backward()
    assert x.grad.dtype == ember.float32


def test_saved_tensors_are_released_after_backward():
    x = f64([1.0, 2.0])
    y = x.exp()
    loss = (y * y).sum()
    node_ref = weakref.ref(y.grad_fn)
    loss.backward()
    assert y.grad_fn.ctx is None  # the exp node dropped its saved inputs and outputs
    with pytest.raises(ember.EmberError, match="retain_graph=True"):
        loss.backward()
    del y, loss
    gc.collect()
    assert node_ref() is None


def test_retain_graph_allows_second_backward():
    x = f64([1.0, 2.0])
    loss = (x.exp()).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.exp([1.0, 2.0]))


def test_backward_with_explicit_gradient_and_nonscalar_error():
    x = f64([1.0, 2.0, 3.0])
    y = x * 2
    with pytest.raises(ember.EmberError, match="needs `gradient`"):
        y.backward()
    y.backward(ember.tensor([1.0, 0.0, 2.0], dtype=ember.float64))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 0.0, 4.0])


def test_no_grad_enable_grad_set_grad_enabled():
    x = f64([1.0])
    with ember.no_grad():
        assert not (x * 2).requires_grad
        with ember.enable_grad():
            assert (x * 2).requires_grad
    with ember.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert (x * 2).requires_grad

    @ember.no_grad()
    def doubled(value):
        return value * 2

    assert not doubled(x).requires_grad
    assert ember.is_grad_enabled()
    ember.set_grad_enabled(False)
    assert not ember.is_grad_enabled()
    ember.set_grad_enabled(True)


def test_detach_and_requires_grad_():
    x = f64([1.0, 2.0])
    y = (x * 2).detach()
    assert not y.requires_grad and y.is_leaf
    z = ember.tensor([1.0]).requires_grad_()
    assert z.requires_grad and z.is_leaf


def test_hooks_modify_and_observe_gradients():
    x = f64([1.0, 2.0])
    seen = []
    x.register_hook(lambda g: g * 10)
    y = x * 3
    handle = y.register_hook(lambda g: seen.append(g.numpy().copy()))
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [30.0, 30.0])
    np.testing.assert_allclose(seen[0], [1.0, 1.0])
    handle.remove()
    x.grad = None
    (x * 3).sum().backward()
    assert len(seen) == 1


def test_retain_grad_on_intermediate():
    x = f64([1.0, 2.0])
    y = x * x
    y.retain_grad()
    (y * 3).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), [3.0, 3.0])


def test_autograd_grad_returns_without_accumulating():
    x = f64([1.0, 2.0])
    y = f64([3.0, 4.0])
    gx, gy = ember.autograd.grad((x * y).sum(), [x, y])
    np.testing.assert_allclose(gx.numpy(), [3.0, 4.0])
    np.testing.assert_allclose(gy.numpy(), [1.0, 2.0])
    assert x.grad is None and y.grad is None
    unused = f64([0.0])
    with pytest.raises(ember.EmberError, match="allow_unused"):
        ember.autograd.grad((x * 2).sum(), [x, unused])
    gx, none = ember.autograd.grad((x * 2).sum(), [x, unused], allow_unused=True)
    assert none is None


def test_autograd_grad_wrt_intermediate():
    x = f64([1.0, 2.0])
    h = x * 2
    (gh,) = ember.autograd.grad((h * h).sum(), h)
    np.testing.assert_allclose(gh.numpy(), 2 * h.numpy())


def test_higher_order_gradients():
    x = f64(0.7)
    y = ember.sin(x) * x ** 2
    (g1,) = ember.autograd.grad(y, x, create_graph=True)
    (g2,) = ember.autograd.grad(g1, x, create_graph=True)
    (g3,) = ember.autograd.grad(g2, x)
    v = 0.7
    expected3 = (-np.cos(v) * v ** 2 - 6 * v * np.sin(v) + 6 * np.cos(v))
    np.testing.assert_allclose(g3.item(), expected3, rtol=1e-10)


def test_backward_create_graph_gives_differentiable_grad():
    x = f64([1.0, 2.0])
    (x ** 3).sum().backward(create_graph=True)
    grad = x.grad
    assert grad.requires_grad
    (ggx,) = ember.autograd.grad(grad.sum(), x)
    np.testing.assert_allclose(ggx.numpy(), [6.0, 12.0])


def test_backward_inputs_restricts_accumulation():
    x = f64([1.0])
    y = f64([2.0])
    (x * y).sum().backward(inputs=[x])
    assert x.grad is not None and y.grad is None


def test_inplace_update_rules():
    w = f64([1.0, 2.0])
    with pytest.raises(ember.EmberError, match="no_grad"):
        w += 1
    with ember.no_grad():
        w -= 0.5 * w
    np.testing.assert_allclose(w.numpy(), [0.5, 1.0])
    assert w.is_leaf and w.requires_grad
    counter = ember.zeros(3)
    counter += ember.ones(3)
    counter *= 4
    np.testing.assert_allclose(counter.numpy(), [4.0, 4.0, 4.0])


class Cube(ember.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return gy * 3 * x ** 2


class SplitScale(ember.autograd.Function):
    """Two inputs, two outputs, a non-tensor argument."""

    @staticmethod
    def forward(ctx, a, b, factor):
        ctx.save_for_backward(a, b)
        ctx.factor = factor
        return a * factor, a * b

    @staticmethod
    def backward(ctx, g1, g2):
        a, b = ctx.saved_tensors
        return g1 * ctx.factor + g2 * b, g2 * a, None


def test_custom_function_gradients():
    x = f64([0.5, -1.5])
    assert gradcheck(Cube.apply, (x,))
    a, b = f64([1.0, 2.0]), f64([3.0, 5.0])
    assert gradcheck(lambda a, b: SplitScale.apply(a, b, 2.5), (a, b))
    out = Cube.apply(x)
    assert out.grad_fn.name == "Cube"


def test_custom_function_double_backward_through_backward_ops():
    x = f64(1.5)
    (g,) = ember.autograd.grad(Cube.apply(x), x, create_graph=True)
    (gg,) = ember.autograd.grad(g, x)
    np.testing.assert_allclose(gg.item(), 6 * 1.5)


def test_custom_function_under_no_grad_builds_no_graph():
    x = f64([1.0])
    with ember.no_grad():
        assert not Cube.apply(x).requires_grad


def test_diamond_graph_accumulates_each_path_once():
    x = f64([2.0])
    a = x * 3
    b = a.exp()
    c = a * a
    (b + c).sum().backward()
    expected = 3 * np.exp(6.0) + 2 * 6.0 * 3
    np.testing.assert_allclose(x.grad.numpy(), [expected])


def test_each_leaf_owns_writable_grad_storage():
    # add's vjp hands the same (broadcast, read-only) array to both operands; optimizers and
    # clipping write into .grad in place, so every leaf must get its own array.
    w = ember.ones(3, requires_grad=True)
    b = ember.ones(3, requires_grad=True)
    (w + b).sum().backward()
    assert w.grad._data is not b.grad._data
    w.grad._data *= 2
    np.testing.assert_array_equal(b.grad.numpy(), [1.0, 1.0, 1.0])
