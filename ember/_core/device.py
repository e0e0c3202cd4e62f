"""Devices and their array backends: NumPy on 'cpu', CuPy on 'cuda:N'."""
from __future__ import annotations

import numpy as np

from ember._core.errors import DeviceError


class Device:
    """A place where tensors live: `ember.device('cpu')` or `ember.device('cuda:0')`."""

    __slots__ = ("type", "index", "xp")

    def __init__(self, type_: str, index: int, xp):
        self.type = type_
        self.index = index
        self.xp = xp

    def __repr__(self):
        return "cpu" if self.type == "cpu" else f"{self.type}:{self.index}"

    def __str__(self):
        return repr(self)

    def __eq__(self, other):
        if isinstance(other, str):
            try:
                other = device(other)
            except DeviceError:
                return False
        return isinstance(other, Device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self):
        return hash((self.type, self.index))

    def __reduce__(self):
        # Copies and unpickled devices resolve to the one canonical Device object
        # (dispatch compares devices by identity).
        return (device, (str(self),))


CPU = Device("cpu", 0, np)
_CUDA_DEVICES: dict[int, Device] = {}


def _cuda_problem() -> str | None:
    """Why CUDA is unusable here, in plain words, or None when it works."""
    try:
        import cupy
    except ImportError:
        return "CuPy is not installed (install it with `pip install ember[gpu]`)"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # CuPy raises its own runtime errors when no driver is present
        return f"CuPy is installed but the CUDA runtime failed: {error}"
    if count == 0:
        return "CuPy is installed but no NVIDIA GPU is visible"
    return None


def cuda_is_available() -> bool:
    """True when CuPy imports and at least one NVIDIA GPU is visible."""
    return _cuda_problem() is None


def device(spec="cpu") -> Device:
    """Parse a device: 'cpu', 'cuda', 'cuda:1', or a Device (returned unchanged)."""
    if isinstance(spec, Device):
        return spec
    if spec is None:
        return CPU
    if not isinstance(spec, str):
        raise DeviceError(f"device must be a string like 'cpu' or 'cuda:0', got {spec!r}")
    name, _, index_text = spec.partition(":")
    if name == "cpu" and not index_text:
        return CPU
    if name not in ("cuda", "gpu"):
        raise DeviceError(f"unknown device {spec!r}; expected 'cpu' or 'cuda:N'")
    try:
        index = int(index_text) if index_text else 0
    except ValueError:
        raise DeviceError(f"bad device index in {spec!r}; expected 'cuda:N'") from None
    if index in _CUDA_DEVICES:
        return _CUDA_DEVICES[index]
    problem = _cuda_problem()
    if problem is not None:
        raise DeviceError(f"device {spec!r} is unusable: {problem}")
    import cupy

    if index >= cupy.cuda.runtime.getDeviceCount():
        raise DeviceError(f"device {spec!r} does not exist: "
                          f"{cupy.cuda.runtime.getDeviceCount()} GPU(s) visible")
    _CUDA_DEVICES[index] = Device("cuda", index, cupy)
    return _CUDA_DEVICES[index]


def device_of_array(array) -> Device:
    """The Device holding a raw backend array."""
    if isinstance(array, np.ndarray):
        return CPU
    index = getattr(getattr(array, "device", None), "id", None)
    if index is None:
        raise DeviceError(f"unsupported array type {type(array).__name__}")
    return device(f"cuda:{index}")
