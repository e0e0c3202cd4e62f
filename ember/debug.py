"""Debugging aids: `detect_anomaly()` stops at the first NaN/Inf in forward or backward."""
from __future__ import annotations

import contextlib

from ember._core.errors import AnomalyError
from ember._core.primitive import STATE

__all__ = ["AnomalyError", "detect_anomaly", "set_detect_anomaly"]


class detect_anomaly(contextlib.ContextDecorator):
    """Context manager / decorator: every primitive's outputs (and every gradient) are checked;
    the first NaN or Inf raises `AnomalyError` naming the primitive and your source line.

    >>> import ember
    >>> with ember.debug.detect_anomaly():
    ...     ember.log(ember.tensor([-1.0]))
    Traceback (most recent call last):
    ...
    ember._core.errors.AnomalyError: detect_anomaly: log produced NaN in forward ...
    """

    def __enter__(self):
        self.previous = STATE.anomaly
        STATE.anomaly = True
        return self

    def __exit__(self, *exc):
        STATE.anomaly = self.previous
        return False


def set_detect_anomaly(mode: bool):
    STATE.anomaly = bool(mode)
