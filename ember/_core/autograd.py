"""The reverse-mode autograd engine, grad-mode switches, hooks and custom Functions."""
from __future__ import annotations

import contextlib
import functools
import heapq
import weakref

from ember._core.errors import EmberError
from ember._core.primitive import (
    ENGINE_OPS,
    STATE,
    Primitive,
    check_finite,
    link_outputs,
)
from ember._core.tensor import Tensor


# ---- grad mode ----------------------------------------------------------------------------
class _GradMode(contextlib.ContextDecorator):
    def __init__(self, mode: bool):
        self.mode = bool(mode)

    def __enter__(self):
        self.previous = STATE.grad_enabled
        STATE.grad_enabled = self.mode
        return self

    def __exit__(self, *exc):
        STATE.grad_enabled = self.previous
        return False


class set_grad_enabled(_GradMode):
    """Context manager / decorator turning graph recording on or off; like PyTorch's, a plain
    call `set_grad_enabled(False)` also switches the mode at once."""

    def __init__(self, mode: bool):
        super().__init__(mode)
        self.previous = STATE.grad_enabled
        STATE.grad_enabled = self.mode

    def __enter__(self):
        return self  # the mode was already set by __init__

    def __call__(self, function):
        STATE.grad_enabled = self.previous  # used as a decorator: set the mode per call only
        return _GradMode(self.mode)(function)


def no_grad():
    """Context manager / decorator: operations inside record no graph."""
    return _GradMode(False)


def enable_grad():
    """Context manager / decorator: record the graph even inside `no_grad`."""
    return _GradMode(True)


def is_grad_enabled() -> bool:
    return STATE.grad_enabled


# ---- hooks ----------------------------------------------------------------------------------
class RemovableHandle:
    """Returned by `register_hook`; `.remove()` unregisters the hook."""

    def __init__(self, hooks: list, hook):
        self._hooks = hooks
        self._hook = hook

    def remove(self):
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


def register_hook(tensor: Tensor, hook):
    if not tensor.requires_grad:
        raise EmberError("cannot register a hook on a tensor that does not require grad")
    if tensor._node is None:
        if tensor._hooks is None:
            tensor._hooks = []
        hooks = tensor._hooks
    else:
        node = tensor._node
        if node.hooks is None:
            node.hooks = {}
        hooks = node.hooks.setdefault(tensor._index, [])
    hooks.append(hook)
    return RemovableHandle(hooks, hook)


def retain_grad(tensor: Tensor):
    if tensor._node is None:
        return
    ref = weakref.ref(tensor)

    def keep(grad):
        target = ref()
        if target is not None:
            target.grad = grad if target.grad is None else target.grad + grad

    register_hook(tensor, keep)


# ---- the engine -----------------------------------------------------------------------------
def _fit_to_edge(grad: Tensor, shape, np_dtype) -> Tensor:
    """Reduce a broadcast gradient to the operand's shape and cast it to the operand's dtype."""
    if grad._data.shape != shape:
        grad = ENGINE_OPS.sum_to_shape(grad, shape)
    if grad._data.dtype != np_dtype:
        grad = ENGINE_OPS.astype(grad, np_dtype)
    return grad


def _as_gradient(value, like: Tensor) -> Tensor:
    if value is None:
        if like._data.size != 1:
            raise EmberError(f"backward on a tensor of shape {like.shape} needs `gradient` "
                             f"(the vector in the vector-Jacobian product); only scalar "
                             f"outputs get an implicit gradient of 1")
        # ones(shape) rather than ones_like: `like` may be a traced tensor with no data
        return Tensor(like._device.xp.ones(like._data.shape, like._data.dtype), like._device)
    if not isinstance(value, Tensor):
        value = Tensor(like._device.xp.asarray(value, dtype=like._data.dtype), like._device)
    if value._data.shape != like._data.shape:
        raise EmberError(f"gradient has shape {value.shape} but the output has shape "
                         f"{like.shape}")
    return value


