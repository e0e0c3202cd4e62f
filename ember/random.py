"""Random numbers: explicit `Generator` objects plus one global, seedable default.

Each Generator wraps NumPy's PCG64, so a seed gives the same numbers on every run and
platform. Values are drawn directly in the requested dtype (float32 by default).
"""
from __future__ import annotations

import numpy as np

from ember._core import dtypes
from ember._core.device import CPU
from ember._core.device import device as as_device
from ember._core.errors import DTypeError, EmberError, user_frame
from ember._core.primitive import STATE
from ember._core.tensor import Tensor


def _shape(shape):
    if shape is None:
        return ()
    return (shape,) if isinstance(shape, int) else tuple(shape)


class Generator:
    """A stream of random numbers.

    >>> import ember
    >>> a = ember.random.Generator(0).normal(size=(2,))
    >>> b = ember.random.Generator(0).normal(size=(2,))
    >>> bool((a == b).all())
    True
    """

    def __init__(self, seed=None):
        self._rng = np.random.Generator(np.random.PCG64(seed))

    def manual_seed(self, seed: int) -> "Generator":
        self._rng = np.random.Generator(np.random.PCG64(seed))
        return self

    def get_state(self) -> dict:
        """The generator's full state (a JSON-friendly dict), for checkpoints."""
        return self._rng.bit_generator.state

    def set_state(self, state: dict):
        self._rng.bit_generator.state = state

    def _finish(self, data, dtype, device, requires_grad=False) -> Tensor:
        tracer = STATE.tracer
        if tracer is not None and getattr(tracer, "freezes_random_draws", False):
            # A draw made while tracing would become a constant of the compiled graph: every
            # call would reuse the same "random" numbers. Refuse rather than freeze silently.
            raise EmberError(f"random numbers (e.g. a dropout mask) were drawn inside "
                             f"ember.jit at {user_frame()}: the compiled graph would replay "
                             f"the same draw on every call. Random ops under jit are not "
                             f"supported yet; run this step eagerly, or call the model in "
                             f"eval mode (model.eval()) so dropout is off")
        target = as_device(device) if device is not None else CPU
        if dtype is not None and data.dtype != dtype:
            data = data.astype(dtype)
        if target is not CPU:
            with target.xp.cuda.Device(target.index):
                data = target.xp.asarray(data)
        tensor = Tensor(data, target)
        return tensor.requires_grad_(True) if requires_grad else tensor

    def _float_dtype(self, dtype):
        dtype = dtypes.as_dtype(dtype) if dtype is not None else dtypes.default_float
        if dtype.kind != "f":
            raise DTypeError(f"expected a floating dtype, got {dtype.name}")
        return dtype

    def random(self, size=None, *, dtype=None, device=None, requires_grad=False) -> Tensor:
        """Uniform floats in [0, 1)."""
        dtype = self._float_dtype(dtype)
        draw_dtype = np.float64 if dtype is dtypes.float64 else np.float32
        data = self._rng.random(_shape(size), dtype=draw_dtype)
        return self._finish(data, dtype.np, device, requires_grad)

    def normal(self, loc=0.0, scale=1.0, size=None, *, dtype=None, device=None,
               requires_grad=False) -> Tensor:
        """Normal samples with mean `loc` and standard deviation `scale`."""
        dtype = self._float_dtype(dtype)
        draw_dtype = np.float64 if dtype is dtypes.float64 else np.float32
        data = self._rng.standard_normal(_shape(size), dtype=draw_dtype)
        if scale != 1.0 or loc != 0.0:
            data = (data * draw_dtype(scale) + draw_dtype(loc)).astype(draw_dtype, copy=False)
        return self._finish(data, dtype.np, device, requires_grad)

    def uniform(self, low=0.0, high=1.0, size=None, *, dtype=None, device=None,
                requires_grad=False) -> Tensor:
        """Uniform floats in [low, high)."""
        dtype = self._float_dtype(dtype)
        draw_dtype = np.float64 if dtype is dtypes.float64 else np.float32
        data = self._rng.random(_shape(size), dtype=draw_dtype)
        data = (data * draw_dtype(high - low) + draw_dtype(low)).astype(draw_dtype, copy=False)
        return self._finish(data, dtype.np, device, requires_grad)

    def integers(self, low, high=None, size=None, *, dtype=None, device=None) -> Tensor:
        """Integers in [low, high) (or [0, low) when high is None); int64 by default."""
        dtype = dtypes.as_dtype(dtype) if dtype is not None else dtypes.default_int
        data = self._rng.integers(low, high, _shape(size), dtype=dtype.np)
        return self._finish(data, None, device)

    def permutation(self, x, *, device=None) -> Tensor:
        """A shuffled arange(x) for an int, else a shuffled copy of x along axis 0."""
        if isinstance(x, int):
            return self._finish(self._rng.permutation(x), None, device)
        order = self._rng.permutation(x.shape[0])
        from ember.ops.indexing import take

        return take(x, Tensor(order, x.device), axis=0)

    def bernoulli(self, p=0.5, size=None, *, dtype=None, device=None) -> Tensor:
        """1 with probability p, else 0 (float32 by default; p may be a tensor)."""
        probabilities = p.cpu().numpy() if isinstance(p, Tensor) else p
        size = _shape(size) if size is not None else np.shape(probabilities)
        draw = self._rng.random(size, dtype=np.float32) < probabilities
        dtype = dtypes.as_dtype(dtype) if dtype is not None else dtypes.default_float
        return self._finish(draw.astype(dtype.np), None, device)


default_generator = Generator(None)


def manual_seed(seed: int) -> Generator:
    """Seed the global generator, making everything that draws from it reproducible."""
    default_generator.manual_seed(seed)
    return default_generator


def seed(value: int) -> Generator:
    return manual_seed(value)


def _size(shape):
    if len(shape) == 1 and not isinstance(shape[0], int):
        return tuple(shape[0])
    return tuple(shape)


def rand(*shape, dtype=None, device=None, requires_grad=False, generator=None) -> Tensor:
    """Uniform [0, 1) floats from the global (or given) generator: `ember.rand(2, 3)`."""
    return (generator or default_generator).random(_size(shape), dtype=dtype, device=device,
                                                   requires_grad=requires_grad)


def randn(*shape, dtype=None, device=None, requires_grad=False, generator=None) -> Tensor:
    """Standard normal floats: `ember.randn(2, 3)`."""
    return (generator or default_generator).normal(size=_size(shape), dtype=dtype,
                                                   device=device, requires_grad=requires_grad)


def randint(low, high=None, size=(), *, dtype=None, device=None, generator=None) -> Tensor:
    """Random integers in [low, high)."""
    return (generator or default_generator).integers(low, high, size, dtype=dtype,
                                                     device=device)
