"""Primitives and the one dispatch function, `apply`.

Every operation is a `Primitive` subclass holding all of its rules: `infer` (shape/dtype of
the result from abstract inputs), `forward` (compute on raw backend arrays), `vjp` (the
backward rule, written in ember ops so higher-order gradients work). `apply` runs one:

1. if a tracer is active, the tracer receives the call instead (the compiler builds on this);
2. inputs are checked to share one device;
3. `forward` runs on the backend arrays; if the backend raises, `infer` explains the failure
   as an ember error (shapes/dtypes are only re-checked on this slow path, which keeps eager
   dispatch cheap);
4. if grad mode is on and an input requires grad, an autograd `Node` links the outputs.
"""
from __future__ import annotations

import itertools

import numpy as np

from ember._core import dtypes
from ember._core.device import CPU
from ember._core.errors import (
    AnomalyError,
    DeviceError,
    EmberError,
    ShapeError,
    describe,
    user_frame,
)
from ember._core.tensor import Tensor


class _State:
    """Process-wide switches read on every `apply` (kept in one object for speed)."""

    __slots__ = ("grad_enabled", "tracer", "anomaly", "backward_of")

    def __init__(self):
        self.grad_enabled = True
        self.tracer = None
        self.anomaly = False
        self.backward_of = None  # the primitive whose vjp is running (for anomaly messages)


STATE = _State()


class _EngineOps:
    """Ops that `_core` needs but that live above it (registered by `ember._methods.bind`),
    so `_core` imports nothing from the layers built on it."""

    sum_to_shape = None  # (tensor, shape) -> tensor summed down to shape
    astype = None        # (tensor, dtype) -> tensor cast to dtype
    record_symbolic = None  # (prim, args, params) -> symbolic result, or None (no symbol)


ENGINE_OPS = _EngineOps()
_node_counter = itertools.count()


class AbstractValue:
    """Shape, dtype and device of a value without its data (what `infer` works on)."""

    __slots__ = ("shape", "dtype", "device")

    def __init__(self, shape, dtype, device=CPU):
        self.shape = tuple(shape)
        self.dtype = dtypes.as_dtype(dtype)
        self.device = device

    @property
    def ndim(self):
        return len(self.shape)

    def __repr__(self):
        return f"{self.dtype.name}{list(self.shape)}"

    def __eq__(self, other):
        return (isinstance(other, AbstractValue) and self.shape == other.shape
                and self.dtype is other.dtype and self.device == other.device)

    def __hash__(self):
        return hash((self.shape, self.dtype, self.device))


def abstract(value):
    """AbstractValue of a Tensor; Python scalars are returned unchanged (weakly typed)."""
    if isinstance(value, Tensor):
        return AbstractValue(value._data.shape, value.dtype, value._device)
    if isinstance(value, AbstractValue) or value is None:
        return value
    if isinstance(value, (bool, int, float)):
        return value
    array = np.asarray(value)
    return AbstractValue(array.shape, dtypes.from_numpy_dtype(array.dtype))


class Primitive:
    """One operation. Subclasses define `infer`, `forward` and (if differentiable) `vjp`.

    A `forward` returning a tuple gives several outputs (see `accepts_missing_cotangents`
    for the gradients `vjp` then receives). A `forward` that returns
    `WithResiduals(outputs, residuals)` passes extra values (raw arrays) to `vjp` as
    `ctx.residuals`.
    """

    name: str = ""
    differentiable: bool = True
    # True: `vjp` takes None for an output that received no gradient; otherwise the engine
    # passes zeros of the output's shape (a full array write, and a read in vjp)
    accepts_missing_cotangents: bool = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = "".join("_" + c.lower() if c.isupper() else c
                               for c in cls.__name__).lstrip("_")

    def infer(self, *avals, **params):
        raise NotImplementedError(f"primitive {self.name} has no shape rule")

    def forward(self, xp, *args, **params):
        raise NotImplementedError(f"primitive {self.name} has no forward")

    def vjp(self, ctx, *gys):
        raise EmberError(f"{self.name} is not differentiable")

    def __repr__(self):
        return f"<primitive {self.name}>"