def run_backward(outputs, gradients, retain_graph: bool, create_graph: bool, capture=None):
    """Propagate `gradients` from `outputs` back through the graph.

    Without `capture`, leaf gradients accumulate into `.grad`. With `capture` (a list of
    tensors), their gradients are returned instead and `.grad` is left alone.
    """
    node_grads = {}  # Node -> list of gradients, one per output
    leaf_grads = {}  # id(leaf) -> [leaf, gradient]
    heap = []
    captured = {}
    if capture is not None:
        for position, tensor in enumerate(capture):
            if tensor._node is not None:
                captured.setdefault((tensor._node, tensor._index), []).append(position)
    results = [None] * len(capture) if capture is not None else None
    state = STATE
    previous_mode = state.grad_enabled
    state.grad_enabled = create_graph
    try:
        for output, gradient in zip(outputs, gradients):
            if not output.requires_grad:
                raise EmberError("element of the outputs does not require grad and has no "
                                 "grad_fn; did you call it inside no_grad or on a detached "
                                 "tensor?")
            grad = _as_gradient(gradient, output)
            if output._node is None:
                _send_leaf(leaf_grads, output, grad)
            else:
                _send(node_grads, heap, output._node, output._index, grad)
        while heap:
            node = heapq.heappop(heap)[1]
            grads = node_grads.pop(node)
            if node.hooks:
                _run_node_hooks(node, grads)
            if captured:
                for index, grad in enumerate(grads):
                    for position in captured.get((node, index), ()):
                        results[position] = grad
            ctx = node.ctx
            if ctx is None:
                raise EmberError(
                    f"backward through {node.prim.name} a second time, but its saved values "
                    f"were freed after the first backward; pass retain_graph=True to the "
                    f"first backward() if you need to run it twice")
            if len(grads) > 1 and not node.prim.accepts_missing_cotangents:
                _zero_fill(node, grads)  # a single output always received its gradient
            outer, state.backward_of = state.backward_of, node.prim.name
            try:
                input_grads = node.prim.vjp(ctx, *grads)
            finally:
                state.backward_of = outer
            if state.anomaly:
                check_finite(node.prim, [g._data for g in input_grads if g is not None],
                             f"backward of {node.prim.name}")
            if not retain_graph:
                node.ctx = None
            for edge, grad in zip(node.edges, input_grads):
                if edge is None or grad is None:
                    continue
                target, index, shape, np_dtype = edge
                if grad._data.shape != shape or grad._data.dtype != np_dtype:
                    grad = _fit_to_edge(grad, shape, np_dtype)
                if index < 0:
                    _send_leaf(leaf_grads, target, grad)
                else:
                    _send(node_grads, heap, target, index, grad)
    finally:
        state.grad_enabled = previous_mode
    if capture is None:
        _accumulate_leaves(leaf_grads, create_graph)
        return None
    for position, tensor in enumerate(capture):
        if tensor._node is None and id(tensor) in leaf_grads:
            results[position] = _run_leaf_hooks(tensor, leaf_grads[id(tensor)][1])
    return results


def _send(node_grads, heap, node, index, grad):
    slots = node_grads.get(node)
    if slots is None:
        slots = node_grads[node] = [None] * len(node.out_meta)
        heapq.heappush(heap, (-node.seq, node))
    slots[index] = grad if slots[index] is None else slots[index] + grad


def _send_leaf(leaf_grads, leaf, grad):
    entry = leaf_grads.get(id(leaf))
    if entry is None:
        leaf_grads[id(leaf)] = [leaf, grad]
    else:
        entry[1] = entry[1] + grad


def _run_node_hooks(node, grads):
    for index, hooks in node.hooks.items():
        for hook in hooks:
            if grads[index] is not None:
                replaced = hook(grads[index])
                grads[index] = replaced if replaced is not None else grads[index]


def _run_leaf_hooks(leaf, grad):
    for hook in leaf._hooks or ():
        replaced = hook(grad)
        grad = replaced if replaced is not None else grad
    return grad


def _zero_fill(node, grads):
    for index, grad in enumerate(grads):
        if grad is None:
            shape, np_dtype = node.out_meta[index]
            grads[index] = Tensor(node.device.xp.zeros(shape, np_dtype), node.device)


def _accumulate_leaves(leaf_grads, create_graph):
    accumulate = getattr(STATE.tracer, "accumulate_grad", None)
    if accumulate is not None:  # under ember.jit: the tracer records the write-back
        for leaf, grad in leaf_grads.values():
            accumulate(leaf, _run_leaf_hooks(leaf, grad))
        return
    given = set()  # arrays already handed to a leaf in this pass
    for leaf, grad in leaf_grads.values():
        grad = _run_leaf_hooks(leaf, grad)
        if create_graph:
            leaf.grad = grad if leaf.grad is None else leaf.grad + grad
        elif leaf.grad is None:
            data = grad._data
            # Each leaf owns its .grad storage (optimizers and clipping write into it): a view
            # (e.g. a broadcast gradient of a sum) or an array given to another leaf is copied.
            if (data.base is not None or id(data) in given
                    or not getattr(data.flags, "writeable", True)):
                data = data.copy()
            given.add(id(data))
            leaf.grad = Tensor(data, grad._device)
        else:
            # No graph to record: add the raw arrays (a fresh array, so no aliasing).
            leaf.grad = Tensor(leaf.grad._data + grad._data, grad._device)


