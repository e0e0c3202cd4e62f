"""Keras-style functional models: `ember.Input` symbols, layers called on them, and the graph
`ember.Model(inputs=..., outputs=...)` replays.

Calling a layer (any `ember.nn.Module`) on symbolic tensors records one step (the module and
its arguments) in the expression DAG of `ember.jit.symbolic`; ops on symbols record
primitive steps the same way. The output shape comes from running the layer once on zero
batches (eval mode, no gradients; twice when a dimension is unknown, to tell which output
dimensions follow it), which also builds lazy layers (`Linear(None, 8)`) at definition
time, as Keras does. A functional Model registers the layers it reaches as submodules
(named after their class in call order: `linear`, `relu`, `linear_1`) and its forward
replays the steps eagerly on real tensors, so autograd, `ember.jit` and `state_dict` see an
ordinary Module. A layer called twice is one submodule: its parameters are shared.
"""
from __future__ import annotations

import functools
import itertools

import numpy as np

from ember._core import dtypes
from ember._core.autograd import no_grad
from ember._core.device import CPU
from ember._core.errors import EmberError, ShapeError
from ember._core.primitive import STATE
from ember._core.tensor import Tensor
from ember.jit.symbolic import (
    SymbolicTensor,
    record_call,
    replay,
    substitute,
    symbol,
    symbols_in,
)
from ember.nn.module import Module
from ember.ops.creation import zeros

_INPUT_COUNT = itertools.count()


def Input(shape, dtype="float32", name: str | None = None) -> SymbolicTensor:
    """A symbolic model input of `shape` (without the batch axis, which is None).

    >>> import ember
    >>> from ember._functional import Input
    >>> x = Input((784,), name="pixels")
    >>> h = ember.nn.Linear(784, 64)(x)
    >>> h
    symbol(Linear, shape=(None, 64), dtype=ember.float32)
    """
    if isinstance(shape, int):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)) or not all(
            dim is None or (isinstance(dim, int) and dim >= 0) for dim in shape):
        raise ShapeError(f"Input: shape must be a tuple of sizes (None for unknown) without "
                         f"the batch axis, got {shape!r}")
    _install_module_hook()
    count = next(_INPUT_COUNT)
    name = name or ("input" if count == 0 else f"input_{count}")
    return symbol(name, shape=(None, *shape), dtype=dtype)


# ---- layers called on symbols -------------------------------------------------------------
def symbolic_call(module: Module, args: tuple, kwargs: dict):
    """Record `module(*args, **kwargs)` where symbols are among the arguments."""
    for found in symbols_in((args, kwargs)):
        if found._data._shape is None:
            raise EmberError(f"{type(module).__name__} was called on {found!r}, whose shape is "
                             f"unknown; declare it (ember.Input(shape) or "
                             f"ember.symbol(name, shape=...))")
    first = _probe(module, args, kwargs, 2)
    unknown = any(dim is None for found in symbols_in((args, kwargs))
                  for dim in found._data._shape)
    second = _probe(module, args, kwargs, 3) if unknown else first
    if isinstance(first, list):
        outputs = [(_merge(a, b), dtype) for (a, dtype), (b, _) in zip(first, second)]
    else:
        outputs = (_merge(first[0], second[0]), first[1])
    return record_call(module, args, kwargs, outputs)


def _merge(shape_a, shape_b) -> tuple:
    """Dimensions that changed with the unknown input size are unknown (None)."""
    return tuple(a if a == b else None for a, b in zip(shape_a, shape_b))


