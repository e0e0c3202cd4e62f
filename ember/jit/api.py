"""`ember.jit`: trace a function once per input signature, cache the graph, run it.

A signature is, per argument: shape, dtype and device for Tensors (NumPy arrays count as
Tensors); the value itself for static arguments (`static_argnums`) and for other Python
values (numbers, strings, None are baked into the graph as constants, so a new value means
a new trace). When a call brings a new signature and an earlier one exists, the retrace
reason (which argument changed, and how) is kept in `fn.retrace_reasons`, printed when
`explain=True` or `EMBER_LOG_RECOMPILES=1`, and a `RetraceWarning` is issued after
`max_retraces` retraces of one function.

The modes (train/eval) of the modules called while tracing, and the grad mode, are part of
the signature too ("module Linear mode train -> eval"). `loss.backward()` and
`ember.autograd.grad` inside the function record the backward pass into the same graph;
gradients of tensors made outside it (parameters) become extra graph outputs accumulated
into their `.grad` after each run, as eager backward does (`zero_grad()` inside the function
is replayed). In-place updates of tensors made outside it (BatchNorm statistics, the SGD,
Adam and AdamW steps) are written back after each run, or computed straight into their
storage by a fused kernel; random draws (dropout) are graph nodes drawing at every run.

Not supported inside a jitted function: gradients through its outputs, other optimizers'
steps, Python control flow on traced values (each refused with a clear error).
"""
from __future__ import annotations

import functools
import os
import warnings

import numpy as np

from ember._core.errors import EmberError, user_frame
from ember._core.primitive import STATE, AbstractValue, abstract, tracing
from ember._core.tensor import Tensor
from ember.jit.execute import Executable
from ember.jit.ir import Graph
from ember.jit.passes import run_default
from ember.jit.passes.fusion import fuse
from ember.jit.passes.inplace import (
    plan_buffer_reuse,
    plan_persistent_buffers,
    plan_state_updates,
    state_finals,
)
from ember.jit.passes.bias import fold_bias
from ember.jit.passes.layout import fold_transposes
from ember.jit.trace import Tracer


class RetraceWarning(UserWarning):
    """A jitted function was traced again many times (its signature keeps changing)."""


def jit(fn=None, *, static_argnums=(), explain: bool = False, max_retraces: int = 8,
        optimize: bool = True):
    """Compile `fn` by tracing: `ember.jit(f)` or `@ember.jit` or `@ember.jit(static_argnums=1)`.

    With `optimize` (the default) each traced graph goes through `ember.jit.passes.run_default`
    (simplification, constant folding, CSE, dead-code elimination), then elementwise fusion
    (`ember.jit.passes.fusion`: groups of elementwise nodes run as one generated kernel).

    >>> import ember
    >>> from ember.jit import jit
    >>> @jit
    ... def f(x, y):
    ...     return (x * y).sum(axis=1)
    >>> f(ember.ones((2, 3)), ember.ones(3))
    tensor([3., 3.])
    >>> print(f.lower(ember.ones((2, 3)), ember.ones(3)))
    graph f(%0: float32[2, 3], %1: float32[3]):
      %2 = multiply(%0, %1) : float32[2, 3]
      %3 = sum(%2, axes=(1,), keepdims=False) : float32[2]
      return %3
    """
    if fn is None:
        return functools.partial(jit, static_argnums=static_argnums, explain=explain,
                                 max_retraces=max_retraces, optimize=optimize)
    return JitFunction(fn, static_argnums, explain, max_retraces, optimize)


