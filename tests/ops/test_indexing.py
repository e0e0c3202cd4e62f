"""Indexing behaviour the op table cannot express: setitem, errors, accumulation, NumPy keys."""
from __future__ import annotations

import numpy as np
import pytest

import ember
from ember._core.primitive import STATE
from ember.ops.indexing import IndexOutOfRange, InvalidIndex, index_put, setitem
from ember.ops.scatter import (
    gather,
    index_add,
    masked_fill,
    pad,
    scatter_add,
    take,
    take_along_axis,
)

HERE = "test_indexing.py"
A = np.arange(60, dtype=np.float64).reshape(3, 4, 5)

KEYS = [
    (0,), (-1,), (slice(None, None, -1),), (Ellipsis,), (None,), (),
    (Ellipsis, None), (None, Ellipsis, 1), (1, None, slice(1, 3), Ellipsis),
    (Ellipsis, -1, None), (slice(None), [0, 2], Ellipsis, [1, -1]),
    ([0, 2], Ellipsis, [1, 1]), (slice(None), [0, 1], [1, 2]), ([[0, 1], [2, 2]],),
    ([2, 0], None, [1, 3]), (1, slice(None), [0, 4, 4]), (Ellipsis, [4, 0, 4]),
    (np.array([True, False, True]),), (slice(None), A[0, :, 0] > 10),
    (A[..., 0] > 20, [1, 2, 3, 4, 0, 1, 2][:int((A[..., 0] > 20).sum())]),
    (slice(None), np.array([[True, False, True, True, False]] * 4)),
    ([], Ellipsis), (np.array(1), slice(None), 2), (slice(-100, 100, 3),),
]


@pytest.mark.parametrize("key", KEYS, ids=[str(i) for i in range(len(KEYS))])
def test_getitem_matches_numpy_and_scatters_gradient(key):
    x = ember.tensor(A, requires_grad=True)
    out = x[key]
    expected = A[key]
    assert out.shape == expected.shape
    np.testing.assert_array_equal(out.numpy(), expected)
    cotangent = np.random.default_rng(0).standard_normal(expected.shape)
    out.backward(ember.tensor(cotangent))
    grad = np.zeros_like(A)
    np.add.at(grad, key, cotangent)
    np.testing.assert_allclose(x.grad.numpy(), grad)


def test_tensor_keys_match_list_keys():
    x = ember.tensor(A)
    rows = ember.tensor([2, 0, -1])
    np.testing.assert_array_equal(x[rows, 1].numpy(), A[[2, 0, -1], 1])
    np.testing.assert_array_equal(x[x[:, 0, 0] > 10].numpy(), A[A[:, 0, 0] > 10])
    np.testing.assert_array_equal(x[ember.tensor(1), ember.tensor(2)].numpy(), A[1, 2])


def test_duplicate_indices_accumulate_in_gradient():
    x = ember.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x[[0, 0, 2, 0]] * ember.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [7.0, 0.0, 3.0])


def test_zero_d_results_and_negative_indices():
    x = ember.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    y = x[-1, -2]
    assert y.shape == () and y.item() == 3.0
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 0], [1, 0]])
    scalar = ember.tensor(5.0)
    assert scalar[()].shape == () and scalar[None].shape == (1,) and scalar[...].shape == ()


def test_iteration_yields_rows_and_refuses_0d():
    rows = list(ember.arange(6).reshape(3, 2))
    assert [r.tolist() for r in rows] == [[0, 1], [2, 3], [4, 5]]
    with pytest.raises(TypeError, match="0-d"):
        iter(ember.tensor(1.0))


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16", "int64", "int8"])
@pytest.mark.parametrize("size", [4, 1000])  # many and few repeats
def test_accumulating_put_matches_numpy(dtype, size):
    rng = np.random.default_rng(3)
    index = rng.integers(0, size, 40)
    values = rng.integers(-3, 4, 40)
    x = ember.zeros(size, dtype=getattr(ember, dtype))
    out = index_put(x, (ember.tensor(index),), ember.tensor(values).astype(x.dtype),
                    accumulate=True)
    expected = np.zeros(size)
    np.add.at(expected, index, values)
    np.testing.assert_array_equal(out.astype(ember.float64).numpy(), expected)


