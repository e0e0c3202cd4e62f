"""Bind ember ops onto `Tensor` as operators and methods (PyTorch/NumPy-style spellings)."""
from __future__ import annotations

from ember._core import dtypes
from ember._core.errors import EmberError
from ember._core.primitive import ENGINE_OPS, STATE
from ember._core.tensor import Tensor
from ember.ops import elementwise as E
from ember.ops import indexing, linalg, search
from ember.ops import logic as L
from ember.ops import movement as M
from ember.ops import reduce as R
from ember.ops import softmax as softmax_ops
from ember.ops._util import torch_axis_names


def _swap(function):
    def swapped(self, other):
        return function(other, self)

    return swapped


def _inplace(function):
    """`x += y` and friends: write the result into x's storage.

    Allowed on tensors that need no grad, or on any tensor under `no_grad` (how optimizers
    update parameters); a tensor in a recorded graph cannot change under its users.
    """

    def method(self, other):
        if self.requires_grad and STATE.grad_enabled:
            raise EmberError("in-place update of a tensor that requires grad; wrap it in "
                             "`with ember.no_grad():` or use the out-of-place form (x = x + y)")
        result = function(self, other)
        assign(self, result)
        return self

    return method


def assign(target: Tensor, value: Tensor):
    """Write `value` into `target`'s storage (the one place in-place updates happen)."""
    if STATE.tracer is not None:
        STATE.tracer.assign(target, value)
        return
    if value._data.dtype != target._data.dtype:
        if dtypes.promote_types(target.dtype, value.dtype) is not target.dtype:
            raise EmberError(f"in-place result of dtype {value.dtype} cannot be stored in a "
                             f"tensor of dtype {target.dtype}")
    if value.shape != target.shape:
        raise EmberError(f"in-place result of shape {value.shape} cannot be stored in a "
                         f"tensor of shape {target.shape}")
    target._data[...] = value._data


def _reshape_method(self, *shape):
    if len(shape) == 1 and not isinstance(shape[0], int):
        shape = tuple(shape[0])
    return M.reshape(self, shape)


def _permute_method(self, *axes):
    if len(axes) == 1 and not isinstance(axes[0], int):
        axes = tuple(axes[0])
    return M.permute_dims(self, axes)


def _transpose_method(self, dim0=None, dim1=None):
    if dim0 is None:
        return M.permute_dims(self, tuple(reversed(range(self.ndim))))
    return M.swapaxes(self, dim0, dim1)


def _expand(self, *shape):
    if len(shape) == 1 and not isinstance(shape[0], int):
        shape = tuple(shape[0])
    lead = len(shape) - self.ndim
    shape = tuple(self.shape[i - lead] if d == -1 else d for i, d in enumerate(shape))
    return M.broadcast_to(self, shape)


def _flatten(self, start_dim=0, end_dim=-1):
    if self.ndim == 0:
        return M.reshape(self, (1,))
    start = start_dim % self.ndim
    end = end_dim % self.ndim
    return M.reshape(self, self.shape[:start] + (-1,) + self.shape[end + 1:])


_BINARY = {
    "add": E.add, "sub": E.subtract, "mul": E.multiply, "truediv": E.divide,
    "floordiv": E.floor_divide, "mod": E.remainder, "pow": E.pow,
    "and": L.bitwise_and, "or": L.bitwise_or, "xor": L.bitwise_xor,
    "lshift": L.bitwise_left_shift, "rshift": L.bitwise_right_shift,
}