def _as_list(value):
    if isinstance(value, Tensor):
        return [value]
    return list(value)


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Compute gradients of `tensors` and accumulate them into the leaves' `.grad`."""
    outputs = _as_list(tensors)
    gradients = [None] * len(outputs) if grad_tensors is None else _as_list(grad_tensors)
    retain = create_graph if retain_graph is None else retain_graph
    if inputs is not None:
        inputs = _as_list(inputs)
        grads = run_backward(outputs, gradients, retain, create_graph, capture=inputs)
        accumulate = getattr(STATE.tracer, "accumulate_grad", None)
        for tensor, grad in zip(inputs, grads):
            if grad is not None and accumulate is not None:
                accumulate(tensor, grad)
            elif grad is not None:
                grad = grad if create_graph else grad.detach()
                tensor.grad = grad if tensor.grad is None else tensor.grad + grad
        return
    run_backward(outputs, gradients, retain, create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """Gradients of `outputs` with respect to `inputs`, returned (not accumulated).

    >>> import ember
    >>> x = ember.tensor(3.0, requires_grad=True)
    >>> (g,) = ember.autograd.grad(x ** 3, x, create_graph=True)
    >>> ember.autograd.grad(g, x)[0].item()   # d2/dx2 x^3 = 6x
    18.0
    """
    outputs = _as_list(outputs)
    input_list = _as_list(inputs)
    for position, tensor in enumerate(input_list):
        if not isinstance(tensor, Tensor) or not tensor.requires_grad:
            raise EmberError(f"autograd.grad: input {position} does not require grad")
    gradients = [None] * len(outputs) if grad_outputs is None else _as_list(grad_outputs)
    retain = create_graph if retain_graph is None else retain_graph
    results = run_backward(outputs, gradients, retain, create_graph, capture=input_list)
    for position, result in enumerate(results):
        if result is None and not allow_unused:
            raise EmberError(f"autograd.grad: input {position} was not used to compute the "
                             f"outputs; pass allow_unused=True to get None for it")
        if result is not None and not create_graph:
            results[position] = result.detach()
    return tuple(results)


# ---- custom functions -------------------------------------------------------------------------
class FunctionCtx:
    """The `ctx` of a custom Function: save tensors in forward, read them in backward."""

    def __init__(self):
        self.saved_tensors = ()
        self.needs_input_grad = ()

    def save_for_backward(self, *tensors):
        self.saved_tensors = tensors


class _FunctionPrimitive(Primitive):
    name = "custom_function"

    def __init__(self, function_class):
        self.function_class = function_class
        self.name = function_class.__name__

    def vjp(self, ctx, *gys):
        grads = self.function_class.backward(ctx.residuals, *gys)
        if not isinstance(grads, tuple):
            grads = (grads,)
        return grads


class Function:
    """A custom differentiable operation, like PyTorch's `torch.autograd.Function`.

    >>> import ember
    >>> class Cube(ember.autograd.Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         ctx.save_for_backward(x)
    ...         return x ** 3
    ...     @staticmethod
    ...     def backward(ctx, gy):
    ...         (x,) = ctx.saved_tensors
    ...         return gy * 3 * x ** 2
    >>> x = ember.tensor(2.0, requires_grad=True)
    >>> Cube.apply(x).backward(); x.grad.item()
    12.0
    """

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **kwargs):
        ctx = FunctionCtx()
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        with _GradMode(False):
            result = cls.forward(ctx, *args, **kwargs)
        outputs = (result,) if isinstance(result, Tensor) else tuple(result)
        if not (STATE.grad_enabled and any(ctx.needs_input_grad)):
            return result
        linked = link_outputs(_primitive_for(cls), args, kwargs,
                              tuple(o._data for o in outputs), ctx,
                              outputs[0]._device)
        return linked[0] if isinstance(result, Tensor) else linked


@functools.cache
def _primitive_for(function_class):
    return _FunctionPrimitive(function_class)

