"""`jit`: caching, retrace reasons, static arguments, control-flow errors."""
from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.jit import RetraceWarning, TraceError, jit


def test_traces_once_per_signature_and_matches_eager():
    def f(x, y):
        return (x * y + 1).sum(axis=0)

    compiled = jit(f)
    x, y = ember.ones((4, 8)), ember.ones(8)
    for _ in range(3):
        np.testing.assert_allclose(compiled(x, y).numpy(), f(x, y).numpy())
    assert compiled.trace_count == 1


def test_retrace_reason_names_the_argument(capsys):
    compiled = jit(lambda x, y: x.sum() + y.sum(), explain=True)
    compiled(ember.ones((4, 8)), ember.ones((4, 8)))
    compiled(ember.ones((4, 8)), ember.ones((5, 8)))
    assert compiled.retrace_reasons == ["retracing <lambda>: argument 1 shape (4, 8) -> (5, 8)"]
    assert "argument 1 shape (4, 8) -> (5, 8)" in capsys.readouterr().out


def test_env_variable_logs_retraces(monkeypatch, capsys):
    monkeypatch.setenv("EMBER_LOG_RECOMPILES", "1")
    compiled = jit(lambda x: x * 2)
    compiled(ember.ones(2))
    compiled(ember.ones(2, dtype=ember.float64))
    assert "argument 0 dtype float32 -> float64" in capsys.readouterr().out


def test_static_argument_is_part_of_the_signature():
    def scale(x, factor):
        return x * factor

    compiled = jit(scale, static_argnums=1)
    np.testing.assert_allclose(compiled(ember.ones(3), 2.0).numpy(), 2.0)
    np.testing.assert_allclose(compiled(ember.ones(3), 3.0).numpy(), 3.0)
    compiled(ember.ones(3), 2.0)
    assert compiled.trace_count == 2
    assert compiled.retrace_reasons == ["retracing scale: static argument 1 2.0 -> 3.0"]


def test_warns_after_many_retraces():
    compiled = jit(lambda x: x + 1, max_retraces=3)
    with pytest.warns(RetraceWarning, match="traced 4 times"):
        for size in range(1, 5):
            compiled(ember.ones(size))


@pytest.mark.parametrize("body", [
    lambda x: x * 2 if x.sum() > 0 else x,
    lambda x: x * float(x.sum()),
    lambda x: x * x.sum().item(),
    lambda x: x + x.numpy(),
])
def test_control_flow_on_traced_values_names_the_line(body):
    with pytest.raises(TraceError, match=r"test_api\.py:\d+.*ember\.where"):
        jit(body)(ember.ones(3))


def test_captured_tensors_are_read_live_and_lower_prints():
    weight = ember.ones(3)
    compiled = jit(lambda x: x * weight)
    compiled(ember.ones(3))
    weight += 1  # in-place updates of captured tensors are seen by the cached graph
    np.testing.assert_allclose(compiled(ember.ones(3)).numpy(), 2.0)
    assert compiled.trace_count == 1
    assert "capture : float32[3]" in str(compiled.lower(ember.ones(3)))


def test_tuple_outputs_and_decorator_form():
    @jit(static_argnums=(1,))
    def split(x, n):
        return x[:n], x[n:]

    first, rest = split(ember.arange(5.0), 2)
    np.testing.assert_allclose(first.numpy(), [0.0, 1.0])
    np.testing.assert_allclose(rest.numpy(), [2.0, 3.0, 4.0])
