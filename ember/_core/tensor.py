"""The Tensor: one backend array plus its autograd link.

Math methods and operators (`+`, `.sum()`, `.reshape()`, ...) are bound onto the class by
`ember/_methods.py`, because they are ember ops and `_core` imports nothing above it.
"""
from __future__ import annotations

import numpy as np

from ember._core import dtypes
from ember._core.device import CPU, Device
from ember._core.device import device as as_device
from ember._core.errors import DeviceError, DTypeError, EmberError


class Tensor:
    """An n-dimensional array on a device, optionally tracking gradients.

    >>> import ember
    >>> x = ember.tensor([1.0, 2.0], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
    tensor([2., 4.])
    """

    __slots__ = ("_data", "_device", "requires_grad", "grad", "_node", "_index", "_hooks",
                 "__weakref__")
    __array_priority__ = 1000  # make `ndarray + Tensor` defer to Tensor.__radd__

    def __init__(self, data, device: Device = CPU, requires_grad: bool = False):
        self._data = data
        self._device = device
        self.requires_grad = requires_grad
        self.grad = None
        self._node = None
        self._index = 0
        self._hooks = None

    # ---- metadata -------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self._data.shape

    @property
    def dtype(self) -> dtypes.DType:
        return dtypes.from_numpy_dtype(self._data.dtype)

    @property
    def device(self) -> Device:
        return self._device

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def size(self) -> int:
        return self._data.size

    def numel(self) -> int:
        return self._data.size

    def dim(self) -> int:
        return self._data.ndim

    def __len__(self):
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    @property
    def grad_fn(self):
        """The autograd node that produced this tensor (None for leaves)."""
        return self._node

    @property
    def data(self) -> "Tensor":
        """A tensor sharing this one's storage, outside the autograd graph."""
        return Tensor(self._data, self._device)

    @data.setter
    def data(self, value: "Tensor"):
        self._data = value._data if isinstance(value, Tensor) else value

    # ---- conversion -----------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (zero-copy on CPU)."""
        if self._device is not CPU:
            raise DeviceError(f"tensor on {self._device} cannot become a NumPy array directly; "
                              f"call .cpu() first, e.g. x.cpu().numpy()")
        return self._data

    def __array__(self, dtype=None, copy=None):
        array = self.numpy()
        if dtype is not None and array.dtype != dtype:
            return array.astype(dtype)
        return array.copy() if copy else array

    def __dlpack__(self, *args, **kwargs):
        return self._data.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self._data.__dlpack_device__()

    def item(self):
        """The single value of a one-element tensor as a Python number."""
        if self._data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        value = self._data.reshape(()).item() if self._device is CPU else self._data.item()
        return float(value) if self._data.dtype.kind == "V" else value  # bfloat16

    def tolist(self):
        array = self.cpu()._data
        if array.dtype == dtypes.bfloat16.np:
            array = array.astype(np.float32)
        return array.tolist()

    def __bool__(self):
        if self._data.size != 1:
            raise ValueError(f"the truth value of a tensor with {self._data.size} elements is "
                             f"ambiguous; use .any() or .all()")
        return bool(self.item())

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self._data.dtype.kind not in "iu" or self._data.size != 1:
            raise TypeError("only one-element integer tensors can be used as an index")
        return int(self.item())

    def __hash__(self):
        return id(self)

    def to(self, *args, dtype=None, device=None, copy: bool = False) -> "Tensor":
        """Move and/or cast: `x.to('cuda:0')`, `x.to(ember.float16)`, `x.to(device, dtype)`."""
        for arg in args:
            if isinstance(arg, (Device,)) or (isinstance(arg, str) and arg.split(":")[0]
                                               in ("cpu", "cuda", "gpu")):
                device = arg
            else:
                dtype = arg
        out = self
        if dtype is not None:
            from ember._core.primitive import ENGINE_OPS

            out = ENGINE_OPS.astype(out, dtype, copy=copy)
        if device is not None:
            out = _to_device(out, as_device(device))
        return out

    def cpu(self) -> "Tensor":
        return _to_device(self, CPU)

    def cuda(self, index: int = 0) -> "Tensor":
        return _to_device(self, as_device(f"cuda:{index}"))

    # ---- autograd -------------------------------------------------------------------
    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        """Set `requires_grad` in place on a leaf; only floating tensors can require grad."""
        if self._node is not None and not requires_grad:
            raise EmberError("requires_grad_(False) on a non-leaf tensor; use .detach() instead")
        if requires_grad and self._data.dtype.kind not in "fV":
            raise DTypeError(f"only floating-point tensors can require gradients, "
                             f"got {self.dtype.name}")
        self.requires_grad = requires_grad
        return self

    def detach(self) -> "Tensor":
        """A tensor sharing the data, cut from the graph."""
        return Tensor(self._data, self._device)

    def detach_(self) -> "Tensor":
        self._node = None
        self.requires_grad = False
        return self

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate d(self)/d(leaf) into every leaf's `.grad`."""
        from ember._core.autograd import backward

        backward(self, gradient, retain_graph=retain_graph, create_graph=create_graph,
                 inputs=inputs)

    def register_hook(self, hook):
        """Call `hook(grad)` when this tensor's gradient is computed; it may return a new one."""
        from ember._core.autograd import register_hook

        return register_hook(self, hook)

    def retain_grad(self):
        """Keep `.grad` on a non-leaf tensor after backward."""
        from ember._core.autograd import retain_grad

        retain_grad(self)

    # ---- printing -------------------------------------------------------------------
    def __repr__(self):
        array = self.cpu()._data if self._device is not CPU else self._data
        if array.dtype == dtypes.bfloat16.np:
            array = array.astype(np.float32)
        body = np.array2string(array, separator=", ", prefix="tensor(")
        extras = []
        if self._data.dtype not in (np.float32, np.int64, np.bool_) or array.size == 0:
            extras.append(f"dtype={self.dtype}")
        if self._device is not CPU:
            extras.append(f"device='{self._device}'")
        if self._node is not None:
            extras.append(f"grad_fn=<{self._node.prim.name}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    def __str__(self):
        return repr(self)


def _to_device(tensor: Tensor, target: Device) -> Tensor:
    if tensor._device == target:
        return tensor
    if target is CPU:
        data = tensor._data.get()
    else:
        with target.xp.cuda.Device(target.index):
            data = target.xp.asarray(tensor._data)
    from ember._core.primitive import STATE

    if tensor._node is not None and STATE.grad_enabled:
        raise DeviceError("moving an intermediate result across devices is not differentiable "
                          "yet; move the leaves (inputs, parameters) before computing")
    return Tensor(data, target, requires_grad=tensor.requires_grad)
