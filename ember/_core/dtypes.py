"""Data types and the Array API type-promotion rules.

A `DType` wraps one NumPy dtype (bfloat16 comes from `ml_dtypes`). Promotion follows the
Array API table within a kind (bool, signed, unsigned, floating); across kinds ember does
what PyTorch users expect: integer or bool with a floating dtype gives that floating dtype
(never a float64 upcast), and signed with unsigned gives the smallest signed type that
holds both (int64 with uint64 is refused: no integer type holds both).
"""
from __future__ import annotations

import builtins

import ml_dtypes
import numpy as np

from ember._core.errors import DTypeError


class DType:
    """An ember data type; compares equal to its name and to the matching NumPy dtype."""

    __slots__ = ("name", "np", "kind", "itemsize", "rank")

    def __init__(self, name: str, np_dtype, kind: str, rank: int):
        self.name = name
        self.np = np.dtype(np_dtype)
        self.kind = kind  # 'b' bool, 'i' signed, 'u' unsigned, 'f' floating
        self.itemsize = self.np.itemsize
        self.rank = rank

    @property
    def is_floating_point(self) -> bool:
        return self.kind == "f"

    @property
    def is_integer(self) -> bool:
        return self.kind in "iu"

    def __repr__(self):
        return f"ember.{self.name}"

    __str__ = __repr__

    def __eq__(self, other):
        if isinstance(other, DType):
            return self is other
        try:
            return self is as_dtype(other)
        except (TypeError, DTypeError):
            return NotImplemented

    def __hash__(self):
        return hash(self.name)

    def __reduce__(self):
        return (as_dtype, (self.name,))


bool_ = DType("bool", np.bool_, "b", 0)
int8 = DType("int8", np.int8, "i", 1)
int16 = DType("int16", np.int16, "i", 2)
int32 = DType("int32", np.int32, "i", 3)
int64 = DType("int64", np.int64, "i", 4)
uint8 = DType("uint8", np.uint8, "u", 1)
uint16 = DType("uint16", np.uint16, "u", 2)
uint32 = DType("uint32", np.uint32, "u", 3)
uint64 = DType("uint64", np.uint64, "u", 4)
float16 = DType("float16", np.float16, "f", 1)
bfloat16 = DType("bfloat16", ml_dtypes.bfloat16, "f", 1)
float32 = DType("float32", np.float32, "f", 2)
float64 = DType("float64", np.float64, "f", 3)

ALL_DTYPES = (bool_, int8, int16, int32, int64, uint8, uint16, uint32, uint64,
              float16, bfloat16, float32, float64)
FLOATING = (float16, bfloat16, float32, float64)
INTEGER = (int8, int16, int32, int64, uint8, uint16, uint32, uint64)

_BY_NP = {d.np: d for d in ALL_DTYPES}
_BY_NAME = {d.name: d for d in ALL_DTYPES}
_BY_NAME.update({"bool_": bool_, "float": float32, "half": float16, "double": float64,
                 "int": int64, "long": int64})
_SIGNED_BY_RANK = {1: int8, 2: int16, 3: int32, 4: int64}
_FLOAT_BY_RANK = {1: float16, 2: float32, 3: float64}

default_float = float32
default_int = int64


def from_numpy_dtype(np_dtype) -> DType:
    """The ember dtype of a NumPy dtype (fast path used by `Tensor.dtype`)."""
    try:
        return _BY_NP[np_dtype]
    except KeyError:
        raise DTypeError(f"NumPy dtype {np_dtype} has no ember equivalent; "
                         f"ember supports {', '.join(d.name for d in ALL_DTYPES)}") from None


def as_dtype(value) -> DType:
    """Turn a DType, a name ('float32'), a NumPy dtype or a Python type into a DType."""
    if isinstance(value, DType):
        return value
    if isinstance(value, str):
        try:
            return _BY_NAME[value]
        except KeyError:
            raise DTypeError(f"unknown dtype name {value!r}; expected one of "
                             f"{', '.join(d.name for d in ALL_DTYPES)}") from None
    if value is builtins.float:
        return default_float
    if value is builtins.int:
        return default_int
    if value is builtins.bool:
        return bool_
    try:
        np_dtype = np.dtype(value)
    except TypeError:
        raise DTypeError(f"cannot interpret {value!r} as an ember dtype") from None
    return from_numpy_dtype(np_dtype)


