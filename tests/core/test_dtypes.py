"""Type promotion (Array API table within kinds, ember's rule across kinds) and dtype utils."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ember
from ember._core import dtypes

# The Array API 2023.12 promotion table, written out independently of the implementation
# (u = unsigned, i = signed, f = floating; the number is the bit width).
_TABLE_TEXT = """
b,b=b  i8,i8=i8  i8,i16=i16  i8,i32=i32  i8,i64=i64  i16,i16=i16  i16,i32=i32  i16,i64=i64
i32,i32=i32  i32,i64=i64  i64,i64=i64  u8,u8=u8  u8,u16=u16  u8,u32=u32  u8,u64=u64
u16,u16=u16  u16,u32=u32  u16,u64=u64  u32,u32=u32  u32,u64=u64  u64,u64=u64
i8,u8=i16  i8,u16=i32  i8,u32=i64  i16,u8=i16  i16,u16=i32  i16,u32=i64  i32,u8=i32
i32,u16=i32  i32,u32=i64  i64,u8=i64  i64,u16=i64  i64,u32=i64
f16,f16=f16  f16,f32=f32  f16,f64=f64  f32,f32=f32  f32,f64=f64  f64,f64=f64
"""
_NAMES = {"b": "bool", "i8": "int8", "i16": "int16", "i32": "int32", "i64": "int64",
          "u8": "uint8", "u16": "uint16", "u32": "uint32", "u64": "uint64",
          "f16": "float16", "f32": "float32", "f64": "float64"}
TABLE = {}
for entry in _TABLE_TEXT.split():
    pair, result = entry.split("=")
    left, right = pair.split(",")
    TABLE[(_NAMES[left], _NAMES[right])] = _NAMES[result]
    TABLE[(_NAMES[right], _NAMES[left])] = _NAMES[result]

NUMERIC = [d.name for d in dtypes.ALL_DTYPES]
ADD_LIKE = [ember.add, ember.multiply, ember.subtract, ember.maximum]


def _sample(name, shape):
    if name == "bool":
        return ember.asarray(np.ones(shape, bool))
    return ember.asarray(np.ones(shape, dtype=dtypes.as_dtype(name).np))


@pytest.mark.parametrize("pair", sorted(TABLE), ids=lambda p: f"{p[0]}-{p[1]}")
def test_array_api_promotion_table(pair):
    left, right = pair
    assert ember.result_type(left, right) == TABLE[pair]
    if "bool" in pair:
        return  # arithmetic on bools is covered by logical ops
    out = ember.add(_sample(left, (2,)), _sample(right, (2,)))
    assert out.dtype == TABLE[pair]


@pytest.mark.parametrize("integer", ["int8", "int32", "uint8", "int64", "bool"])
@pytest.mark.parametrize("floating", ["float16", "bfloat16", "float32", "float64"])
def test_integer_with_float_gives_the_float(integer, floating):
    assert ember.result_type(integer, floating) == floating
    assert ember.result_type(floating, "float16" if floating == "bfloat16" else floating) in (
        floating, "float32")


def test_float16_with_bfloat16_gives_float32():
    assert ember.result_type(ember.float16, ember.bfloat16) == ember.float32


def test_python_scalars_are_weak():
    x = ember.ones(2, dtype=ember.float16)
    assert (x * 2.5).dtype == ember.float16
    assert (ember.ones(2, dtype=ember.int8) + 3).dtype == ember.int8
    assert (ember.ones(2, dtype=ember.int8) * 0.5).dtype == ember.float32
    assert (ember.ones(2, dtype=ember.bfloat16) + 1.5).dtype == ember.bfloat16
    assert (ember.tensor([True]) + 1).dtype == ember.int64


def test_uint64_with_int64_is_refused():
    with pytest.raises(ember.DTypeError, match="uint64"):
        ember.result_type(ember.uint64, ember.int64)


@settings(max_examples=150, deadline=None)
@given(left=st.sampled_from(NUMERIC), right=st.sampled_from(NUMERIC),
       function=st.sampled_from(ADD_LIKE))
def test_promotion_property_symmetric_and_matches_result(left, right, function):
    try:
        expected = ember.result_type(left, right)
    except ember.DTypeError:
        return
    assert ember.result_type(right, left) == expected
    if "bool" in (left, right) and function in (ember.subtract,):
        return
    out = function(_sample(left, (3,)), _sample(right, (1,)))
    assert out.dtype == expected
    # promotion never loses the kind: a float operand always gives a float result
    if dtypes.as_dtype(left).kind == "f" or dtypes.as_dtype(right).kind == "f":
        assert out.dtype.kind == "f"


_shapes = st.lists(st.integers(1, 4), min_size=0, max_size=4).map(tuple)


@st.composite
def broadcastable_pair(draw):
    shape = draw(_shapes)
    other = []
    for dim in shape[draw(st.integers(0, len(shape))):]:
        other.append(draw(st.sampled_from([dim, 1])))
    return shape, tuple(other)


@settings(max_examples=100, deadline=None)
@given(shapes=broadcastable_pair(), swap=st.booleans())
def test_broadcasting_matches_numpy_and_grads_reduce(shapes, swap):
    a_shape, b_shape = shapes[::-1] if swap else shapes
    rng = np.random.default_rng(0)
    a_np, b_np = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    a = ember.tensor(a_np, requires_grad=True)
    b = ember.tensor(b_np, requires_grad=True)
    out = a * b + b
    np.testing.assert_allclose(out.numpy(), a_np * b_np + b_np)
    out.sum().backward()
    assert a.grad.shape == a_shape and b.grad.shape == b_shape
    full = np.broadcast_shapes(a_shape, b_shape)
    expected_a = np.broadcast_to(b_np, full).copy()
    lead = len(full) - len(a_shape)
    expected_a = expected_a.sum(axis=tuple(range(lead)))
    expected_a = expected_a.sum(axis=tuple(i for i, d in enumerate(a_shape) if d == 1),
                                keepdims=True)
    np.testing.assert_allclose(a.grad.numpy(), expected_a.reshape(a_shape))


@settings(max_examples=60, deadline=None)
@given(a=_shapes, b=_shapes)
def test_incompatible_shapes_raise_shape_error(a, b):
    try:
        np.broadcast_shapes(a, b)
    except ValueError:
        with pytest.raises(ember.ShapeError):
            ember.add(ember.ones(a), ember.ones(b))
    else:
        assert ember.add(ember.ones(a), ember.ones(b)).shape == np.broadcast_shapes(a, b)


def test_dtype_utilities():
    assert ember.finfo(ember.float32).eps == np.finfo(np.float32).eps
    assert ember.finfo(ember.bfloat16).bits == 16
    assert ember.iinfo(ember.int8).max == 127
    assert ember.can_cast(ember.int8, ember.int32) and not ember.can_cast(ember.float32,
                                                                            ember.int32)
    assert ember.isdtype(ember.float16, "real floating")
    assert ember.isdtype(ember.uint8, ("bool", "unsigned integer"))
    assert ember.float32 == "float32" and ember.float32 == np.float32
    with pytest.raises(ember.DTypeError):
        ember.finfo(ember.int32)