def bind():
    ENGINE_OPS.sum_to_shape = R.sum_to_shape
    ENGINE_OPS.astype = E.astype
    for name, function in _BINARY.items():
        setattr(Tensor, f"__{name}__", function)
        setattr(Tensor, f"__r{name}__", _swap(function))
        setattr(Tensor, f"__i{name}__", _inplace(function))
    Tensor.__neg__ = E.negative
    Tensor.__pos__ = E.positive
    Tensor.__abs__ = E.abs
    Tensor.__invert__ = L.bitwise_invert
    Tensor.__eq__ = L.equal
    Tensor.__ne__ = L.not_equal
    Tensor.__lt__ = L.less
    Tensor.__le__ = L.less_equal
    Tensor.__gt__ = L.greater
    Tensor.__ge__ = L.greater_equal
    for function in (E.exp, E.expm1, E.log, E.log1p, E.log2, E.log10, E.sqrt, E.square,
                     E.sin, E.cos, E.tan, E.asin, E.acos, E.atan, E.sinh, E.cosh, E.tanh,
                     E.asinh, E.acosh, E.atanh, E.sigmoid, E.sign, E.floor, E.ceil, E.round,
                     E.trunc, E.abs, E.negative, E.reciprocal, E.maximum, E.minimum,
                     L.isnan, L.isinf, L.isfinite, L.logical_not):
        setattr(Tensor, function.__name__, function)
    Tensor.neg = E.negative
    Tensor.softmax = lambda self, dim=-1: softmax_ops.softmax(self, dim)
    Tensor.log_softmax = lambda self, dim=-1: softmax_ops.log_softmax(self, dim)
    Tensor.astype = lambda self, dtype, copy=True: E.astype(self, dtype, copy=copy)
    Tensor.float = lambda self: E.astype(self, dtypes.float32, copy=False)
    Tensor.double = lambda self: E.astype(self, dtypes.float64, copy=False)
    Tensor.half = lambda self: E.astype(self, dtypes.float16, copy=False)
    Tensor.long = lambda self: E.astype(self, dtypes.int64, copy=False)
    Tensor.int = lambda self: E.astype(self, dtypes.int32, copy=False)
    Tensor.bool = lambda self: E.astype(self, dtypes.bool_, copy=False)
    Tensor.clip = lambda self, min=None, max=None: E.clip(self, min, max)
    Tensor.clamp = Tensor.clip
    Tensor.pow = E.pow
    for function in (R.sum, R.mean, R.prod, R.max, R.min, R.all, R.any, R.logsumexp):
        setattr(Tensor, function.__name__, torch_axis_names(function))
    Tensor.var = torch_axis_names(R.var)
    Tensor.std = torch_axis_names(R.std)
    Tensor.cumsum = lambda self, axis=None, dim=None: R.cumsum(self, dim if dim is not None
                                                               else axis)
    Tensor.cumprod = lambda self, axis=None, dim=None: R.cumprod(self, dim if dim is not None
                                                                 else axis)
    Tensor.reshape = _reshape_method
    Tensor.view = _reshape_method
    Tensor.permute = _permute_method
    Tensor.transpose = _transpose_method
    Tensor.T = property(lambda self: M.permute_dims(self, tuple(reversed(range(self.ndim)))))
    Tensor.mT = property(M.matrix_transpose)
    Tensor.expand = _expand
    Tensor.broadcast_to = M.broadcast_to
    Tensor.flatten = _flatten
    Tensor.squeeze = lambda self, axis=None, dim=None: M.squeeze(self, dim if dim is not None
                                                                 else axis)
    Tensor.unsqueeze = lambda self, axis: M.expand_dims(self, axis)
    Tensor.flip = lambda self, axis=None, dims=None: M.flip(self, axis=dims if dims is not None
                                                            else axis)
    Tensor.roll = lambda self, shift, axis=None: M.roll(self, shift, axis=axis)
    Tensor.repeat_interleave = lambda self, repeats, axis=None: M.repeat(self, repeats,
                                                                         axis=axis)
    Tensor.tile = M.tile
    Tensor.split = lambda self, sections, axis=0: M.split(self, sections, axis=axis)
    Tensor.swapaxes = M.swapaxes
    Tensor.moveaxis = M.moveaxis
    for family in (indexing, linalg, search):
        family.bind_methods(Tensor)
