"""What the op table cannot express for ember/ops/search.py: ties, data-dependent shapes,
Tensor methods and errors."""
from __future__ import annotations

import os

import numpy as np
import pytest

import ember
from ember.ops import search

HERE = os.path.basename(__file__)


# ---- sorting ----------------------------------------------------------------------------------
def test_argsort_is_stable_in_both_directions():
    x = ember.tensor([2, 1, 2, 3, 1, 2])
    assert search.argsort(x).tolist() == [1, 4, 0, 2, 5, 3]
    # descending keeps equal elements in their original order (not reversed)
    assert search.argsort(x, descending=True).tolist() == [3, 0, 2, 5, 1, 4]
    assert search.argsort(x, descending=True, stable=False).tolist() == [3, 0, 2, 5, 1, 4]


def test_argsort_descending_ties_along_first_axis():
    x = ember.tensor([[1.0, 5.0], [1.0, 5.0], [0.0, 7.0]])
    assert search.argsort(x, axis=0, descending=True).tolist() == [[0, 2], [1, 0], [2, 1]]


def test_sort_puts_nan_last_ascending_and_first_descending():
    x = ember.tensor([2.0, float("nan"), 1.0])
    np.testing.assert_array_equal(search.sort(x).numpy(), [1.0, 2.0, np.nan])
    np.testing.assert_array_equal(search.sort(x, descending=True).numpy(), [np.nan, 2.0, 1.0])


def test_sort_gradient_follows_each_value_home():
    x = ember.tensor([3.0, 1.0, 2.0], requires_grad=True)
    (search.sort(x, descending=True) * ember.tensor([1.0, 10.0, 100.0])).sum().backward()
    assert x.grad.tolist() == [1.0, 100.0, 10.0]


def test_topk_gradient_reaches_only_the_picked_elements():
    x = ember.tensor([[1.0, 4.0, 3.0], [9.0, 0.0, 5.0]], requires_grad=True)
    values, indices = search.topk(x, 2)
    assert indices.tolist() == [[1, 2], [0, 2]] and not indices.requires_grad
    values.sum().backward()
    assert x.grad.tolist() == [[0.0, 1.0, 1.0], [1.0, 0.0, 1.0]]


def test_topk_and_kthvalue_return_named_fields():
    x = ember.tensor([5.0, 1.0, 4.0, 2.0])
    result = search.topk(x, 3, largest=False)
    assert result.values.tolist() == [1.0, 2.0, 4.0] and result.indices.tolist() == [1, 3, 2]
    kth = search.kthvalue(x.reshape(2, 2), 1, axis=1, keepdims=True)
    assert kth.values.tolist() == [[1.0], [2.0]] and kth.indices.tolist() == [[1], [1]]


def test_zero_dim_inputs_sort_as_one_element():
    x = ember.tensor(3.0)
    assert search.sort(x).shape == () and search.argsort(x).item() == 0
    assert search.topk(x, 1).values.item() == 3.0
    assert search.argmax(x).item() == 0 and search.argmax(x, axis=0).shape == ()


# ---- searching --------------------------------------------------------------------------------
def test_argmax_outputs_int64_without_grad():
    x = ember.tensor([[1.0, 7.0], [8.0, 2.0]], requires_grad=True)
    out = search.argmax(x, axis=0)
    assert out.dtype == ember.int64 and not out.requires_grad and out.tolist() == [1, 0]
    assert search.argmin(x, keepdims=True).shape == (1, 1)


@pytest.mark.parametrize("shape", [(4,), (3, 4), (2, 3, 4), (0, 3)])
def test_nonzero_matches_numpy(shape):
    data = np.random.default_rng(0).integers(0, 2, size=shape).astype(np.float32)
    got = search.nonzero(ember.asarray(data))
    expected = np.nonzero(data)
    for index, ref in zip(got, expected, strict=True):
        assert index.dtype == ember.int64
        np.testing.assert_array_equal(index.numpy(), ref)


def test_nonzero_of_all_zeros_is_empty():
    rows, cols = search.nonzero(ember.zeros((2, 3)))
    assert rows.shape == (0,) and cols.shape == (0,)