class WithResiduals:
    """Returned by a `forward` that saves intermediate arrays for its `vjp`."""

    __slots__ = ("outputs", "residuals")

    def __init__(self, outputs, residuals):
        self.outputs = outputs
        self.residuals = residuals


class Context:
    """What a `vjp` rule sees: the inputs (Tensors or scalars), params, outputs, residuals."""

    __slots__ = ("inputs", "params", "outputs_data", "residuals", "node")

    def __init__(self, inputs, params, outputs_data, residuals, node):
        self.inputs = inputs
        self.params = params
        self.outputs_data = outputs_data
        self.residuals = residuals
        self.node = node

    def output(self, index: int = 0) -> Tensor:
        """Output `index` as a Tensor linked to this node (so vjp rules using it are
        themselves differentiable)."""
        out = Tensor(self.outputs_data[index], self.node.device,
                     requires_grad=self.node.out_requires_grad[index])
        if out.requires_grad:
            out._node = self.node
            out._index = index
        return out

    @property
    def out(self) -> Tensor:
        return self.output(0)


class Node:
    """An autograd graph node: one primitive application with grad-requiring inputs.

    `edges[i]` is None for an input that needs no gradient, else `(target, index, shape,
    np_dtype)` where target is the producing Node (index = which of its outputs) or a leaf
    Tensor (index = -1). `seq` increases with creation, so decreasing seq is a valid
    topological order for the backward pass.
    """

    __slots__ = ("prim", "ctx", "edges", "seq", "hooks", "device", "out_requires_grad",
                 "out_meta", "__weakref__")

    def __init__(self, prim, edges, device, out_requires_grad, out_meta):
        self.prim = prim
        self.ctx = None
        self.edges = edges
        self.seq = next(_node_counter)
        self.hooks = None
        self.device = device
        self.out_requires_grad = out_requires_grad
        self.out_meta = out_meta  # (shape, np dtype) per output, for zero-filling

    @property
    def name(self):
        return self.prim.name

    def __repr__(self):
        return f"<Node {self.prim.name} #{self.seq}>"


def _edge(value):
    """The autograd edge to `value`: None when it needs no gradient."""
    if not isinstance(value, Tensor) or not value.requires_grad:
        return None
    if value._node is not None:
        return (value._node, value._index, value._data.shape, value._data.dtype)
    return (value, -1, value._data.shape, value._data.dtype)


def apply(prim: Primitive, *args, **params):
    """Run primitive `prim` on `args` (Tensors or Python scalars); returns Tensor(s)."""
    state = STATE
    if state.tracer is not None:
        return state.tracer.process(prim, args, params)
    # This function is the eager hot path: every line here costs on every op.
    device = None
    needs_grad = False
    raw = []
    for arg in args:
        if isinstance(arg, Tensor):
            if device is None:
                device = arg._device
            elif arg._device is not device:
                raise _device_error(prim, args)
            raw.append(arg._data)
            if arg.requires_grad:
                needs_grad = True
        else:
            raw.append(arg)
    if device is None:
        device = CPU
    try:
        if params:
            result = prim.forward(device.xp, *raw, **params)
        else:  # calling without ** is measurably cheaper on this hot path
            result = prim.forward(device.xp, *raw)
    except Exception as error:
        # Only after a failure: a symbolic tensor (ember.symbol) among the arguments is
        # recorded instead of computed, so free functions (ember.exp(A)) work on symbols.
        if ENGINE_OPS.record_symbolic is not None:
            recorded = ENGINE_OPS.record_symbolic(prim, args, params)
            if recorded is not None:
                return recorded
        if isinstance(error, EmberError):
            raise
        raise explain_failure(prim, args, params, error) from error
    residuals = None
    result_type = type(result)
    if result_type is not np.ndarray:
        if result_type is WithResiduals:
            result, residuals = result.outputs, result.residuals
            result_type = type(result)
        if result_type is tuple or result_type is list:
            return _wrap_many(prim, args, params, result, residuals, device, needs_grad)
        if device is CPU and result_type is not np.ndarray:
            result = np.asarray(result)  # NumPy returns scalars for 0-d results
    if state.anomaly:
        check_finite(prim, (result,), "forward")
    if needs_grad and state.grad_enabled and prim.differentiable:
        return link_outputs(prim, args, params, (result,), residuals, device)[0]
    return Tensor(result, device)