class _Entry:
    __slots__ = ("graph", "compiled", "executable", "structure", "guards", "grad_leaves",
                 "state_targets", "grad_modes", "cleared_grads", "fresh_grads")

    def __init__(self, graph, structure, guards=(), grad_leaves=(), state_targets=(),
                 fuse_kernels=False, grad_modes=None, cleared_grads=(), fresh_grads=()):
        self.graph = graph  # after the optimization passes (what `lower` shows)
        # what runs: transposes folded into GEMMs, dense biases into the losses reading them,
        # elementwise groups as fused kernels
        finals = {value.id for value in state_finals(graph, state_targets)}
        self.compiled = fuse(fold_bias(fold_transposes(graph)), keep=finals) if fuse_kernels \
            else graph
        if fuse_kernels:  # before the first run: kernels are generated to write in place
            plan_state_updates(self.compiled, state_targets)
            plan_buffer_reuse(self.compiled)
            plan_persistent_buffers(self.compiled)
        self.executable = Executable(self.compiled)
        self.structure = structure  # None: one Tensor; else the tuple/list type
        self.guards = guards  # (module, training) of the modules called while tracing
        self.grad_leaves = grad_leaves  # tensors whose .grad the outputs after the user's
        # ones accumulate into; then the new values of tensors updated in place (the last)
        self.state_targets = state_targets
        # per grad leaf: "accumulate", "replace" or "clear" (see Tracer.grad_modes)
        self.grad_modes = grad_modes or ("accumulate",) * len(grad_leaves)
        self.cleared_grads = cleared_grads  # leaves whose .grad is set to None after each run
        self.fresh_grads = fresh_grads  # (param, where): a traced step reads .grad, which
        # must be None as a call starts

    def guard_failure(self):
        """Why this trace does not fit the current state (None when it does)."""
        for module, training in self.guards:
            if module.training != training:
                return (f"module {type(module).__name__} mode {_mode(training)} -> "
                        f"{_mode(module.training)}")
        return None


def _mode(training: bool) -> str:
    return "train" if training else "eval"


