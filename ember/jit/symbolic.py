"""Symbolic API (Theano/TF1 style): `symbol` declares an input, expressions on symbols
record a small expression DAG, `compile` turns outputs into a keyword-taking callable.

Shapes may be unknown when the expression is written, so nothing is traced then: each
primitive call on a symbol is recorded as (prim, args, params). At call time the DAG is
replayed through `apply` on traced inputs of the concrete shapes, which builds one IR
`Graph` per input signature (via `jit`, so caching and retrace reasons are shared).

Inputs are cast to the symbol's dtype (float32 by default) when NumPy's `same_kind` rule
allows, so `f(A=np.ones(10))` on a float32 symbol computes and returns float32.

Expressions are recorded through Tensor methods and operators (`B * A + 1`, `A.exp()`,
`A.sum(axis=0)`), and through free functions (`ember.exp(A)`, `ember.concat([A, B])`) where
`apply` hands a call with a symbol among its arguments to `record_if_symbolic`. A module
called on symbols is one recorded step too (`ember.Input` and the functional `ember.Model`
build on this, see `ember._functional`): replaying calls the module.

Unknown dimensions (None, e.g. the batch axis of `ember.Input`) are carried through shape
inference as a large prime placeholder and reported as None again, so `x * 2` on a
(None, 3) symbol is known to be (None, 3).
"""
from __future__ import annotations

import itertools

import numpy as np

from ember._core import dtypes
from ember._core.errors import DTypeError, EmberError, ShapeError, user_frame
from ember._core.primitive import ENGINE_OPS, AbstractValue, abstract, apply, tracing
from ember._core.tensor import Tensor
from ember.jit.api import JitFunction

_SEQUENCE = itertools.count()
# Stands for an unknown (None) dimension during shape inference: a prime no real axis has,
# so a result dimension that is a multiple of it came from an unknown one.
_UNKNOWN = 999_983


class _Expr:
    """One recorded step: an input (`prim` None, `name` set) or `prim(*args, **params)`,
    where `prim` is a Primitive or a Module (a layer called on symbols; its args may nest
    symbols in lists, tuples and dicts). `seq` grows with creation: sorting steps by it is a
    topological order."""

    __slots__ = ("prim", "args", "params", "name", "seq")

    def __init__(self, prim=None, args=(), params=None, name=None):
        self.prim = prim
        self.args = args
        self.params = params or {}
        self.name = name
        self.seq = next(_SEQUENCE)


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
        what = f"'{expr.name}'" if expr.prim is None else _step_name(expr)
        return f"symbol({what}, shape={self._data._shape}, dtype={self.dtype})"

    def __bool__(self):
        raise EmberError(f"a symbolic tensor has no truth value at {user_frame()}; use "
                         f"ember.where for data-dependent choices")


class _Recorder:
    """The tracer active while a method of a symbolic Tensor runs: records, computes nothing."""

    def process(self, prim, args, params):
        avals, known = [], True
        for arg in args:
            if is_symbolic(arg):
                shape = arg._data._shape
                if shape is None:
                    known, shape = False, ()  # probe with a scalar to get dtype and arity
                shape = tuple(_UNKNOWN if dim is None else dim for dim in shape)
                avals.append(AbstractValue(shape, arg.dtype))
            else:
                avals.append(abstract(arg) if isinstance(arg, (Tensor, np.ndarray)) else arg)
        out = prim.infer(*avals, **params)
        outs = tuple(out) if isinstance(out, (tuple, list)) else (out,)
        expr = _Expr(prim, tuple(args), params)
        results = tuple(SymbolicTensor(SymbolData(expr, i, _shown(aval.shape) if known else None,
                                                  aval.dtype))
                        for i, aval in enumerate(outs))
        return results if isinstance(out, (tuple, list)) else results[0]

    def assign(self, target, value):
        raise EmberError(f"in-place updates of symbolic tensors are not supported at "
                         f"{user_frame()}; write B = B + x instead of B += x")

    def setitem(self, target, key, value):
        self.assign(target, value)


_RECORDER = _Recorder()


def _shown(shape) -> tuple:
    return tuple(None if dim and dim % _UNKNOWN == 0 else dim for dim in shape)


def _step_name(expr: _Expr) -> str:
    prim = expr.prim
    return prim.name if hasattr(prim, "infer") else type(prim).__name__


def is_symbolic(value) -> bool:
    """Whether `value` is a symbolic Tensor (a symbol or an expression of symbols)."""
    return isinstance(value, Tensor) and type(value._data) is SymbolData


def symbols_in(value):
    """The symbolic Tensors in `value`, looking into (nested) tuples, lists and dicts."""
    if is_symbolic(value):
        yield value
    elif isinstance(value, (tuple, list)):
        for part in value:
            yield from symbols_in(part)
    elif isinstance(value, dict):
        for part in value.values():
            yield from symbols_in(part)


def substitute(value, lookup):
    """`value` with each symbolic Tensor replaced by `lookup(symbol)`, structure kept."""
    if is_symbolic(value):
        return lookup(value)
    if isinstance(value, (tuple, list)):
        return type(value)(substitute(part, lookup) for part in value)
    if isinstance(value, dict):
        return {key: substitute(part, lookup) for key, part in value.items()}
    return value


def record_if_symbolic(prim, args, params):
    """Record `prim(*args, **params)` when a symbol is among `args`, else None: the hook
    `apply` calls when a primitive fails on its inputs, so that free functions (`ember.exp(A)`)
    record on symbols as methods do, at no cost to eager dispatch."""
    if not any(is_symbolic(arg) for arg in args):
        return None
    return _RECORDER.process(prim, args, params)


# read by `apply` when a primitive fails on its inputs (a symbol has no values to compute on)
ENGINE_OPS.record_symbolic = record_if_symbolic


def record_call(module, args, kwargs, outputs) -> object:
    """Record `module(*args, **kwargs)` on symbols; `outputs` are (shape, dtype) pairs (a
    list for a module returning a tuple). Returns the symbolic output(s)."""
    expr = _Expr(module, tuple(args), dict(kwargs))
    several = isinstance(outputs, list)
    results = tuple(SymbolicTensor(SymbolData(expr, i, shape, dtypes.as_dtype(dtype)))
                    for i, (shape, dtype) in enumerate(outputs if several else [outputs]))
    return results if several else results[0]


def replay(outputs, bindings: dict) -> list:
    """The values of the symbolic `outputs` given `bindings` (id of an input step -> Tensor):
    each step runs once, through `apply` or by calling its module."""
    done = {key: (tensor,) for key, tensor in bindings.items()}

    def value_of(symbolic):
        return evaluate(symbolic._data.expr)[symbolic._data.index]

    def evaluate(expr):
        if id(expr) not in done:
            args = substitute(expr.args, value_of)
            if hasattr(expr.prim, "infer"):
                out = apply(expr.prim, *args, **expr.params)
            else:
                out = expr.prim(*args, **substitute(expr.params, value_of))
            done[id(expr)] = tuple(out) if isinstance(out, (tuple, list)) else (out,)
        return done[id(expr)]

    return [value_of(out) for out in outputs]
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
        bindings = {id(sym._data.expr): tensor for sym, tensor in zip(self.inputs, tensors)}
        results = tuple(replay(self.outputs, bindings))
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
        stack.extend(symbols_in((expr.args, expr.params)))
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
