"""Errors name the op, the operands and the caller's file:line (ember/_core/errors.py)."""
from __future__ import annotations

import os

import numpy as np
import pytest

import ember
from ember._core.device import Device

HERE = os.path.basename(__file__)


def test_error_types_subclass_builtins():
    assert issubclass(ember.ShapeError, ValueError)
    assert issubclass(ember.DTypeError, TypeError)
    assert issubclass(ember.DeviceError, RuntimeError)


def test_broadcast_mismatch_names_op_shapes_and_line():
    a, b = ember.ones((2, 3)), ember.ones((4,))
    with pytest.raises(ember.ShapeError) as info:
        ember.add(a, b)
    message = str(info.value)
    assert "add" in message and "(2, 3)" in message and "(4,)" in message
    assert HERE in message


def test_reshape_error():
    with pytest.raises(ember.ShapeError, match=r"reshape.*\(2, 3\)") as info:
        ember.ones((2, 3)).reshape(4, 2)
    assert HERE in str(info.value)


def test_dtype_misuse_names_op_dtypes_and_line():
    with pytest.raises(ember.DTypeError) as info:
        ember.bitwise_and(ember.ones(3), ember.ones(3))
    message = str(info.value)
    assert "bitwise_and" in message and "float32" in message and HERE in message
    with pytest.raises(ember.DTypeError, match="mean") as info:
        ember.mean(ember.tensor([1, 2, 3]))
    assert HERE in str(info.value)


def test_device_mismatch_names_op_devices_and_line():
    fake_gpu = Device("cuda", 0, np)  # a second device backed by NumPy: no GPU needed
    a = ember.ones(3)
    b = ember.Tensor(np.ones(3, np.float32), fake_gpu)
    with pytest.raises(ember.DeviceError) as info:
        ember.multiply(a, b)
    message = str(info.value)
    assert "multiply" in message and "cpu" in message and "cuda:0" in message
    assert HERE in message


def test_cuda_device_without_gpu_says_what_is_missing():
    if ember.cuda_is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ember.DeviceError, match="(CuPy|GPU|CUDA)"):
        ember.device("cuda:0")
    with pytest.raises(ember.DeviceError):
        ember.zeros(2, device="cuda")


def test_unknown_device_and_dtype():
    with pytest.raises(ember.DeviceError, match="tpu"):
        ember.device("tpu")
    with pytest.raises(ember.DTypeError, match="float33"):
        ember.zeros(2, dtype="float33")
