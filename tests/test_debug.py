"""detect_anomaly: the first NaN/Inf in forward or backward raises, naming op and line."""
from __future__ import annotations

import os

import pytest

import ember

HERE = os.path.basename(__file__)


def test_forward_nan_names_primitive_and_line():
    x = ember.tensor([1.0, -1.0])
    with ember.debug.detect_anomaly():
        with pytest.raises(ember.debug.AnomalyError) as info:
            ember.sqrt(x)
    message = str(info.value)
    assert "sqrt" in message and "NaN" in message and HERE in message
    assert ember.sqrt(x).shape == (2,)  # outside the context nothing is checked


def test_backward_inf_names_primitive():
    x = ember.tensor([0.0, 1.0], requires_grad=True)
    y = ember.sqrt(x).sum()  # finite forward, infinite gradient at 0
    with ember.debug.detect_anomaly():
        with pytest.raises(ember.debug.AnomalyError, match="backward of sqrt"):
            y.backward()


def test_decorator_form():
    @ember.debug.detect_anomaly()
    def run():
        return ember.log(ember.tensor([0.0]))

    with pytest.raises(ember.debug.AnomalyError, match="log.*Inf"):
        run()
