"""Tensor creation: from data, constant fills, ranges, identity, triangles, meshgrid."""
from __future__ import annotations

import numpy as np

from ember._core import dtypes
from ember._core.device import CPU, device_of_array
from ember._core.device import device as as_device
from ember._core.errors import DTypeError, user_frame
from ember._core.tensor import Tensor
from ember.ops import movement
from ember.ops._util import as_tensor


def _finish(data, device, requires_grad) -> Tensor:
    target = as_device(device) if device is not None else CPU
    if target is not CPU:
        with target.xp.cuda.Device(target.index):
            data = target.xp.asarray(data)
    tensor = Tensor(data, target)
    if requires_grad:
        tensor.requires_grad_(True)
    return tensor


def _np_dtype(dtype, default=None):
    if dtype is None:
        return None if default is None else default.np
    return dtypes.as_dtype(dtype).np


def tensor(data, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of `data` (nested lists, NumPy arrays, scalars, Tensors).

    Python floats become float32 and ints int64, as in PyTorch.

    >>> import ember
    >>> ember.tensor([[1, 2], [3, 4]]).dtype
    ember.int64
    """
    if isinstance(data, Tensor):
        data = data.cpu()._data
    array = np.array(data, dtype=_np_dtype(dtype), copy=True)
    if dtype is None and array.dtype == np.float64 and not _is_float64_source(data):
        array = array.astype(np.float32)
    if array.dtype not in _SUPPORTED:
        raise DTypeError(f"cannot make a tensor from data of NumPy dtype {array.dtype} at "
                         f"{user_frame()}")
    return _finish(array, device, requires_grad)


_SUPPORTED = {d.np for d in dtypes.ALL_DTYPES}


def _is_float64_source(data) -> bool:
    return isinstance(data, (np.ndarray, np.generic)) and data.dtype == np.float64


def asarray(obj, /, *, dtype=None, device=None, copy=None) -> Tensor:
    """Array API `asarray`: no copy when `obj` already is a tensor/array of that dtype."""
    if isinstance(obj, Tensor):
        out = obj if dtype is None else obj.to(dtype)
        if device is not None:
            out = out.to(device)
        return Tensor(out._data.copy(), out._device) if copy else out
    if hasattr(obj, "__cuda_array_interface__") or type(obj).__module__.startswith("cupy"):
        return Tensor(obj if dtype is None else obj.astype(_np_dtype(dtype)),
                      device_of_array(obj))
    if copy:
        return tensor(obj, dtype=dtype, device=device)
    out = as_tensor(obj, dtype=dtype)
    return out if device is None else out.to(device)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing memory with a NumPy array (changes show through both ways)."""
    if not isinstance(array, np.ndarray):
        raise DTypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    if array.dtype not in _SUPPORTED:
        raise DTypeError(f"from_numpy: unsupported dtype {array.dtype}")
    return Tensor(array, CPU)


def from_dlpack(x, /) -> Tensor:
    """Zero-copy import of any DLPack-capable array (NumPy, CuPy, PyTorch, ...)."""
    device_type, _ = x.__dlpack_device__()
    if device_type == 1:  # kDLCPU
        return Tensor(np.from_dlpack(x), CPU)
    import cupy

    array = cupy.from_dlpack(x)
    return Tensor(array, device_of_array(array))


def _filled(fill, shape, dtype, device, requires_grad, default):
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    np_dtype = _np_dtype(dtype, default)
    target = as_device(device) if device is not None else CPU
    data = fill(target.xp, shape, np_dtype)
    tensor = Tensor(data, target)
    return tensor.requires_grad_(True) if requires_grad else tensor


def zeros(shape, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of zeros (float32 unless `dtype` says otherwise)."""
    return _filled(lambda xp, s, d: xp.zeros(s, d), shape, dtype, device, requires_grad,
                   dtypes.default_float)


def ones(shape, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of ones."""
    return _filled(lambda xp, s, d: xp.ones(s, d), shape, dtype, device, requires_grad,
                   dtypes.default_float)


def empty(shape, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """An uninitialized tensor (its values are whatever memory held)."""
    return _filled(lambda xp, s, d: xp.empty(s, d), shape, dtype, device, requires_grad,
                   dtypes.default_float)


def full(shape, fill_value, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor filled with `fill_value`; its dtype follows the value's Python type."""
    if dtype is None:
        dtype = dtypes.result_type(dtypes.bool_, fill_value) if not isinstance(
            fill_value, bool) else dtypes.bool_
    return _filled(lambda xp, s, d: xp.full(s, fill_value, d), shape, dtype, device,
                   requires_grad, None)


def _like(x, dtype, device):
    return x.shape, dtype if dtype is not None else x.dtype, device if device is not None \
        else x.device


def zeros_like(x, /, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    shape, dtype, device = _like(x, dtype, device)
    return zeros(shape, dtype=dtype, device=device, requires_grad=requires_grad)


def ones_like(x, /, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    shape, dtype, device = _like(x, dtype, device)
    return ones(shape, dtype=dtype, device=device, requires_grad=requires_grad)


def empty_like(x, /, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    shape, dtype, device = _like(x, dtype, device)
    return empty(shape, dtype=dtype, device=device, requires_grad=requires_grad)


def full_like(x, /, fill_value, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    shape, dtype, device = _like(x, dtype, device)
    return full(shape, fill_value, dtype=dtype, device=device, requires_grad=requires_grad)


def arange(start, /, stop=None, step=1, *, dtype=None, device=None,
           requires_grad=False) -> Tensor:
    """Evenly spaced values in [start, stop); integers give int64, floats float32."""
    if stop is None:
        start, stop = 0, start
    if dtype is None:
        is_float = any(isinstance(v, float) for v in (start, stop, step))
        dtype = dtypes.default_float if is_float else dtypes.default_int
    target = as_device(device) if device is not None else CPU
    data = target.xp.arange(start, stop, step, dtype=dtypes.as_dtype(dtype).np)
    out = Tensor(data, target)
    return out.requires_grad_(True) if requires_grad else out


def linspace(start, stop, /, num, *, dtype=None, device=None, endpoint=True,
             requires_grad=False) -> Tensor:
    """`num` evenly spaced values from start to stop (inclusive unless endpoint=False)."""
    np_dtype = _np_dtype(dtype, dtypes.default_float)
    target = as_device(device) if device is not None else CPU
    data = target.xp.linspace(start, stop, num, endpoint=endpoint).astype(np_dtype)
    out = Tensor(data, target)
    return out.requires_grad_(True) if requires_grad else out


def eye(n_rows, n_cols=None, /, *, k=0, dtype=None, device=None, requires_grad=False):
    """Identity-like matrix with ones on diagonal k."""
    return _filled(lambda xp, s, d: xp.eye(s[0], s[1], k=k, dtype=d),
                   (n_rows, n_cols if n_cols is not None else n_rows), dtype, device,
                   requires_grad, dtypes.default_float)


def _triangle(x, k, lower: bool) -> Tensor:
    x = as_tensor(x)
    rows, cols = x.shape[-2:]
    xp = x._device.xp
    mask = xp.tri(rows, cols, k=k, dtype=bool) if lower else ~xp.tri(rows, cols, k=k - 1,
                                                                      dtype=bool)
    from ember.ops.elementwise import where

    return where(Tensor(mask, x._device), x, Tensor(xp.zeros((), x._data.dtype), x._device))


def tril(x, /, *, k=0) -> Tensor:
    """Lower triangle of the last two axes (elements above diagonal k set to zero)."""
    return _triangle(x, k, lower=True)


def triu(x, /, *, k=0) -> Tensor:
    """Upper triangle of the last two axes (elements below diagonal k set to zero)."""
    return _triangle(x, k, lower=False)


def meshgrid(*arrays, indexing="xy") -> list:
    """Coordinate grids from 1-d tensors ('xy' Cartesian or 'ij' matrix indexing)."""
    tensors = [as_tensor(a) for a in arrays]
    sizes = [t.shape[0] for t in tensors]
    if indexing == "xy" and len(tensors) >= 2:
        sizes[0], sizes[1] = sizes[1], sizes[0]
    grids = []
    for position, t in enumerate(tensors):
        axis = position
        if indexing == "xy" and len(tensors) >= 2 and position < 2:
            axis = 1 - position
        shape = [1] * len(tensors)
        shape[axis] = t.shape[0]
        grids.append(movement.broadcast_to(movement.reshape(t, shape), sizes))
    return grids
