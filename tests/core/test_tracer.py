"""The tracer hook in `apply`: an active tracer receives every primitive call."""
from __future__ import annotations

import numpy as np

import ember
from ember._core.primitive import AbstractValue, abstract, tracing


class RecordingTracer:
    """Records (primitive name, input avals, params) and returns abstract results."""

    def __init__(self):
        self.calls = []
        self.assigned = []

    def process(self, prim, args, params):
        avals = [abstract(a) for a in args]
        self.calls.append((prim.name, avals, params))
        out = prim.infer(*avals, **params)
        outs = out if isinstance(out, tuple) else (out,)
        results = tuple(ember.Tensor(np.zeros(o.shape, o.dtype.np)) for o in outs)
        return results if isinstance(out, tuple) else results[0]

    def assign(self, target, value):
        self.assigned.append((target.shape, value.shape))


def test_tracer_receives_every_primitive_instead_of_executing():
    tracer = RecordingTracer()
    x = ember.ones((2, 3))
    y = ember.ones((3,))
    with tracing(tracer):
        z = ember.exp(x * y).sum(axis=1)
    names = [name for name, _, _ in tracer.calls]
    assert names == ["multiply", "exp", "sum"]
    assert tracer.calls[0][1] == [AbstractValue((2, 3), ember.float32),
                                  AbstractValue((3,), ember.float32)]
    assert tracer.calls[2][2] == {"axes": (1,), "keepdims": False}
    # results come from the tracer (zeros), proving nothing was computed eagerly
    assert z.shape == (2,) and float(z.numpy().sum()) == 0.0


def test_tracer_sees_backward_pass_and_inplace_updates():
    w = ember.tensor([1.0, 2.0], requires_grad=True)
    loss = (w * w).sum()
    tracer = RecordingTracer()
    with tracing(tracer):
        loss.backward()  # the vjp rules are ember ops, so the backward pass is traceable
        buffer = ember.zeros(2)
        buffer += ember.ones(2)
    names = [name for name, _, _ in tracer.calls]
    assert "multiply" in names and "add" in names
    assert tracer.assigned == [((2,), (2,))]


def test_tracing_restores_eager_mode():
    tracer = RecordingTracer()
    with tracing(tracer):
        pass
    out = ember.ones(2) + 1
    np.testing.assert_allclose(out.numpy(), [2.0, 2.0])
    assert tracer.calls == []