def _wrap_many(prim, args, params, results, residuals, device, needs_grad):
    outputs_data = tuple(out if device is not CPU or type(out) is np.ndarray
                         else np.asarray(out) for out in results)
    if STATE.anomaly:
        check_finite(prim, outputs_data, "forward")
    if needs_grad and STATE.grad_enabled and prim.differentiable:
        return link_outputs(prim, args, params, outputs_data, residuals, device)
    return tuple(Tensor(out, device) for out in outputs_data)


def link_outputs(prim, args, params, outputs_data, residuals, device) -> tuple:
    """Create the autograd node for one primitive application and its output Tensors."""
    out_requires_grad = tuple(out.dtype.kind in "fV" for out in outputs_data)
    node = Node(prim, tuple(_edge(arg) for arg in args), device, out_requires_grad,
                tuple((out.shape, out.dtype) for out in outputs_data))
    node.ctx = Context(args, params, outputs_data, residuals, node)
    outputs = []
    for index, out in enumerate(outputs_data):
        tensor = Tensor(out, device, out_requires_grad[index])
        if out_requires_grad[index]:
            tensor._node = node
            tensor._index = index
        outputs.append(tensor)
    return tuple(outputs)


def _device_error(prim, args) -> DeviceError:
    listed = ", ".join(f"input {i} on {arg._device}" for i, arg in enumerate(args)
                       if isinstance(arg, Tensor))
    return DeviceError(f"{prim.name}: inputs are on different devices ({listed}) at "
                       f"{user_frame()}; move them to one device with .to(device)")


def explain_failure(prim, args, params, error) -> Exception:
    """Turn a backend exception into an ember error naming the op, operands and user line.

    `infer` runs on abstract inputs and raises the precise ShapeError/DTypeError when it
    finds the problem; otherwise the backend's message is wrapped.
    """
    avals = [abstract(arg) for arg in args]
    try:
        prim.infer(*avals, **params)
    except EmberError as precise:
        return precise
    except Exception:  # an infer rule that cannot run on these inputs: fall through
        pass
    operands = ", ".join(describe(aval) for aval in avals)
    kind = ShapeError if isinstance(error, ValueError) else EmberError
    return kind(f"{prim.name} failed on ({operands}) at {user_frame()}: {error}")


def check_finite(prim, arrays, phase: str):
    for array in arrays:
        if array is None or array.dtype.kind not in "fV":
            continue
        xp = CPU.xp if isinstance(array, np.ndarray) else None
        finite = (xp or _array_module(array)).isfinite(array)
        if not bool(finite.all()):
            what = "NaN" if bool((array != array).any()) else "Inf"
            if STATE.backward_of is not None and phase == "forward":
                phase = f"backward of {STATE.backward_of}"
            raise AnomalyError(f"detect_anomaly: {prim.name} produced {what} in {phase} "
                               f"(output shape {tuple(array.shape)}) at {user_frame()}")


def _array_module(array):
    import cupy

    return cupy.get_array_module(array)


def shape_error(op: str, message: str, *operands) -> ShapeError:
    """A ShapeError naming the op, the operands' shapes and the user's line."""
    described = ", ".join(describe(value) for value in operands)
    return ShapeError(f"{op}: {message} (got {described}) at {user_frame()}")


class tracing:
    """Context manager that routes every `apply` call to `tracer.process(prim, args, params)`.

    A tracer returns whatever stands for the result (symbolic Tensors for the compiler);
    in-place writes reach `tracer.assign(target, value)`. Nested tracing restores the outer
    tracer on exit.
    """

    def __init__(self, tracer):
        self.tracer = tracer

    def __enter__(self):
        self.previous = STATE.tracer
        STATE.tracer = self.tracer
        return self.tracer

    def __exit__(self, *exc):
        STATE.tracer = self.previous
        return False