def test_integer_accumulation_is_exact_for_large_values():
    big = 2**62
    out = index_put(ember.tensor([big, 0]), (ember.tensor([0, 0, 1]),),
                    ember.tensor([1, 2, 3]), accumulate=True)
    assert out.tolist() == [big + 3, 3]


def test_setitem_writes_in_place_with_numpy_semantics():
    x = ember.zeros((3, 4))
    alias = x
    x[0] = 1.0
    x[1, [0, 2]] = ember.tensor([5.0, 6.0])
    x[x > 5] = -1.0
    x[..., -1] = ember.tensor([7.0, 8.0, 9.0])
    expected = np.zeros((3, 4))
    expected[0] = 1
    expected[1, [0, 2]] = [5, 6]
    expected[expected > 5] = -1
    expected[..., -1] = [7, 8, 9]
    assert alias is x
    np.testing.assert_array_equal(x.numpy(), expected)


def test_setitem_through_a_view_and_with_casts():
    x = ember.zeros((2, 3), dtype=ember.int64)
    row = x[1]
    row[1:] = 2.7  # cast like NumPy
    assert x.tolist() == [[0, 0, 0], [0, 2, 2]]


def test_setitem_refuses_tensors_that_require_grad():
    x = ember.zeros(3, requires_grad=True)
    with pytest.raises(ember.EmberError, match="requires grad") as info:
        x[0] = 1.0
    assert HERE in str(info.value) and "index_put" in str(info.value)
    with ember.no_grad():
        x[0] = 1.0
    assert x.tolist() == [1.0, 0.0, 0.0]
    target = ember.zeros(3)
    with pytest.raises(ember.EmberError, match="value requires grad"):
        target[1] = ember.tensor(2.0, requires_grad=True)


def test_setitem_defers_to_an_active_tracer(monkeypatch):
    calls = []

    class Recorder:
        def setitem(self, target, key, value):
            calls.append((target, key, value))

    x = ember.zeros(3)
    monkeypatch.setattr(STATE, "tracer", Recorder())
    x[1] = 2.0
    monkeypatch.setattr(STATE, "tracer", None)
    assert calls == [(x, 1, 2.0)] and x.tolist() == [0.0, 0.0, 0.0]


def test_setitem_shape_mismatch_is_a_shape_error():
    x = ember.zeros((2, 3))
    with pytest.raises(ember.ShapeError, match=HERE):
        x[0] = ember.ones(4)


def test_index_put_is_out_of_place_and_differentiable():
    x = ember.zeros(4, requires_grad=True)
    values = ember.tensor([1.0, 2.0], requires_grad=True)
    out = index_put(x, (ember.tensor([3, 1]),), values)
    assert x.tolist() == [0.0] * 4 and out.tolist() == [0.0, 2.0, 0.0, 1.0]
    (out * ember.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 0.0, 3.0, 0.0])
    np.testing.assert_array_equal(values.grad.numpy(), [4.0, 2.0])


def test_scatter_add_gradient_uses_only_the_index_block_of_src():
    src = ember.ones((3, 2), requires_grad=True)
    out = scatter_add(ember.zeros(2), 0, ember.tensor([1, 1]), src[:, 0])
    out.sum().backward()
    assert out.tolist() == [0.0, 2.0]
    np.testing.assert_array_equal(src.grad.numpy(), [[1, 0], [1, 0], [0, 0]])


def test_methods_use_pytorch_signatures():
    x = ember.tensor([[1.0, 2.0], [3.0, 4.0]])
    index = ember.tensor([[1, 0], [0, 0]])
    assert x.gather(1, index).tolist() == [[2.0, 1.0], [3.0, 3.0]]
    assert x.gather(dim=0, index=index).tolist() == [[3.0, 2.0], [1.0, 2.0]]
    assert x.scatter_add(0, index, x).tolist() == [[4.0, 8.0], [4.0, 4.0]]
    assert x.index_add(1, ember.tensor([0, 0]), x, alpha=2).tolist() == [[7.0, 2.0],
                                                                         [17.0, 4.0]]
    assert x.masked_fill(x > 2, 0.0).tolist() == [[1.0, 2.0], [0.0, 0.0]]
    assert x.take(ember.tensor([3, 0])).tolist() == [4.0, 1.0]
    assert x.take_along_axis(ember.tensor([[1], [0]]), 1).tolist() == [[2.0], [3.0]]
    assert x.index_put((ember.tensor([0]),), ember.tensor(9.0)).tolist() == [[9.0, 9.0],
                                                                            [3.0, 4.0]]


