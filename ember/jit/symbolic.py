"""Symbolic API (Theano/TF1 style): `symbol` declares an input, expressions on symbols
record a small expression DAG, `compile` turns outputs into a keyword-taking callable.

Shapes may be unknown when the expression is written, so nothing is traced then: each
primitive call on a symbol is recorded as (prim, args, params). At call time the DAG is
replayed through `apply` on traced inputs of the concrete shapes, which builds one IR
`Graph` per input signature (via `jit`, so caching and retrace reasons are shared).

Inputs are cast to the symbol's dtype (float32 by default) when NumPy's `same_kind` rule
allows, so `f(A=np.ones(10))` on a float32 symbol computes and returns float32.

Expressions are recorded through Tensor methods and operators (`B * A + 1`, `A.exp()`,
`A.sum(axis=0)`); free functions such as `ember.exp(A)` do not see symbols yet.
"""
from __future__ import annotations

import numpy as np

from ember._core import dtypes
from ember._core.errors import DTypeError, EmberError, ShapeError, user_frame
from ember._core.primitive import AbstractValue, abstract, apply, tracing
from ember._core.tensor import Tensor
from ember.jit.api import JitFunction


class _Expr:
    """One recorded step: an input (`prim` None, `name` set) or `prim(*args, **params)`."""

    __slots__ = ("prim", "args", "params", "name")

    def __init__(self, prim=None, args=(), params=None, name=None):
        self.prim = prim
        self.args = args
        self.params = params or {}
        self.name = name


class SymbolData:
    """The `_data` of a symbolic Tensor: its expression, dtype, and shape when known."""

    __slots__ = ("expr", "index", "_shape", "dtype")

    def __init__(self, expr: _Expr, index: int, shape, dtype: dtypes.DType):
        self.expr = expr
        self.index = index
        self._shape = shape
        self.dtype = dtype.np

    @property
    def shape(self):
        if self._shape is None or any(dim is None for dim in self._shape):
            raise EmberError(f"a symbolic tensor of unknown shape {self._shape} was asked for "
                             f"its shape at {user_frame()}; declare it, e.g. "
                             f"ember.symbol('A', shape=(10,))")
        return self._shape

    @property
    def ndim(self):
        if self._shape is None:
            return len(self.shape)
        return len(self._shape)

    @property
    def size(self):
        return int(np.prod(self.shape))

    def __array__(self, dtype=None, copy=None):
        raise EmberError(f"a symbolic tensor has no values at {user_frame()}; use it in "
                         f"Tensor methods/operators (A * B, A.exp()), then ember.compile")


class SymbolicTensor(Tensor):
    """A Tensor standing for a symbol or an expression of symbols."""

    __slots__ = ()

    def __repr__(self):
        expr = self._data.expr
        what = f"'{expr.name}'" if expr.prim is None else expr.prim.name
        return f"symbol({what}, shape={self._data._shape}, dtype={self.dtype})"

    def __bool__(self):
        raise EmberError(f"a symbolic tensor has no truth value at {user_frame()}; use "
                         f"ember.where for data-dependent choices")


class _Recorder:
    """The tracer active while a method of a symbolic Tensor runs: records, computes nothing."""

    def process(self, prim, args, params):
        avals, known = [], True
        for arg in args:
            if isinstance(arg, Tensor) and type(arg._data) is SymbolData:
                shape = arg._data._shape
                if shape is None or any(dim is None for dim in shape):
                    known, shape = False, ()  # probe with a scalar to get dtype and arity
                avals.append(AbstractValue(shape, arg.dtype))
            else:
                avals.append(abstract(arg) if isinstance(arg, (Tensor, np.ndarray)) else arg)
        out = prim.infer(*avals, **params)
        outs = tuple(out) if isinstance(out, (tuple, list)) else (out,)
        expr = _Expr(prim, tuple(args), params)
        results = tuple(SymbolicTensor(SymbolData(expr, i, aval.shape if known else None,
                                                  aval.dtype))
                        for i, aval in enumerate(outs))
        return results if isinstance(out, (tuple, list)) else results[0]

    def assign(self, target, value):
        raise EmberError(f"in-place updates of symbolic tensors are not supported at "
                         f"{user_frame()}; write B = B + x instead of B += x")

    def setitem(self, target, key, value):
        self.assign(target, value)


_RECORDER = _Recorder()
_KEEP = {"__init__", "__repr__", "__str__", "__hash__", "__bool__", "__array__", "__len__",
         "__getattribute__", "__setattr__", "__init_subclass__", "__class__", "__dir__",
         "__reduce__", "__reduce_ex__", "__sizeof__", "__format__", "__subclasshook__",
         "__new__", "__delattr__", "__dlpack__", "__dlpack_device__", "__getstate__"}


def _recording(method):
    def recorded(self, *args, **kwargs):
        with tracing(_RECORDER):
            return method(self, *args, **kwargs)

    recorded.__name__ = getattr(method, "__name__", "method")
    recorded.__doc__ = getattr(method, "__doc__", None)
    return recorded