def _probe(module, args, kwargs, size: int):
    """Output (shape, dtype) of the module on zeros standing for the symbols (unknown
    dimensions of `size`); a list of them for a module returning several tensors."""
    first = next(module.parameters(), None)
    device = first.device if first is not None else CPU

    def concrete(found):
        shape = tuple(size if dim is None else dim for dim in found._data._shape)
        return zeros(shape, dtype=dtypes.from_numpy_dtype(found._data.dtype), device=device)

    modes = [(child, child.training) for child in module.modules()]
    module.eval()  # no running-statistics updates, no dropout draws
    try:
        with no_grad():
            out = module(*substitute(args, concrete), **substitute(kwargs, concrete))
    finally:
        for child, training in modes:
            object.__setattr__(child, "training", training)
    if isinstance(out, Tensor):
        return (out.shape, out.dtype)
    if isinstance(out, (tuple, list)) and all(isinstance(part, Tensor) for part in out):
        return [(part.shape, part.dtype) for part in out]
    raise EmberError(f"{type(module).__name__} called on symbols must return a Tensor or a "
                     f"tuple of Tensors, got {type(out).__name__}")


def _has_symbol(values) -> bool:
    for value in values:
        kind = type(value)
        if kind is SymbolicTensor:
            return True
        if (kind is list or kind is tuple) and _has_symbol(value):
            return True
        if kind is dict and _has_symbol(value.values()):
            return True
    return False


def _install_module_hook():
    """Send module calls on symbols to `symbolic_call`. A bridge until `Module.__call__`
    checks for symbols itself (done on the first `Input`, so programs without functional
    models never pay for the check)."""
    eager_call = Module.__call__
    if getattr(eager_call, "sees_symbols", False):
        return

    @functools.wraps(eager_call)
    def call(self, *args, **kwargs):
        if STATE.tracer is None and (_has_symbol(args) or kwargs and _has_symbol(kwargs.values())):
            return symbolic_call(self, args, kwargs)
        return eager_call(self, *args, **kwargs)

    call.sees_symbols = True
    Module.__call__ = call


# ---- the graph of a functional Model ------------------------------------------------------
def _layer_name(module: Module) -> str:
    return type(module).__name__.lower()


