"""The tracer: traced tensors keep shapes, record nodes, capture outside tensors."""
from __future__ import annotations

import ember
from ember._core.primitive import AbstractValue, tracing
from ember.jit.trace import Tracer


def test_traced_tensors_have_shape_dtype_ndim_and_record_nodes():
    tracer = Tracer("f")
    x = tracer.new_input(AbstractValue((2, 3), ember.float32))
    weight = ember.ones(3)
    with tracing(tracer):
        y = (x * weight).sum(axis=1)
    assert (y.shape, y.dtype, y.ndim) == ((2,), ember.float32, 1)
    assert [node.prim.name for node in tracer.graph.nodes] == ["multiply", "sum"]
    assert tracer.graph.captures[0][1] is weight


def test_inplace_on_traced_tensor_rebinds_it():
    tracer = Tracer("f")
    x = tracer.new_input(AbstractValue((3,), ember.float32))
    with tracing(tracer):
        x += 1
    assert tracer.graph.nodes[-1].outputs[0] is x._data.value


def test_inplace_on_captured_tensor_records_a_write_back():
    tracer = Tracer("f")
    buffer = ember.zeros(3)
    storage = buffer._data
    x = tracer.new_input(AbstractValue((3,), ember.float32))
    with tracing(tracer):
        buffer += x
    target, original = tracer.state_writes[id(buffer)]
    assert target is buffer and original is storage
    assert buffer._data.value is tracer.graph.nodes[-1].outputs[0]  # later reads see it
    tracer.restore_state()
    assert buffer._data is storage
