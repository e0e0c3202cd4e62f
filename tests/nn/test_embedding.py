"""Embedding: backward against an np.add.at reference, padding, id dtypes, errors."""
from __future__ import annotations

import numpy as np
import pytest

import ember
import ember.nn.functional as F


def _reference_grad(ids, grad, rows, padding_idx=None):
    expected = np.zeros((rows, grad.shape[-1]))
    np.add.at(expected, ids.reshape(-1), grad.reshape(-1, grad.shape[-1]))
    if padding_idx is not None:
        expected[padding_idx] = 0
    return expected


@pytest.mark.parametrize("dtype", [ember.float32, ember.float64])
@pytest.mark.parametrize("id_dtype", [np.int32, np.int64])
def test_backward_matches_add_at_reference_with_repeated_ids(dtype, id_dtype):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 6, size=(4, 7)).astype(id_dtype)  # 28 ids over 6 rows: repeats
    grad = rng.normal(size=(4, 7, 3))
    weight = ember.asarray(rng.normal(size=(6, 3))).astype(dtype).detach().requires_grad_(True)
    out = F.embedding(ember.asarray(ids), weight)
    out.backward(ember.asarray(grad).astype(dtype))
    assert weight.grad.dtype == dtype
    tolerance = 1e-5 if dtype == ember.float32 else 1e-12
    np.testing.assert_allclose(weight.grad.numpy(), _reference_grad(ids, grad, 6),
                               rtol=tolerance, atol=tolerance)


def test_padding_row_gets_no_gradient_and_starts_at_zero():
    ember.manual_seed(0)
    layer = ember.nn.Embedding(5, 4, padding_idx=-2)
    assert layer.padding_idx == 3
    np.testing.assert_array_equal(layer.weight.numpy()[3], 0.0)
    ids = np.array([[3, 1, 3], [0, 3, 1]])
    grad = np.random.default_rng(1).normal(size=(2, 3, 4)).astype(np.float32)
    layer(ember.asarray(ids)).backward(ember.asarray(grad))
    np.testing.assert_allclose(layer.weight.grad.numpy(), _reference_grad(ids, grad, 5, 3),
                               rtol=1e-6)


def test_half_precision_table_accumulates_its_gradient():
    ids = np.array([1, 1, 1, 2, 0, 1])
    weight = ember.ones((3, 2), dtype=ember.float16, requires_grad=True)
    F.embedding(ember.asarray(ids), weight, padding_idx=0).sum().backward()
    np.testing.assert_array_equal(weight.grad.numpy(), [[0, 0], [4, 4], [1, 1]])


def test_gradient_of_the_gradient_gathers_rows_back():
    ids = ember.asarray(np.array([0, 2, 2, 1]))
    weight = ember.asarray(np.arange(6.0).reshape(3, 2)).requires_grad_(True)
    upstream = ember.ones((4, 2), dtype=ember.float64, requires_grad=True)
    (gw,) = ember.autograd.grad(F.embedding(ids, weight, padding_idx=1), [weight], upstream,
                                create_graph=True)
    (gu,) = ember.autograd.grad((gw * weight).sum(), [upstream])
    # d/d upstream of sum(gw * weight) = weight[ids], with padding ids getting zero
    np.testing.assert_array_equal(gu.numpy(), [[0, 1], [4, 5], [4, 5], [0, 0]])


def test_output_shape_and_lookup():
    weight = ember.asarray(np.arange(12.0).reshape(4, 3))
    out = ember.nn.Embedding.from_pretrained(weight)(ember.tensor([[3], [0]]))
    assert out.shape == (2, 1, 3)
    np.testing.assert_array_equal(out.numpy()[:, 0], [[9, 10, 11], [0, 1, 2]])


def test_from_pretrained_is_frozen_unless_asked():
    weight = ember.ones((3, 2))
    assert not ember.nn.Embedding.from_pretrained(weight).weight.requires_grad
    assert ember.nn.Embedding.from_pretrained(weight, freeze=False).weight.requires_grad


@pytest.mark.parametrize("ids", [[0, 5], [-1, 2]])
def test_out_of_range_ids_name_the_valid_range(ids):
    layer = ember.nn.Embedding(5, 2)
    with pytest.raises(ember.EmberError, match=r"out of range for num_embeddings=5.*\[0, 4\]"):
        layer(ember.tensor(ids))


def test_float_ids_and_bad_padding_idx_are_rejected():
    with pytest.raises(ember.DTypeError, match="integers"):
        F.embedding(ember.tensor([0.0, 1.0]), ember.ones((3, 2)))
    with pytest.raises(ember.EmberError, match="padding_idx"):
        ember.nn.Embedding(4, 2, padding_idx=4)
