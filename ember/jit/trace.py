"""Tracing: run a Python function once on symbolic Tensors and record its primitives.

A traced Tensor is an ordinary `Tensor` (subclass `TracedTensor`) whose `_data` is a
`Placeholder`: it has the shape, dtype and size of the value (from `prim.infer`), so
`.shape`, `.dtype`, `.ndim` and shape logic in ops work unchanged, but it holds no numbers.
Anything that needs the numbers (`bool(x)`, `float(x)`, `.item()`, `.numpy()`) raises a
`TraceError` naming the user's line instead of silently freezing one branch.

While `tracing(tracer)` is active, `apply` hands every primitive call to `Tracer.process`,
which appends a node to the `Graph` and returns new traced Tensors. Tensors that were not
made by the trace become captures: the graph reads their storage at run time. Captures that
turn out to be tensors created while the function ran (`ember.zeros(...)`, the constants ops
build internally), that need no gradient, are not updated in place and live on the CPU
become graph constants instead (`Tracer.constant_captures`): their value is fixed by the
trace, as eager would compute it again, and constant folding can act on them. Tensors that
existed before the trace (parameters, buffers, optimizer state, closure tensors) stay
captures, read live.
"""
from __future__ import annotations

import contextlib
import weakref

import numpy as np

from ember._core.autograd import no_grad
from ember._core.device import CPU
from ember._core.errors import EmberError, user_frame
from ember._core.primitive import (
    ENGINE_OPS,
    STATE,
    AbstractValue,
    Context,
    Node,
    _edge,
    tracing,
)
from ember._core.tensor import Tensor
from ember.jit.ir import Graph, Value

# a created tensor larger than this stays a capture (a constant is copied into the graph)
MAX_CONSTANT_ELEMENTS = 1 << 16

_ADVICE = ("use ember.where(condition, a, b) for a data-dependent choice, or pass the "
           "value as a static argument (static_argnums=...) so each value gets its own trace")


class TraceError(EmberError):
    """An operation needs a concrete value, or is not supported, while tracing."""


class Placeholder:
    """Stands in for the backend array of a traced Tensor: shape and dtype, no data."""

    __slots__ = ("value", "tracer", "shape", "dtype", "ndim", "size")

    def __init__(self, value: Value, tracer):
        self.value = value
        self.tracer = tracer
        self.shape = value.aval.shape
        self.dtype = value.aval.dtype.np
        self.ndim = len(self.shape)
        size = 1
        for dim in self.shape:
            size *= dim
        self.size = size

    def __getattr__(self, name):
        if name.startswith("__array"):  # NumPy probing for a conversion
            raise concrete_error("converting to a NumPy array")
        raise TraceError(f"a traced tensor has no concrete data (its `{name}` was needed) "
                         f"at {user_frame()}; {_ADVICE}")

    def __array__(self, dtype=None, copy=None):
        raise concrete_error("converting to a NumPy array")


def concrete_error(what: str) -> TraceError:
    return TraceError(f"{what} needs the value of a traced tensor, which is not known while "
                      f"ember.jit traces, at {user_frame()}; Python control flow on traced "
                      f"values would freeze one branch: {_ADVICE}")


class TracedTensor(Tensor):
    """A symbolic Tensor recorded into a graph (see the module docstring)."""

    __slots__ = ()

    def numpy(self):
        raise concrete_error("`.numpy()`")

    def __array__(self, dtype=None, copy=None):
        raise concrete_error("converting to a NumPy array")

    def item(self):
        raise concrete_error("`.item()`")

    def tolist(self):
        raise concrete_error("`.tolist()`")

    def __bool__(self):
        raise concrete_error("`bool()` (an `if`/`while` on a tensor)")

    def __float__(self):
        raise concrete_error("`float()`")

    def __int__(self):
        raise concrete_error("`int()`")

    def __index__(self):
        raise concrete_error("using a tensor as a Python index")

    def __repr__(self):
        return f"traced({self._data.value!r}: {self._data.value.aval!r})"


class TracedContext(Context):
    """The autograd context of a traced primitive: outputs and residuals are traced (the
    residuals are placeholders of the node's extra outputs; None for primitives without)."""

    __slots__ = ()

    def output(self, index: int = 0) -> Tensor:
        node = self.node
        out = TracedTensor(self.outputs_data[index], node.device,
                           requires_grad=node.out_requires_grad[index])
        if out.requires_grad:
            out._node = node
            out._index = index
        return out