class FunctionalGraph:
    """The steps from `inputs` to `outputs` (single symbols, lists/tuples, or dicts), the
    layers they call (in call order, with submodule names) and how to run them."""

    def __init__(self, inputs, outputs, model_name: str):
        self.model_name = model_name
        self.input_keys, self.inputs = _flatten(inputs, "inputs")
        self.output_keys, self.outputs = _flatten(outputs, "outputs")
        self.input_structure, self.output_structure = type(inputs), type(outputs)
        for index, given in enumerate(self.inputs):
            if given._data.expr.prim is not None:
                raise EmberError(f"Model {model_name!r}: inputs[{index}] is {given!r}, an "
                                 f"expression; inputs must be ember.Input symbols")
        self.steps = self._reachable()
        self.names = [given._data.expr.name for given in self.inputs]
        self.layers: dict[str, Module] = {}
        self.shapes: dict[int, str] = {}  # id(layer) -> output shape(s) of its first call
        seen: dict[int, str] = {}
        for step in self.steps:
            module = step.prim
            if not isinstance(module, Module) or id(module) in seen:
                continue
            base = _layer_name(module)
            name = base
            for count in itertools.count(1):
                if name not in self.layers:
                    break
                name = f"{base}_{count}"
            seen[id(module)] = name
            self.layers[name] = module
            shapes = self._output_shapes[id(step)]
            self.shapes[id(module)] = ", ".join(_text(shapes[i]) for i in sorted(shapes))

    def _reachable(self) -> list:
        given = {id(sym._data.expr): sym for sym in self.inputs}
        steps, used, stack, seen = [], set(), list(self.outputs), set()
        self._output_shapes: dict[int, dict] = {}  # id(step) -> {output index: shape}
        while stack:
            data = stack.pop()._data
            expr = data.expr
            self._output_shapes.setdefault(id(expr), {})[data.index] = data._shape
            if id(expr) in seen:
                continue
            seen.add(id(expr))
            if expr.prim is None:
                if id(expr) not in given:
                    raise EmberError(f"Model {self.model_name!r}: the outputs depend on "
                                     f"symbol {expr.name!r}, which is not among the inputs "
                                     f"{[sym._data.expr.name for sym in self.inputs]}; the "
                                     f"outputs are not reachable from the inputs alone")
                used.add(id(expr))
                continue
            steps.append(expr)
            stack.extend(symbols_in((expr.args, expr.params)))
        unused = [sym._data.expr.name for sym in self.inputs if id(sym._data.expr) not in used]
        if unused:
            raise EmberError(f"Model {self.model_name!r}: inputs {unused} are not used by any "
                             f"output; remove them or connect them")
        return sorted(steps, key=lambda step: step.seq)

    @property
    def input_shape(self):
        shapes = [tuple(sym._data._shape[1:]) for sym in self.inputs]
        return shapes[0] if len(shapes) == 1 and self.input_structure is SymbolicTensor \
            else tuple(shapes)

    def __call__(self, args: tuple, kwargs: dict):
        values = self._arguments(args, kwargs)
        bindings = {id(sym._data.expr): value for sym, value in zip(self.inputs, values)}
        results = replay(self.outputs, bindings)
        if self.output_structure is dict:
            return dict(zip(self.output_keys, results))
        if self.output_structure in (list, tuple):
            return self.output_structure(results)
        return results[0]

    def _arguments(self, args, kwargs) -> list:
        if len(args) == 1 and not kwargs and isinstance(args[0], dict):
            args, kwargs = (), args[0]
        elif len(args) == 1 and len(self.inputs) > 1 and isinstance(args[0], (list, tuple)):
            args = tuple(args[0])  # model([a, b]), as in Keras
        if kwargs:
            keys = self.input_keys if self.input_structure is dict else self.names
            missing = [key for key in keys if key not in kwargs]
            extra = sorted(set(kwargs) - set(keys))
            if args or missing or extra:
                raise EmberError(f"Model {self.model_name!r} takes inputs {keys}; missing "
                                 f"{missing}, unexpected {extra}")
            args = tuple(kwargs[key] for key in keys)
        if len(args) != len(self.inputs):
            raise EmberError(f"Model {self.model_name!r} takes {len(self.inputs)} input(s) "
                             f"{self.names}, got {len(args)}")
        return [self._checked(sym, value) for sym, value in zip(self.inputs, args)]

    def _checked(self, sym, value) -> Tensor:
        if not isinstance(value, Tensor):
            value = Tensor(np.asarray(value))
        declared, name = sym._data._shape, sym._data.expr.name
        if value.ndim != len(declared) or any(
                dim is not None and dim != got for dim, got in zip(declared, value.shape)):
            raise ShapeError(f"Model {self.model_name!r}: input {name!r} has shape "
                             f"{declared}; got {value.shape}")
        return value

    def summary_lines(self, model) -> list[str]:
        """The rows of `Model.summary()`: the inputs, then each layer in call order."""
        from ember.train._summary import _count, table_lines

        rows = [(f"{sym._data.expr.name} (Input)", _text(sym._data._shape), 0)
                for sym in self.inputs]
        rows += [(f"{name} ({type(layer).__name__})", self.shapes[id(layer)],
                  _count(layer.parameters())[0]) for name, layer in self.layers.items()]
        return table_lines(model, rows)


def _text(shape) -> str:
    return str(tuple(shape))


def _flatten(structure, what: str) -> tuple[list, list]:
    """(keys, symbols) of a single symbol, a list/tuple or a dict of them."""
    if isinstance(structure, dict):
        keys, values = list(structure), list(structure.values())
    elif isinstance(structure, (list, tuple)):
        keys, values = list(range(len(structure))), list(structure)
    else:
        keys, values = [0], [structure]
    if not values:
        raise EmberError(f"Model: {what} is empty")
    for key, value in zip(keys, values):
        if type(value) is not SymbolicTensor:
            raise EmberError(f"Model: {what}[{key!r}] must be a symbolic tensor (from "
                             f"ember.Input and layers called on it), got {type(value).__name__}")
    return keys, values