def promote_types(a: DType, b: DType) -> DType:
    """The dtype of a binary operation between arrays of dtypes `a` and `b`."""
    if a is b:
        return a
    if a.kind == b.kind:
        if a.kind == "f" and a.rank == b.rank:  # float16 with bfloat16
            return float32
        return a if a.rank > b.rank else b
    if a.kind == "f" or b.kind == "f":
        return a if a.kind == "f" else b
    if a.kind == "b" or b.kind == "b":
        return b if a.kind == "b" else a
    signed, unsigned = (a, b) if a.kind == "i" else (b, a)
    if signed.rank > unsigned.rank:
        return signed
    if unsigned.rank == 4:
        raise DTypeError(f"no integer dtype holds both {a.name} and {b.name}; "
                         f"cast one of them explicitly with .astype()")
    return _SIGNED_BY_RANK[unsigned.rank + 1]


def result_type(*values) -> DType:
    """Array API `result_type`: promote the dtypes of tensors/dtypes; Python scalars are weak."""
    dtypes = []
    scalars = []
    for value in values:
        if isinstance(value, (builtins.bool, builtins.int, builtins.float)):
            scalars.append(value)
        elif hasattr(value, "dtype"):
            dtypes.append(as_dtype(value.dtype))
        else:
            dtypes.append(as_dtype(value))
    if not dtypes:
        raise DTypeError("result_type needs at least one tensor or dtype")
    out = dtypes[0]
    for dtype in dtypes[1:]:
        out = promote_types(out, dtype)
    for scalar in scalars:
        out = promote_scalar(out, scalar)
    return out


def promote_scalar(dtype: DType, scalar) -> DType:
    """Dtype of `array op scalar`: the array's dtype, unless the scalar is of a higher kind."""
    if isinstance(scalar, builtins.bool):
        return dtype
    if isinstance(scalar, builtins.int):
        return default_int if dtype.kind == "b" else dtype
    if isinstance(scalar, builtins.float):
        return dtype if dtype.kind == "f" else default_float
    raise DTypeError(f"unsupported scalar {scalar!r} of type {type(scalar).__name__}")


def can_cast(from_, to) -> bool:
    """True when `from_` promotes to `to` without changing kind downward (Array API)."""
    from_dtype = as_dtype(getattr(from_, "dtype", from_))
    to_dtype = as_dtype(to)
    try:
        return promote_types(from_dtype, to_dtype) is to_dtype
    except DTypeError:
        return False


def isdtype(dtype, kind) -> bool:
    """Array API `isdtype`: kind is a DType, a kind name, or a tuple of those."""
    dtype = as_dtype(dtype)
    if isinstance(kind, tuple):
        return any(isdtype(dtype, k) for k in kind)
    if isinstance(kind, DType):
        return dtype is kind
    kinds = {
        "bool": "b", "signed integer": "i", "unsigned integer": "u", "integral": "iu",
        "real floating": "f", "numeric": "iuf", "complex floating": "",
    }
    if kind not in kinds:
        raise DTypeError(f"isdtype: unknown kind {kind!r}; expected one of {sorted(kinds)}")
    return dtype.kind in kinds[kind] if kinds[kind] else False


class finfo:
    """Machine limits of a floating dtype: bits, eps, max, min, smallest_normal, dtype."""

    def __init__(self, dtype):
        dtype = as_dtype(getattr(dtype, "dtype", dtype))
        if dtype.kind != "f":
            raise DTypeError(f"finfo expects a floating dtype, got {dtype.name}")
        info = ml_dtypes.finfo(dtype.np) if dtype is bfloat16 else np.finfo(dtype.np)
        self.bits = info.bits
        self.eps = float(info.eps)
        self.max = float(info.max)
        self.min = float(info.min)
        self.smallest_normal = float(info.smallest_normal)
        self.dtype = dtype


class iinfo:
    """Machine limits of an integer dtype: bits, max, min, dtype."""

    def __init__(self, dtype):
        dtype = as_dtype(getattr(dtype, "dtype", dtype))
        if dtype.kind not in "iu":
            raise DTypeError(f"iinfo expects an integer dtype, got {dtype.name}")
        info = np.iinfo(dtype.np)
        self.bits = info.bits
        self.max = int(info.max)
        self.min = int(info.min)
        self.dtype = dtype
