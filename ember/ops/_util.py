"""Helpers shared by the op families: operand conversion and dtype promotion."""
from __future__ import annotations

import numpy as np

from ember._core import dtypes
from ember._core.device import CPU
from ember._core.errors import DTypeError, user_frame
from ember._core.primitive import AbstractValue
from ember._core.tensor import Tensor

_SCALARS = (bool, int, float)


def as_tensor(value, dtype=None) -> Tensor:
    """A Tensor for `value` (Tensor, ndarray, NumPy scalar or Python data), no copy if possible."""
    if isinstance(value, Tensor):
        if dtype is not None and value.dtype is not dtypes.as_dtype(dtype):
            from ember.ops.elementwise import astype

            return astype(value, dtype)
        return value
    np_dtype = dtypes.as_dtype(dtype).np if dtype is not None else None
    if np_dtype is None and type(value) is float:
        np_dtype = dtypes.default_float.np
    array = np.asarray(value, dtype=np_dtype)
    typed_source = isinstance(value, (np.ndarray, np.generic))
    if np_dtype is None and array.dtype == np.float64 and not typed_source:
        array = array.astype(dtypes.default_float.np)  # Python floats become float32
    if array.dtype not in _NUMPY_OK:
        array = _convert_unsupported(array)
    return Tensor(array, CPU)


_NUMPY_OK = {d.np for d in dtypes.ALL_DTYPES}


def _convert_unsupported(array):
    if array.dtype.kind in "US" or array.dtype == object:
        raise DTypeError(f"cannot make a tensor from data of NumPy dtype {array.dtype} "
                         f"at {user_frame()}")
    raise DTypeError(f"unsupported dtype {array.dtype} at {user_frame()}")


def cast(x: Tensor, dtype: dtypes.DType) -> Tensor:
    if x._data.dtype == dtype.np:
        return x
    from ember.ops.elementwise import astype

    return astype(x, dtype)


def binary_operands(x1, x2):
    """Bring two operands to one dtype by ember's promotion rules.

    Python scalars stay weakly typed (`x * 2` keeps x's dtype) unless the scalar is of a
    higher kind (`int_tensor * 0.5` gives the default float dtype).
    """
    t1 = isinstance(x1, Tensor)
    t2 = isinstance(x2, Tensor)
    if t1 and t2:
        if x1._data.dtype == x2._data.dtype:
            return x1, x2
        target = dtypes.promote_types(x1.dtype, x2.dtype)
        return cast(x1, target), cast(x2, target)
    if t1 and isinstance(x2, _SCALARS):
        return _with_scalar(x1, x2), _scalar_for(x1, x2)
    if t2 and isinstance(x1, _SCALARS):
        return _scalar_for(x2, x1), _with_scalar(x2, x1)
    return binary_operands(as_tensor(x1) if not t1 else x1, as_tensor(x2) if not t2 else x2)


def _with_scalar(tensor: Tensor, scalar):
    target = dtypes.promote_scalar(tensor.dtype, scalar)
    return cast(tensor, target)


def _scalar_for(tensor: Tensor, scalar):
    # NumPy promotes bfloat16 with a Python float to float32; pin the scalar's dtype instead.
    if tensor._data.dtype == dtypes.bfloat16.np:
        return np.asarray(scalar, dtype=dtypes.bfloat16.np)
    return scalar


def unary_float(x) -> Tensor:
    """Operand of a floating-only function: integers and bools become the default float."""
    if not isinstance(x, Tensor):
        x = as_tensor(x)
    if x._data.dtype.kind not in "fV":
        return cast(x, dtypes.default_float)
    return x


def aval_of(x) -> AbstractValue:
    """AbstractValue of an operand (weak scalars become 0-d of a compatible dtype)."""
    if isinstance(x, AbstractValue):
        return x
    if isinstance(x, _SCALARS):
        kind = dtypes.bool_ if isinstance(x, bool) else (
            dtypes.default_int if isinstance(x, int) else dtypes.default_float)
        return AbstractValue((), kind)
    array = np.asarray(x)
    return AbstractValue(array.shape, dtypes.from_numpy_dtype(array.dtype))



def result_dtype(x1, a: AbstractValue, x2, b: AbstractValue):
    """The dtype of a binary op on operands x1, x2 (avals a, b), NumPy 2 style: a Python
    scalar is weak and takes the array's dtype when its kind fits (int32 * 3 is int32,
    float16 * 2.0 is float16); otherwise the dtypes promote."""
    for scalar, other in ((x2, a), (x1, b)):
        if isinstance(scalar, _SCALARS) and not isinstance(x1 if scalar is x2 else x2,
                                                            _SCALARS):
            kind = other.dtype.kind
            if isinstance(scalar, bool) or (isinstance(scalar, int) and kind in "iuf") or \
                    (isinstance(scalar, float) and kind == "f"):
                return other.dtype
    return dtypes.promote_types(a.dtype, b.dtype)


def torch_axis_names(function):
    """Make a Tensor method from an Array API reduction, accepting PyTorch's `dim=`/`keepdim=`
    as well as `axis=`/`keepdims=`."""

    def method(self, axis=None, keepdims=False, *, dim=None, keepdim=None, **kwargs):
        axis = dim if dim is not None else axis
        keepdims = keepdim if keepdim is not None else keepdims
        return function(self, axis=axis, keepdims=keepdims, **kwargs)

    method.__name__ = function.__name__
    method.__doc__ = function.__doc__
    return method