class JitFunction:
    """A traced-and-cached function (what `jit` returns)."""

    def __init__(self, fn, static_argnums=(), explain=False, max_retraces=8, optimize=True):
        if isinstance(static_argnums, int):
            static_argnums = (static_argnums,)
        self.fn = fn
        self.static_argnums = frozenset(static_argnums)
        self.explain = explain
        self.max_retraces = max_retraces
        self.optimize = optimize
        self.trace_count = 0
        self.retrace_reasons: list[str] = []
        self._cache: dict = {}
        self._last_key = None
        self._name = getattr(fn, "__name__", type(fn).__name__)
        if not hasattr(fn, "named_parameters"):  # a Module's __dict__ must not be copied
            functools.update_wrapper(self, fn)

    def __call__(self, *args, **kwargs):
        if STATE.tracer is not None:  # called inside another trace: inline
            return self.fn(*args, **kwargs)
        args, kwargs = _as_tensors(args, self.static_argnums), _as_tensors_kw(kwargs)
        for position, arg in _tensor_args(args, kwargs):
            if arg.requires_grad and STATE.grad_enabled:
                raise EmberError(f"{self._name}: argument {position} requires grad, but "
                                 f"gradients through ember.jit are not supported yet at "
                                 f"{user_frame()}; call it eagerly or detach the input")
        entry = self._lookup(args, kwargs)
        for param, where in entry.fresh_grads:
            if param.grad is not None:
                raise EmberError(
                    f"{self._name}: {where} inside ember.jit reads gradients accumulated over "
                    f"calls, which the compiled graph cannot see (a parameter's .grad is set "
                    f"as this call starts); call optimizer.zero_grad() before loss.backward() "
                    f"inside the jitted function, or before calling it")
        arrays = [arg._data for _, arg in _tensor_args(args, kwargs)]
        # gradients the step replaces (zero_grad comes first in it) are dropped before it
        # runs, as eager zero_grad() drops them: old and new are never resident together
        for leaf, mode in zip(entry.grad_leaves, entry.grad_modes):
            if mode != "accumulate":
                leaf.grad = None
        results = entry.executable(*arrays)
        if entry.state_targets:
            results = _write_state(entry, results)
        if entry.grad_leaves:
            results = _write_grads(entry, results)
        for leaf in entry.cleared_grads:
            leaf.grad = None
        outs = [Tensor(array, value.aval.device)
                for array, value in zip(results, entry.graph.outputs)]
        if entry.structure is None:
            return outs[0]
        if hasattr(entry.structure, "_fields"):  # a named tuple such as QRResult
            return entry.structure(*outs)
        return entry.structure(outs)

    def lower(self, *args, fused: bool = False, **kwargs) -> Graph:
        """The graph for these arguments (traced now if not cached); with `fused`, the graph
        that runs, its elementwise groups as `fused{...}` kernel nodes."""
        args, kwargs = _as_tensors(args, self.static_argnums), _as_tensors_kw(kwargs)
        entry = self._lookup(args, kwargs)
        return entry.compiled if fused else entry.graph

    def _lookup(self, args, kwargs) -> _Entry:
        key = _signature(args, kwargs, self.static_argnums)
        entries = self._cache.get(key)
        reason = None
        if entries:
            for entry in entries:
                reason = entry.guard_failure()
                if reason is None:
                    self._last_key = key
                    return entry
        elif self._last_key is not None:
            reason = _difference(self._last_key, key)
        if reason is not None:
            self._note_retrace(reason)
        entry = self._trace(args, kwargs)
        self._cache.setdefault(key, []).append(entry)
        self._last_key = key
        return entry

    def _note_retrace(self, difference: str):
        reason = f"retracing {self._name}: {difference}"
        self.retrace_reasons.append(reason)
        if self.explain or os.environ.get("EMBER_LOG_RECOMPILES") == "1":
            print(reason)
        if len(self.retrace_reasons) == self.max_retraces:
            warnings.warn(f"{self._name} was traced {self.trace_count + 1} times; its input "
                          f"signature keeps changing (last: {reason}); pad shapes to a few "
                          f"sizes or make changing Python values tensors", RetraceWarning,
                          stacklevel=4)

    def _trace(self, args, kwargs) -> _Entry:
        self.trace_count += 1
        tracer = Tracer(self._name)

        def symbolic(arg):
            return tracer.new_input(abstract(arg)) if isinstance(arg, Tensor) else arg

        traced_args = [arg if i in self.static_argnums else symbolic(arg)
                       for i, arg in enumerate(args)]
        traced_kwargs = {name: symbolic(arg) for name, arg in kwargs.items()}
        try:
            with tracing(tracer), tracer.recording():
                out = self.fn(*traced_args, **traced_kwargs)
            tracer.forget_local_state()
            grad_modes, cleared = tracer.grad_modes(), tracer.cleared_grads()
            # the targets of in-place updates hold their last value until restored
            finals = [target._data.value for target, _ in tracer.state_writes.values()]
        finally:
            tracer.restore_grads()
            tracer.restore_state()
        structure = None if isinstance(out, Tensor) else type(out)
        outs = [out] if structure is None else out
        sequence = structure is None or issubclass(structure, (tuple, list))
        if not sequence or not all(isinstance(o, Tensor) for o in outs):
            raise EmberError(f"{self._name}: a jitted function must return a Tensor or a "
                             f"tuple/list of Tensors, got {type(out).__name__}")
        writes = list(tracer.grad_writes.values())
        tracer.graph.outputs = [tracer.lift(o) for o in outs]
        tracer.graph.outputs += [tracer.lift(grad) for _, grad, _ in writes]
        tracer.graph.outputs += finals
        tracer.constant_captures()
        tracer.graph.verify()
        graph = run_default(tracer.graph) if self.optimize else tracer.graph
        guards = tuple(tracer.modules.values())
        return _Entry(graph, structure, guards, tuple(leaf for leaf, _, _ in writes),
                      tuple(target for target, _ in tracer.state_writes.values()),
                      fuse_kernels=self.optimize, grad_modes=grad_modes, cleared_grads=cleared,
                      fresh_grads=tuple(tracer.fresh_grads.values()))

    def __repr__(self):
        count = sum(len(entries) for entries in self._cache.values())
        return f"<jit {self._name}: {count} cached traces>"


def _write_state(entry, results):
    """Copy the new values of the tensors updated in place (the last outputs) into their
    storage, as the eager in-place update would; returns the other outputs."""
    count = len(entry.state_targets)
    rest, values = results[:-count], results[-count:]
    captured = {id(tensor._data) for _, tensor in entry.graph.captures}
    for target, array in zip(entry.state_targets, values):
        if _written_in_place(array, target._data):
            continue  # a fused kernel wrote it into the storage (`plan_state_updates`)
        if id(array) in captured or getattr(array, "base", None) is not None:
            array = array.copy()  # may alias storage written before or after it
        target._data[...] = array
    return rest