def _install():
    """Route every Tensor method and operator of a symbolic Tensor through the recorder
    (done on first use: the methods are bound onto Tensor by `ember._methods`)."""
    if "__mul__" in SymbolicTensor.__dict__:
        return
    for name, attribute in list(vars(Tensor).items()):
        if name in _KEEP or not callable(attribute) or isinstance(attribute, type):
            continue
        setattr(SymbolicTensor, name, _recording(attribute))


def symbol(name: str, shape=None, dtype="float32") -> SymbolicTensor:
    """A named symbolic input; `shape` may be None (unknown) or contain None dims.

    >>> import numpy as np, ember
    >>> from ember.jit import symbol, compile
    >>> A = symbol('A'); B = symbol('B')
    >>> f = compile(B * A + 1)
    >>> f(A=np.ones(3), B=np.full(3, 2.0))
    tensor([3., 3., 3.])
    """
    _install()
    shape = None if shape is None else tuple(shape)
    return SymbolicTensor(SymbolData(_Expr(name=name), 0, shape, dtypes.as_dtype(dtype)))


def compile(outputs, inputs=None) -> "CompiledFunction":
    """A callable taking the symbols as keywords and returning the output Tensor(s)."""
    return CompiledFunction(outputs, inputs)


class CompiledFunction:
    """What `compile` returns: `f(**arrays)`; `f.lower(**arrays)` gives the Graph."""

    def __init__(self, outputs, inputs=None):
        self.single = not isinstance(outputs, (tuple, list))
        self.outputs = [outputs] if self.single else list(outputs)
        for out in self.outputs:
            if not isinstance(out, Tensor) or type(out._data) is not SymbolData:
                raise EmberError(f"compile: outputs must be symbolic tensors, got "
                                 f"{type(out).__name__}")
        found = _find_symbols(self.outputs)
        if inputs is None:
            self.inputs = sorted(found.values(), key=lambda s: s._data.expr.name)
        else:
            self.inputs = list(inputs)
            given = {s._data.expr.name for s in self.inputs}
            missing = sorted(set(found) - given)
            if missing:
                raise EmberError(f"compile: the outputs depend on symbols {missing} that "
                                 f"are not in inputs")
        self.names = [s._data.expr.name for s in self.inputs]

        def compiled(*tensors):
            return self._replay(tensors)

        self._jit = JitFunction(compiled)

    def __call__(self, **arrays):
        return self._jit(*self._arguments(arrays))

    def lower(self, **arrays):
        return self._jit.lower(*self._arguments(arrays))

    def _arguments(self, arrays) -> list:
        missing = [name for name in self.names if name not in arrays]
        extra = sorted(set(arrays) - set(self.names))
        if missing or extra:
            raise EmberError(f"compiled function takes keywords {self.names}; missing "
                             f"{missing}, unexpected {extra}")
        return [_as_input(sym, arrays[sym._data.expr.name]) for sym in self.inputs]

    def _replay(self, tensors):
        done = {id(sym._data.expr): (tensor,) for sym, tensor in zip(self.inputs, tensors)}

        def evaluate(expr):
            if id(expr) not in done:
                args = [evaluate(a._data.expr)[a._data.index]
                        if isinstance(a, Tensor) and type(a._data) is SymbolData else a
                        for a in expr.args]
                out = apply(expr.prim, *args, **expr.params)
                done[id(expr)] = out if isinstance(out, tuple) else (out,)
            return done[id(expr)]

        results = tuple(evaluate(out._data.expr)[out._data.index] for out in self.outputs)
        return results[0] if self.single else results


def _find_symbols(outputs) -> dict:
    """name -> input symbol, for every symbol the outputs depend on."""
    found, seen, stack = {}, set(), list(outputs)
    while stack:
        tensor = stack.pop()
        expr = tensor._data.expr
        if id(expr) in seen:
            continue
        seen.add(id(expr))
        if expr.prim is None:
            if expr.name in found:
                raise EmberError(f"compile: two different symbols are named '{expr.name}'")
            found[expr.name] = tensor
            continue
        stack.extend(a for a in expr.args
                     if isinstance(a, Tensor) and type(a._data) is SymbolData)
    return found


def _as_input(sym, value) -> Tensor:
    data = sym._data
    name, dtype = data.expr.name, dtypes.from_numpy_dtype(data.dtype)
    array = value._data if isinstance(value, Tensor) else np.asarray(value)
    if array.dtype != dtype.np:
        if not np.can_cast(array.dtype, dtype.np, "same_kind"):
            raise DTypeError(f"symbol '{name}' is {dtype.name}; got {array.dtype} values")
        array = array.astype(dtype.np)
    declared = data._shape
    if declared is not None and (len(declared) != array.ndim or any(
            d is not None and d != s for d, s in zip(declared, array.shape))):
        raise ShapeError(f"symbol '{name}' has shape {declared}; got {array.shape}")
    return Tensor(array, value._device) if isinstance(value, Tensor) else Tensor(array)