@pytest.mark.parametrize("side", ["left", "right"])
def test_searchsorted_sides(side):
    haystack = np.array([1.0, 2.0, 2.0, 2.0, 5.0])
    queries = np.array([[0.0, 2.0], [3.0, 9.0]])
    got = search.searchsorted(ember.asarray(haystack), ember.asarray(queries), side=side)
    np.testing.assert_array_equal(got.numpy(), np.searchsorted(haystack, queries, side=side))
    assert got.dtype == ember.int64


def test_searchsorted_promotes_and_accepts_a_python_scalar():
    haystack = ember.tensor([1, 2, 2, 4])
    assert search.searchsorted(haystack, 2, side="right").item() == 3
    assert search.searchsorted(haystack, 2.5).item() == 3
    assert search.searchsorted(haystack, ember.tensor([1.5, 4.0])).tolist() == [1, 3]


def test_count_nonzero():
    x = ember.tensor([[0.0, 1.0, 2.0], [0.0, 0.0, 3.0]])
    assert search.count_nonzero(x).item() == 3
    assert search.count_nonzero(x, axis=1).tolist() == [2, 1]
    assert search.count_nonzero(x, axis=0, keepdims=True).shape == (1, 3)


# ---- Tensor methods ---------------------------------------------------------------------------
def test_methods_accept_torch_and_array_api_spellings():
    x = ember.tensor([[3.0, 1.0, 2.0], [0.0, 5.0, 4.0]])
    assert x.argmax(dim=1, keepdim=True).tolist() == [[0], [1]]
    assert x.argmin(axis=0).tolist() == [1, 0, 0]
    assert x.sort(dim=0, descending=True).tolist() == [[3.0, 5.0, 4.0], [0.0, 1.0, 2.0]]
    assert x.argsort().tolist() == [[1, 2, 0], [0, 2, 1]]
    assert x.topk(1, dim=0).indices.tolist() == [[0, 1, 1]]
    assert x.kthvalue(2, dim=1).values.tolist() == [2.0, 4.0]
    assert x.count_nonzero(dim=1).tolist() == [3, 2]
    assert [t.tolist() for t in x.nonzero()] == [[0, 0, 0, 1, 1], [0, 1, 2, 1, 2]]
    assert x.nonzero(as_tuple=False).shape == (5, 2)
    values, counts = ember.tensor([2, 2, 7]).unique(return_counts=True)
    assert values.tolist() == [2, 7] and counts.tolist() == [2, 1]


# ---- errors -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name, call", [
    ("argmax", lambda x: search.argmax(x, axis=2)),
    ("argmin", lambda x: search.argmin(x, axis=-3)),
    ("sort", lambda x: search.sort(x, axis=2)),
    ("argsort", lambda x: search.argsort(x, axis=5)),
    ("topk", lambda x: search.topk(x, 1, axis=2)),
    ("count_nonzero", lambda x: search.count_nonzero(x, axis=2)),
])
def test_bad_axis_names_op_and_caller(name, call):
    with pytest.raises(ember.ShapeError, match=rf"{name}: axis") as info:
        call(ember.ones((2, 3)))
    assert HERE in str(info.value)


def test_argmax_of_empty_raises_an_ember_error():
    with pytest.raises(ember.ShapeError, match="argmax.*empty") as info:
        search.argmax(ember.zeros((0,)))
    assert HERE in str(info.value)
    with pytest.raises(ember.ShapeError, match="argmin.*axis 1 is empty"):
        search.argmin(ember.zeros((3, 0)), axis=1)
    assert search.argmax(ember.zeros((0, 3)), axis=1).shape == (0,)  # nothing to reduce: fine


def test_other_bad_calls():
    with pytest.raises(ember.ShapeError, match="topk: k=4") as info:
        search.topk(ember.ones(3), 4)
    assert HERE in str(info.value)
    with pytest.raises(ember.ShapeError, match="nonzero.*0-d"):
        search.nonzero(ember.tensor(1.0))
    with pytest.raises(ember.ShapeError, match="searchsorted: x1 must be 1-d"):
        search.searchsorted(ember.ones((2, 2)), ember.ones(2))
    with pytest.raises(ember.EmberError, match="side must be"):
        search.searchsorted(ember.ones(2), ember.ones(2), side="middle")
    with pytest.raises(ember.ShapeError, match="kthvalue: k=0"):
        search.kthvalue(ember.ones(3), 0)
