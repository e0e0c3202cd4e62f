"""Extending ember with a new Primitive: shape rule, forward, vjp, residuals, errors."""
from __future__ import annotations

import os

import numpy as np
import pytest

import ember
from ember._core.primitive import AbstractValue, Primitive, WithResiduals, apply
from ember.autograd import gradcheck


class SoftClip(Primitive):
    """y = x / (1 + |x|); saves 1 / (1 + |x|) as a residual for the backward pass."""

    def infer(self, x):
        return AbstractValue(x.shape, x.dtype, x.device)

    def forward(self, xp, x):
        inverse = 1 / (1 + xp.abs(x))
        return WithResiduals(x * inverse, inverse)

    def vjp(self, ctx, gy):
        inverse = ember.Tensor(ctx.residuals)
        return (gy * inverse * inverse,)


SOFT_CLIP = SoftClip()


def test_custom_primitive_forward_and_gradient():
    x = ember.tensor([-2.0, 0.5, 3.0], dtype=ember.float64, requires_grad=True)
    y = apply(SOFT_CLIP, x)
    np.testing.assert_allclose(y.numpy(), x.numpy() / (1 + np.abs(x.numpy())))
    assert y.grad_fn.name == "soft_clip"
    assert gradcheck(lambda t: apply(SOFT_CLIP, t), (x,))


def test_backend_failure_becomes_ember_error_with_user_line():
    class NeedsVector(Primitive):
        def infer(self, x):
            if x.ndim != 1:
                raise ember.ShapeError(f"needs_vector: expected 1-d, got shape {x.shape}")
            return x

        def forward(self, xp, x):
            return xp.diag(x.reshape(-1, 3))  # fails for anything but length-3 multiples

    with pytest.raises(ember.ShapeError, match="expected 1-d"):
        apply(NeedsVector(), ember.ones((2, 2)))

    class Broken(Primitive):
        def infer(self, x):
            return x

        def forward(self, xp, x):
            return xp.reshape(x, (7,))

    with pytest.raises(ember.EmberError) as info:
        apply(Broken(), ember.ones(3))
    assert "broken" in str(info.value) and os.path.basename(__file__) in str(info.value)
