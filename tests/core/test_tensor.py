"""Tensor creation, conversion, printing and methods (ember/_core/tensor.py, ops/creation.py)."""
from __future__ import annotations

import numpy as np
import pytest

import ember


def test_default_dtypes_follow_pytorch():
    assert ember.tensor([1.0, 2.0]).dtype == ember.float32
    assert ember.tensor([1, 2]).dtype == ember.int64
    assert ember.tensor([True]).dtype == ember.bool
    assert ember.tensor(np.zeros(2)).dtype == ember.float64  # NumPy data keeps its dtype
    assert ember.zeros(3).dtype == ember.float32
    assert ember.arange(5).dtype == ember.int64 and ember.arange(0.0, 1.0, 0.25).size == 4
    assert ember.full((2,), 7).dtype == ember.int64
    assert ember.full((2,), 0.5).dtype == ember.float32


@pytest.mark.parametrize("name", ["float16", "bfloat16", "float32", "float64", "int8", "int16",
                                  "int32", "int64", "uint8", "bool"])
def test_every_dtype_round_trips(name):
    x = ember.ones((2, 2), dtype=name)
    assert x.dtype == name and x.dtype.name == name
    assert x.to(ember.float64).dtype == ember.float64
    np.testing.assert_allclose(np.asarray(x.to(ember.float64)), np.ones((2, 2)))


def test_creation_functions_match_numpy():
    np.testing.assert_allclose(ember.linspace(0, 1, 5).numpy(), np.linspace(0, 1, 5))
    np.testing.assert_allclose(ember.eye(3, 4, k=1).numpy(), np.eye(3, 4, k=1))
    np.testing.assert_allclose(ember.arange(2, 11, 3).numpy(), np.arange(2, 11, 3))
    x = ember.ones((2, 3), dtype=ember.int32)
    for like, value in ((ember.zeros_like, 0), (ember.ones_like, 1)):
        out = like(x)
        assert out.shape == (2, 3) and out.dtype == ember.int32
        assert (out.numpy() == value).all()
    assert ember.full_like(x, 4).numpy().sum() == 24
    assert ember.empty((4, 1)).shape == (4, 1) and ember.empty_like(x).dtype == ember.int32


def test_from_numpy_is_zero_copy_and_asarray_does_not_copy():
    array = np.zeros(3, np.float32)
    t = ember.from_numpy(array)
    array[0] = 5
    assert t[0].item() == 5
    assert np.shares_memory(ember.asarray(array).numpy(), array)
    copied = ember.asarray(array, copy=True)
    assert not np.shares_memory(copied.numpy(), array)


def test_dlpack_round_trip_with_numpy():
    x = ember.arange(6).reshape(2, 3)
    y = np.from_dlpack(x)
    assert np.shares_memory(y, x.numpy())
    z = ember.from_dlpack(np.arange(4.0))
    np.testing.assert_allclose(z.numpy(), np.arange(4.0))


@pytest.mark.torch_reference
def test_dlpack_with_torch_when_installed():
    import torch

    x = ember.from_dlpack(torch.arange(4.0))
    np.testing.assert_allclose(x.numpy(), [0, 1, 2, 3])
    back = torch.from_dlpack(ember.ones(3))
    assert back.sum().item() == 3


def test_item_array_and_python_conversions():
    assert ember.tensor(2.5).item() == 2.5
    assert ember.tensor([3]).item() == 3
    assert float(ember.tensor(1.5, dtype=ember.bfloat16)) == 1.5
    assert int(ember.tensor(4)) == 4 and bool(ember.tensor(True))
    with pytest.raises(ValueError, match="ambiguous"):
        bool(ember.ones(2))
    assert ember.ones(3).tolist() == [1.0, 1.0, 1.0]
    assert np.asarray(ember.ones(2), dtype=np.float64).dtype == np.float64
    assert len(ember.ones((4, 2))) == 4


def test_printing_like_numpy():
    assert repr(ember.tensor([1.0, 2.5])) == "tensor([1. , 2.5])"
    assert repr(ember.tensor([1, 2], dtype=ember.int32)) == \
        "tensor([1, 2], dtype=ember.int32)"
    assert "requires_grad=True" in repr(ember.ones(2, requires_grad=True))
    assert "grad_fn=<multiply>" in repr(ember.ones(2, requires_grad=True) * 2)
    matrix = repr(ember.zeros((2, 2)))
    assert matrix == "tensor([[0., 0.],\n        [0., 0.]])"


def test_methods_and_properties():
    x = ember.arange(6.0).reshape(2, 3)
    assert x.T.shape == (3, 2) and x.mT.shape == (3, 2)
    assert x.sum(axis=0).tolist() == [3.0, 5.0, 7.0]
    assert x.sum(dim=1, keepdim=True).shape == (2, 1)
    assert x.mean().item() == 2.5
    assert x.max().item() == 5.0 and x.min(axis=1).tolist() == [0.0, 3.0]
    assert x.clamp(1, 4).tolist() == [[1, 1, 2], [3, 4, 4]]
    assert (-x).abs().tolist() == x.tolist()
    assert x.reshape(3, 2).shape == (3, 2) and x.view(-1).shape == (6,)
    assert x.permute(1, 0).shape == (3, 2) and x.transpose(0, 1).shape == (3, 2)
    assert x.unsqueeze(0).shape == (1, 2, 3) and x.unsqueeze(0).squeeze(0).shape == (2, 3)
    assert x.flatten().shape == (6,) and x.expand(4, 2, 3).shape == (4, 2, 3)
    assert ((x > 2) & (x < 5)).tolist() == [[False, False, False], [True, True, False]]
    assert (x == x).all().item() and (x != x).any().item() is False
    assert (2 - x).tolist() == [[2, 1, 0], [-1, -2, -3]]
    assert (x // 2).tolist() == [[0, 0, 1], [1, 2, 2]] and (x % 4).tolist()[1] == [3, 0, 1]
    assert x.std().item() == pytest.approx(np.arange(6.0).std())
    assert x.ndim == 2 and x.size == 6 and x.numel() == 6 and x.device == "cpu"


def test_to_device_and_cpu():
    x = ember.ones(2)
    assert x.to("cpu") is x and x.cpu() is x
    assert x.to(ember.device("cpu"), ember.float64).dtype == ember.float64


def test_softmax_methods_match_the_functions():
    x = ember.asarray(np.random.default_rng(0).standard_normal((3, 4)))
    np.testing.assert_allclose(x.softmax(0).numpy(), ember.nn.functional.softmax(x, 0).numpy())
    np.testing.assert_allclose(x.log_softmax(dim=1).numpy(),
                               ember.nn.functional.log_softmax(x, 1).numpy())
