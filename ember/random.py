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
from ember._core.primitive import STATE, AbstractValue, Primitive, apply
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

    def __repr__(self):
        return "ember.random.default_generator" if self is default_generator else \
            f"<ember.random.Generator at {id(self):#x}>"

    def sample(self, kind: str, shape: tuple, dtype, *args):
        """The raw array of one draw (NumPy): `kind` is random, normal, uniform, integers,
        permutation or bernoulli; `dtype` the NumPy dtype of the result."""
        rng = self._rng
        if kind == "integers":
            return rng.integers(args[0], args[1], shape, dtype=dtype)
        if kind == "permutation":
            return rng.permutation(args[0])
        if kind == "bernoulli":
            return (rng.random(shape, dtype=np.float32) < args[0]).astype(dtype)
        draw_dtype = np.float64 if dtype == np.float64 else np.float32
        if kind == "normal":
            data = rng.standard_normal(shape, dtype=draw_dtype)
            loc, scale = args
            if scale != 1.0 or loc != 0.0:
                data = (data * draw_dtype(scale) + draw_dtype(loc)).astype(draw_dtype,
                                                                            copy=False)
        else:
            data = rng.random(shape, dtype=draw_dtype)
            if kind == "uniform":
                low, high = args
                data = (data * draw_dtype(high - low) + draw_dtype(low)).astype(draw_dtype,
                                                                                 copy=False)
        return data.astype(dtype, copy=False)

    def _draw(self, kind, shape, dtype, device, *args, requires_grad=False) -> Tensor:
        """One draw as a Tensor. Under `ember.jit` the draw is a graph node (`RANDOM`), made
        from this generator at every run in the same order as eager code draws, so compiled
        and eager runs from one seed see the same numbers."""
        target = as_device(device) if device is not None else CPU
        tracer = STATE.tracer
        if tracer is not None and getattr(tracer, "records_random_draws", False):
            if requires_grad:
                raise EmberError(f"a random tensor with requires_grad=True cannot be made "
                                 f"inside ember.jit (at {user_frame()}); make it outside")
            aval = AbstractValue(tuple(shape), dtypes.from_numpy_dtype(np.dtype(dtype)), target)
            return apply(RANDOM, generator=self, kind=kind, args=tuple(args), aval=aval)
        data = self.sample(kind, shape, dtype, *args)
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
        return self._draw("random", _shape(size), self._float_dtype(dtype).np, device,
                          requires_grad=requires_grad)

    def normal(self, loc=0.0, scale=1.0, size=None, *, dtype=None, device=None,
               requires_grad=False) -> Tensor:
        """Normal samples with mean `loc` and standard deviation `scale`."""
        return self._draw("normal", _shape(size), self._float_dtype(dtype).np, device, loc,
                          scale, requires_grad=requires_grad)

    def uniform(self, low=0.0, high=1.0, size=None, *, dtype=None, device=None,
                requires_grad=False) -> Tensor:
        """Uniform floats in [low, high)."""
        return self._draw("uniform", _shape(size), self._float_dtype(dtype).np, device, low,
                          high, requires_grad=requires_grad)

    def integers(self, low, high=None, size=None, *, dtype=None, device=None) -> Tensor:
        """Integers in [low, high) (or [0, low) when high is None); int64 by default."""
        dtype = dtypes.as_dtype(dtype) if dtype is not None else dtypes.default_int
        return self._draw("integers", _shape(size), dtype.np, device, low, high)

    def permutation(self, x, *, device=None) -> Tensor:
        """A shuffled arange(x) for an int, else a shuffled copy of x along axis 0."""
        if isinstance(x, int):
            return self._draw("permutation", (x,), np.dtype(np.int64), device, x)
        order = self._draw("permutation", (x.shape[0],), np.dtype(np.int64), x.device,
                           x.shape[0])
        from ember.ops.indexing import take

        return take(x, order, axis=0)

    def bernoulli(self, p=0.5, size=None, *, dtype=None, device=None) -> Tensor:
        """1 with probability p, else 0 (float32 by default; p may be a tensor)."""
        if isinstance(p, Tensor):
            if type(p._data) is not np.ndarray and not hasattr(p._data, "get"):
                raise EmberError(f"bernoulli with a probability tensor cannot be traced (at "
                                 f"{user_frame()}); pass a float probability")
            p = p.cpu().numpy()
        size = _shape(size) if size is not None else np.shape(p)
        dtype = dtypes.as_dtype(dtype) if dtype is not None else dtypes.default_float
        return self._draw("bernoulli", size, dtype.np, device, p)


class RandomDraw(Primitive):
    """A draw from `generator` at run time (`Generator.sample(kind, ...)`): the node that
    stands for random numbers in a compiled graph. Never merged, folded or dropped."""

    name = "random"
    random = True
    differentiable = False

    def infer(self, *, generator, kind, args, aval):
        return aval

    def forward(self, xp, *, generator, kind, args, aval):
        data = generator.sample(kind, tuple(aval.shape), aval.dtype.np, *args)
        return data if xp is np else xp.asarray(data)


RANDOM = RandomDraw()


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