def _written_in_place(array, storage) -> bool:
    """True when `array` is `storage` or a view of exactly its memory (same start, shape)."""
    if array is storage:
        return True
    owner = storage if storage.base is None else storage.base
    return (array.base is owner and array.shape == storage.shape
            and array.ctypes.data == storage.ctypes.data)


def _write_grads(entry, results):
    """Accumulate the traced gradients (the last outputs) into the leaves' `.grad`, as the
    eager engine does; returns the user's outputs."""
    count = len(entry.grad_leaves)
    user, grads = results[:-count], results[-count:]
    captured = {id(tensor._data) for _, tensor in entry.graph.captures}
    given = {id(array) for array in user}
    for leaf, array, mode in zip(entry.grad_leaves, grads, entry.grad_modes):
        if mode == "clear":
            leaf.grad = None
            continue
        if leaf.grad is not None and mode == "accumulate":
            leaf.grad = Tensor(leaf.grad._data + array, leaf._device)
            continue
        # each leaf owns its .grad storage: copy views, shared arrays and captured data
        if (getattr(array, "base", None) is not None or id(array) in given
                or id(array) in captured):
            array = array.copy()
        given.add(id(array))
        leaf.grad = Tensor(array, leaf._device)
    return user


def _as_tensors(args, static_argnums):
    return tuple(arg if i in static_argnums or not isinstance(arg, np.ndarray)
                 else Tensor(arg) for i, arg in enumerate(args))


def _as_tensors_kw(kwargs):
    return {name: Tensor(arg) if isinstance(arg, np.ndarray) else arg
            for name, arg in sorted(kwargs.items())}


def _tensor_args(args, kwargs):
    """(position or name, Tensor) of the dynamic arguments, in graph-input order."""
    found = [(i, arg) for i, arg in enumerate(args) if isinstance(arg, Tensor)]
    return found + [(name, arg) for name, arg in kwargs.items() if isinstance(arg, Tensor)]


def _describe_arg(arg, static: bool):
    if isinstance(arg, Tensor) and not static:
        aval = abstract(arg)
        return ("tensor", aval.shape, aval.dtype.name, str(aval.device))
    try:
        hash(arg)
    except TypeError:
        raise EmberError(f"argument {arg!r} of type {type(arg).__name__} is neither a tensor "
                         f"nor hashable; ember.jit needs hashable static values") from None
    return ("static" if static else "constant", type(arg).__name__, arg)


def _signature(args, kwargs, static_argnums) -> tuple:
    positional = tuple(_describe_arg(arg, i in static_argnums) for i, arg in enumerate(args))
    named = tuple((name, _describe_arg(arg, False)) for name, arg in kwargs.items())
    return positional, named, STATE.grad_enabled


def _difference(old, new) -> str:
    """Which argument changed between two signatures, in words."""
    (old_pos, old_named, old_grad), (new_pos, new_named, new_grad) = old, new
    if old_grad != new_grad:
        return f"grad mode {_on(old_grad)} -> {_on(new_grad)}"
    if len(old_pos) != len(new_pos) or [n for n, _ in old_named] != [n for n, _ in new_named]:
        return f"the arguments changed from {_count(old)} to {_count(new)}"
    pairs = list(zip(range(len(old_pos)), old_pos, new_pos))
    pairs += [(name, a, b) for (name, a), (_, b) in zip(old_named, new_named)]
    for where, before, after in pairs:
        if before == after:
            continue
        if before[0] == "tensor" and after[0] == "tensor":
            for label, index in (("shape", 1), ("dtype", 2), ("device", 3)):
                if before[index] != after[index]:
                    return f"argument {where} {label} {before[index]} -> {after[index]}"
        kind = "static argument" if after[0] == "static" else "argument"
        return f"{kind} {where} {_show(before)} -> {_show(after)}"
    return "the signature changed"


def _show(described) -> str:
    if described[0] == "tensor":
        return f"tensor {AbstractValue(described[1], described[2])!r}"
    return repr(described[2])


def _on(enabled: bool) -> str:
    return "on" if enabled else "off"


def _count(signature) -> str:
    positional, named, _ = signature
    return f"{len(positional)} positional / {len(named)} keyword"