OUT_OF_RANGE = [
    ("getitem", lambda x: x[3]),
    ("getitem", lambda x: x[:, -5]),
    ("getitem", lambda x: x[[0, 3]]),
    ("getitem", lambda x: x[ember.tensor([1]), ember.tensor([4])]),
    ("setitem", lambda x: setitem(x, ([0, 7],), 1.0)),
    ("take", lambda x: take(x, ember.tensor([12]))),
    ("take", lambda x: take(x, [-5], axis=1)),
    ("take_along_axis", lambda x: take_along_axis(x, ember.tensor([[4]]), 1)),
    ("gather", lambda x: gather(x, 1, ember.tensor([[0, 4]]))),
    ("scatter_add", lambda x: scatter_add(x, 0, ember.tensor([[3]]), ember.ones((1, 1)))),
    ("index_put", lambda x: index_put(x, (ember.tensor([3]),), 1.0)),
    ("index_add", lambda x: index_add(x, 1, ember.tensor([9]), ember.ones((3, 1)))),
]


@pytest.mark.parametrize("op, call", OUT_OF_RANGE, ids=[f"{op}-{i}" for i, (op, _) in
                                                        enumerate(OUT_OF_RANGE)])
def test_out_of_range_names_op_index_size_and_line(op, call):
    x = ember.zeros((3, 4))
    with pytest.raises(IndexOutOfRange) as info:
        call(x)
    message = str(info.value)
    assert message.startswith(f"{op}: index ") and "of size" in message
    assert HERE in message
    assert isinstance(info.value, IndexError) and isinstance(info.value, ember.EmberError)


def test_invalid_keys_raise_index_errors():
    x = ember.zeros((3, 4))
    with pytest.raises(InvalidIndex, match="too many indices"):
        x[0, 0, 0]
    with pytest.raises(InvalidIndex, match="integers or booleans"):
        x[ember.tensor([0.5])]
    with pytest.raises(InvalidIndex, match="does not match"):
        x[ember.tensor([True, False])]
    with pytest.raises(InvalidIndex, match="one ellipsis"):
        x[..., ...]
    with pytest.raises(InvalidIndex, match="cannot index with str"):
        x["a"]
    with pytest.raises(IndexError, match=HERE):
        x[1:2:0]


def test_op_specific_shape_errors():
    x = ember.zeros((3, 4))
    with pytest.raises(ember.ShapeError, match="gather"):
        gather(x, 0, ember.zeros((1, 5), dtype=ember.int64))
    with pytest.raises(ember.ShapeError, match="index_add"):
        index_add(x, 0, ember.tensor([0]), ember.ones((2, 4)))
    with pytest.raises(ember.ShapeError, match="index_put"):
        index_put(x, (ember.tensor([0, 1]),), ember.ones((3, 4)))
    with pytest.raises(ember.DTypeError, match="masked_fill"):
        masked_fill(x, ember.ones(4), 0.0)
    with pytest.raises(ember.ShapeError, match="pad"):
        pad(x, ((1, 1), (1, 1), (1, 1)))
    with pytest.raises(ember.EmberError, match="unknown mode"):
        pad(x, 1, mode="mirror")


@pytest.mark.parametrize("mode", ["reflect", "symmetric", "edge", "wrap"])
def test_pad_wider_than_the_axis_matches_numpy(mode):
    a = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(pad(ember.tensor(a), ((3, 5), (7, 4)), mode).numpy(),
                                  np.pad(a, ((3, 5), (7, 4)), mode))


def test_pad_gradient_accumulates_over_copies():
    x = ember.tensor([1.0, 2.0, 3.0], requires_grad=True)
    pad(x, (2, 2), mode="edge").sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 1.0, 3.0])