class Tracer:
    """Records primitive applications into `self.graph` (use with `tracing(tracer)`)."""

    records_random_draws = True  # ember.random draws become RANDOM nodes of the graph

    def __init__(self, name: str = "graph"):
        self.graph = Graph(name)
        self._captured: dict[int, Value] = {}  # id(tensor) -> Value
        self.modules: dict[int, tuple] = {}  # id(module) -> (module, training when called)
        # id(leaf) -> [leaf, traced gradient, .grad before the trace] for captured leaves
        self.grad_writes: dict[int, list] = {}
        # id(param) -> [param, .grad before the trace, reset before its first gradient]
        # for parameters whose .grad an optimizer's or module's zero_grad() reset here
        self.grad_resets: dict[int, list] = {}
        self.fresh_grads: dict[int, tuple] = {}  # id(param) -> (param, where a step reads it)
        self.persistent: set[int] = set()  # ids of trace-made tensors that are real state
        self.local_initial: dict[int, object] = {}  # Value id -> array (see forget_local_state)
        # id(tensor) -> [tensor, its storage before the trace] for captured tensors updated
        # in place: their final symbolic value is a graph output copied into that storage
        self.state_writes: dict[int, list] = {}
        self.created: dict[int, weakref.ref] = {}  # id(tensor) -> tensor made while recording

    @contextlib.contextmanager
    def recording(self):
        """Note every Tensor constructed inside the block (`Tensor.__init__` is wrapped for
        its duration only, so eager code pays nothing)."""
        previous = Tensor.__dict__["__init__"]
        created = self.created

        def init(tensor, *args, **kwargs):
            previous(tensor, *args, **kwargs)
            created[id(tensor)] = weakref.ref(tensor)

        Tensor.__init__ = init
        try:
            yield self
        finally:
            Tensor.__init__ = previous

    def keep(self, tensor) -> None:
        """Mark a tensor made during the trace as persistent state (e.g. optimizer moments
        created on the first step): its in-place updates are written back after each run."""
        self.persistent.add(id(tensor))

    def forget_local_state(self) -> None:
        """In-place updates of tensors made during the trace and not kept as state (a local
        accumulator: `acc = ember.zeros(3); acc += x`) are plain SSA rebindings: no write-back,
        so every call starts again from the value the trace created."""
        for key, (target, original) in list(self.state_writes.items()):
            if self.made_here(target) and key not in self.persistent:
                del self.state_writes[key]
                value = self._captured.pop(key, None)  # its value before the first update
                if value is not None:
                    self.local_initial[value.id] = original

    def made_here(self, tensor) -> bool:
        """True when `tensor` was constructed while `recording` (ids are checked by ref)."""
        ref = self.created.get(id(tensor))
        return ref is not None and ref() is tensor

    def constant_captures(self) -> None:
        """Turn the captures of tensors created during the trace into graph constants (call
        once the graph outputs are set): a copy of their value, read-only. Kept as captures:
        tensors that existed before, need gradients (leaves, Parameters), are updated in
        place, are graph outputs, are not NumPy arrays on the CPU, or are large."""
        graph = self.graph
        outputs = {value.id for value in graph.outputs}
        replace, kept = {}, []
        for value, tensor in graph.captures:
            data = self.local_initial.get(value.id, tensor._data)
            if value.id in self.local_initial and type(data) is np.ndarray:
                constant = data.copy()  # a local tensor's value before its first update
                constant.flags.writeable = False
                replace[value.id] = constant
                continue
            if (value.id in outputs or id(tensor) in self.state_writes
                    or not self.made_here(tensor) or tensor.requires_grad
                    or tensor._device is not CPU or type(data) is not np.ndarray
                    or data.size > MAX_CONSTANT_ELEMENTS):
                kept.append((value, tensor))
                continue
            constant = data.copy()
            constant.flags.writeable = False
            replace[value.id] = constant
            del self._captured[id(tensor)]
        if not replace:
            return
        graph.captures = kept
        graph.nodes = [node.copy(replace.get(operand.id, operand)
                                 if isinstance(operand, Value) else operand
                                 for operand in node.inputs)
                       for node in graph.nodes]
        for node in graph.nodes:
            for value in node.outputs:
                value.producer = node

    def new_input(self, aval: AbstractValue) -> TracedTensor:
        return self.wrap(self.graph.add_input(aval))

    def wrap(self, value: Value) -> TracedTensor:
        return TracedTensor(Placeholder(value, self), value.aval.device)

    def lift(self, operand):
        """The graph operand for an `apply` argument: a Value for Tensors, else the constant."""
        if not isinstance(operand, Tensor):
            return operand
        data = operand._data
        if type(data) is Placeholder:
            if data.tracer is not self:
                raise TraceError(f"a tensor traced by another function was used here at "
                                 f"{user_frame()}; do not leak traced tensors out of a "
                                 f"jitted function")
            return data.value
        value = self._captured.get(id(operand))
        if value is None:
            value = self.graph.add_capture(operand)
            self._captured[id(operand)] = value
        return value

    def process(self, prim, args, params):
        inputs = [self.lift(arg) for arg in args]
        differentiated = STATE.grad_enabled and prim.differentiable and any(
            isinstance(arg, Tensor) and arg.requires_grad for arg in args)
        # A primitive whose forward saves arrays for its fast vjp gets them as extra outputs
        # when its backward may be traced (the vjp then reads them like eager does).
        saves = differentiated and getattr(prim, "residual_avals", None) is not None
        node = self.graph.add_node(prim, inputs, params, residuals=saves)
        for value in node.outputs:
            if any(dim is None for dim in value.aval.shape):
                self.graph.nodes.pop()
                raise TraceError(f"{prim.name} has a data-dependent output shape "
                                 f"{value.aval.shape} and cannot be traced at {user_frame()}; "
                                 f"compute it outside the jitted function, or use a "
                                 f"fixed-size alternative (ember.where, masks)")
        results = tuple(self.wrap(value) for value in node.outputs)
        count = len(results) - node.residuals
        results, saved = results[:count], results[count:]
        if differentiated:
            _link(prim, args, params, results, saved)
        return results if node.multiple else results[0]

    def saw_module(self, module):
        self.modules.setdefault(id(module), (module, module.training))

    def accumulate_grad(self, leaf, grad):
        """`leaf.grad += grad` from a traced backward: for tensors made outside the trace
        (parameters), the gradient becomes a graph output written back after each run."""
        if type(leaf._data) is Placeholder:
            leaf.grad = grad if leaf.grad is None else leaf.grad + grad
            return
        entry = self.grad_writes.get(id(leaf))
        if entry is None:
            entry = self.grad_writes[id(leaf)] = [leaf, grad, leaf.grad]
        else:
            with tracing(self):
                entry[1] = entry[1] + grad
        # inside the trace `.grad` shows this call's gradient; the executor adds it to the
        # `.grad` the tensor has at run time
        leaf.grad = entry[1]

    def reset_grads(self, params) -> None:
        """zero_grad() inside the trace: after each run these parameters' `.grad` is this
        run's gradient (not added to the previous one), or None if none flowed."""
        for param in params:
            if id(param) not in self.grad_resets:
                written = self.grad_writes.get(id(param))  # backward came first: its
                before = param.grad if written is None else written[2]  # pre-trace .grad
                self.grad_resets[id(param)] = [param, before, written is None]

    def check_fresh_grad(self, param, optimizer) -> None:
        """An optimizer step in the trace reads `.grad`: it must be this call's gradient
        (zero_grad() before backward), since a sum over earlier calls is not in the graph."""
        reset = self.grad_resets.get(id(param))
        if id(param) in self.grad_writes and (reset is None or not reset[2]):
            # right when .grad is None as a call starts (zero_grad() outside): checked then
            self.fresh_grads[id(param)] = (param, f"{type(optimizer).__name__}.step() at "
                                                  f"{user_frame()}")

    def grad_modes(self) -> tuple:
        """Per written leaf: 'accumulate' (eager backward's +=), 'replace' (zero_grad came
        first) or 'clear' (zero_grad came after: .grad ends as None)."""
        modes = []
        for leaf, _, _ in self.grad_writes.values():
            reset = self.grad_resets.get(id(leaf))
            modes.append("clear" if leaf.grad is None else
                         "replace" if reset is not None and reset[2] else "accumulate")
        return tuple(modes)

    def cleared_grads(self) -> tuple:
        """Parameters reset by zero_grad() here that got no gradient: .grad becomes None."""
        return tuple(param for key, (param, _, _) in self.grad_resets.items()
                     if key not in self.grad_writes)

    def restore_grads(self):
        for leaf, _, before in self.grad_writes.values():
            leaf.grad = before
        for param, before, _ in self.grad_resets.values():
            param.grad = before

    def restore_state(self):
        for tensor, storage in self.state_writes.values():
            tensor._data = storage

    def assign(self, target, value):
        """`target[...] = value` becomes rebinding target to the new value (SSA). A tensor
        made outside the trace (a buffer, a parameter, optimizer state) is rebound too, so
        later reads in the trace see the new value; its last value is written back into its
        storage after each run (`state_writes`; `restore_state` undoes the rebinding)."""
        if value.shape != target.shape:
            raise EmberError(f"in-place result of shape {value.shape} cannot be stored in a "
                             f"tensor of shape {target.shape} at {user_frame()}")
        if value.dtype is not target.dtype:
            with tracing(self):
                value = ENGINE_OPS.astype(value, target.dtype)
        data = target._data
        if type(data) is not Placeholder and id(target) not in self.state_writes:
            self.lift(target)  # reads before this update see the stored value
            self.state_writes[id(target)] = [target, data]
        if type(value._data) is not Placeholder:  # a captured value: read it in the graph
            value = self.wrap(self.lift(value))
        target._data = value._data

    def setitem(self, target, key, value):
        from ember.ops.indexing import index_put

        with tracing(self), no_grad():
            result = index_put(target, key if isinstance(key, tuple) else (key,), value)
        self.assign(target, result)



def _link(prim, args, params, results, saved=()):
    """The autograd node of a traced primitive, so a traced `backward()` records its vjps."""
    placeholders = tuple(result._data for result in results)
    device = next(arg._device for arg in args if isinstance(arg, Tensor))
    out_requires_grad = tuple(p.dtype.kind in "fV" for p in placeholders)
    node = Node(prim, tuple(_edge(arg) for arg in args), device, out_requires_grad,
                tuple((p.shape, p.dtype) for p in placeholders))
    residuals = tuple(tensor._data for tensor in saved) if saved else None
    node.ctx = TracedContext(args, params, placeholders, residuals, node)
    for index, result in enumerate(results):
        if out_requires_grad[index]:
            result.requires_grad = True
            result._node = node
            result._index = index
