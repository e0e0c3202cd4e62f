"""ember's error types and the helper that finds the user's source line."""
from __future__ import annotations

import os
import sys

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class EmberError(Exception):
    """Base class of every error ember raises on purpose."""


class ShapeError(EmberError, ValueError):
    """Operand shapes do not fit the operation (a ValueError)."""


class DTypeError(EmberError, TypeError):
    """An operand has a dtype the operation does not accept (a TypeError)."""


class DeviceError(EmberError, RuntimeError):
    """Operands live on different devices, or a device is unusable (a RuntimeError)."""


class AnomalyError(EmberError, FloatingPointError):
    """`ember.debug.detect_anomaly()` saw a NaN or Inf."""


def user_frame() -> str:
    """`file:line` of the innermost stack frame outside the ember package."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not os.path.abspath(filename).startswith(_PACKAGE_DIR + os.sep):
            return f"{filename}:{frame.f_lineno}"
        frame = frame.f_back
    return "<unknown>"


def describe(value) -> str:
    """Short description of an operand for error messages: shape, dtype and device."""
    shape = getattr(value, "shape", None)
    if shape is None:
        return f"{type(value).__name__} {value!r}"
    dtype = getattr(value.dtype, "name", value.dtype)
    return f"shape {tuple(shape)} {dtype}"
