"""The symbolic API: symbols, expressions, compile."""
from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.jit import compile, symbol


def test_issue_snippet_verbatim():
    A = symbol('A'); B = symbol('B'); C = B * A; D = C + 1; f = compile(D)  # noqa: E702
    d = f(A=np.ones(10), B=np.ones(10) * 2)
    assert d.dtype == ember.float32  # inputs are cast to the symbols' dtype
    np.testing.assert_array_equal(d.numpy(), np.full(10, 3.0, np.float32))


def test_multiple_outputs_and_caching_per_shape():
    x = symbol("x", shape=(None, 3))
    f = compile([x * 2, x * x - 1])
    doubled, squares = f(x=np.ones((2, 3)))
    np.testing.assert_array_equal(doubled.numpy(), np.full((2, 3), 2.0))
    np.testing.assert_array_equal(squares.numpy(), np.zeros((2, 3)))
    f(x=np.ones((2, 3)))
    assert f._jit.trace_count == 1
    f(x=np.ones((5, 3)))
    assert f._jit.trace_count == 2


def test_missing_and_extra_keywords_are_named():
    a, b = symbol("a"), symbol("b")
    f = compile(a + b)
    with pytest.raises(ember.EmberError, match=r"missing \['b'\]"):
        f(a=np.ones(2))
    with pytest.raises(ember.EmberError, match=r"unexpected \['c'\]"):
        f(a=np.ones(2), b=np.ones(2), c=1)


def test_declared_shape_and_dtype_are_checked():
    x = symbol("x", shape=(None, 3), dtype="int32")
    f = compile(x + 1)
    with pytest.raises(ember.ShapeError, match="symbol 'x'"):
        f(x=np.ones((2, 4), np.int32))
    with pytest.raises(ember.DTypeError, match="symbol 'x'"):
        f(x=np.ones((2, 3)))


def test_inputs_must_cover_the_outputs():
    a, b = symbol("a"), symbol("b")
    with pytest.raises(ember.EmberError, match=r"\['b'\]"):
        compile(a * b, inputs=[a])
