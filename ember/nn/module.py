"""`Module` and `Parameter`: the containers that own a model's state.

A Module registers every `Parameter`, buffer and sub-Module assigned to it as an attribute,
so `state_dict()` names them by attribute path (`encoder.layers.0.weight`) exactly as
PyTorch does; a PyTorch state dict converted to NumPy arrays loads without renaming.
"""
from __future__ import annotations

import copy
import functools
from collections import OrderedDict, namedtuple

import numpy as np

from ember._core import dtypes
from ember._core.autograd import RemovableHandle, no_grad
from ember._core.device import CPU, Device
from ember._core.device import device as as_device
from ember._core.errors import EmberError
from ember._core.primitive import STATE
from ember._core.tensor import Tensor, _to_device


class Parameter(Tensor):
    """A Tensor that a Module registers as trainable state (`requires_grad=True` by default).

    >>> import ember
    >>> p = ember.nn.Parameter(ember.zeros(2))
    >>> p.requires_grad
    True
    """

    __slots__ = ()

    def __init__(self, data=None, requires_grad: bool = True):
        if data is None:
            data = np.zeros((0,), dtypes.default_float.np)
        if isinstance(data, Tensor):
            array, device = data._data, data._device
        else:
            array, device = np.asarray(data), CPU
            if array.dtype == np.float64 and not isinstance(data, np.ndarray):
                array = array.astype(dtypes.default_float.np)
        super().__init__(array, device)
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self):
        return "Parameter containing:\n" + Tensor.__repr__(self)


class StateDictError(EmberError, KeyError):
    """`load_state_dict` found missing, unexpected or wrongly shaped entries."""

    def __str__(self):
        return self.args[0] if self.args else ""


IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class _CallStack:
    """Modules whose `__call__` is running, so an error can name the failing module's path."""

    depth = 0


def _annotate(error: EmberError, module: "Module"):
    """Prefix the module path to an error as it unwinds through nested module calls."""
    path = getattr(error, "_ember_module_path", None)
    if path is None:
        path = [type(module).__name__]
        error._ember_module_path = path
        error._ember_innermost = module
        error._ember_child = module
        return
    child = error._ember_child
    for name, sub in module.named_modules():
        if sub is child and name:  # a descendant, maybe inside a ModuleList
            path.insert(0, name)
            break
    error._ember_child = module


def _finish_annotation(error: EmberError):
    path = getattr(error, "_ember_module_path", None)
    if not path or not error.args or not isinstance(error.args[0], str):
        return
    where = ".".join(path[:-1])
    label = f"in module {where} ({path[-1]})" if where else f"in module {path[-1]}"
    error.args = (f"{error.args[0]}\n  {label}",) + error.args[1:]
    error._ember_module_path = []


def capture_init_arguments(cls: type) -> type:
    """Make instances of `cls` remember the arguments of their outermost constructor call
    (in `_init_arguments`), which is what `save_model` stores to rebuild them. Idempotent;
    `Module.__init_subclass__` applies it to every Module class."""
    init = cls.__init__
    if getattr(init, "_ember_captures_arguments", False):
        return cls

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        # The subclass's constructor runs first: its arguments rebuild the whole object, so
        # the calls it makes to base-class constructors are not recorded.
        if "_init_arguments" not in self.__dict__:
            object.__setattr__(self, "_init_arguments", (args, kwargs))
        init(self, *args, **kwargs)

    __init__._ember_captures_arguments = True
    cls.__init__ = __init__
    return cls


class Module:
    """Base class of every layer and model: subclass it, assign layers and `Parameter`s in
    `__init__`, compute in `forward`.

    >>> import ember
    >>> class Affine(ember.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.scale = ember.nn.Parameter(ember.ones(3))
    ...     def forward(self, x):
    ...         return x * self.scale
    >>> list(Affine().state_dict())
    ['scale']
    """

    training: bool
    # State-dict entries older checkpoints may lack (kept at their current value when absent).
    _optional_state: frozenset = frozenset()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # Record each instance's constructor arguments: ember.io.save_model stores them as
        # JSON so load_model can rebuild the module without pickling code.
        capture_init_arguments(cls)

    def __init__(self):
        setattr_ = object.__setattr__
        setattr_(self, "training", True)
        setattr_(self, "_parameters", OrderedDict())
        setattr_(self, "_buffers", OrderedDict())
        setattr_(self, "_non_persistent", set())
        setattr_(self, "_modules", OrderedDict())
        setattr_(self, "_forward_pre_hooks", [])
        setattr_(self, "_forward_hooks", [])

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    # ---- calling ---------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        _CallStack.depth += 1
        if STATE.tracer is not None:  # ember.jit keys its cache on the modes of called modules
            saw_module = getattr(STATE.tracer, "saw_module", None)
            if saw_module is not None:
                saw_module(self)
        try:
            for hook in self._forward_pre_hooks:
                changed = hook(self, args)
                if changed is not None:
                    args = changed if isinstance(changed, tuple) else (changed,)
            output = self.forward(*args, **kwargs)
            for hook in self._forward_hooks:
                changed = hook(self, args, output)
                if changed is not None:
                    output = changed
            return output
        except EmberError as error:
            _annotate(error, self)
            if _CallStack.depth == 1:
                _finish_annotation(error)
            raise
        finally:
            _CallStack.depth -= 1

    def register_forward_pre_hook(self, hook) -> RemovableHandle:
        """`hook(module, args)` runs before forward; returning a value replaces the args."""
        self._forward_pre_hooks.append(hook)
        return RemovableHandle(self._forward_pre_hooks, hook)

    def register_forward_hook(self, hook) -> RemovableHandle:
        """`hook(module, args, output)` runs after forward; returning a value replaces it."""
        self._forward_hooks.append(hook)
        return RemovableHandle(self._forward_hooks, hook)

    # ---- registration ------------------------------------------------------------------
    def __setattr__(self, name, value):
        params = self.__dict__.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise EmberError(f"assign parameters after calling Module.__init__() in "
                                 f"{type(self).__name__}")
            if name not in params:  # re-assigning keeps the registration order
                self._forget(name)
            params[name] = value
        elif isinstance(value, Module):
            if params is None:
                raise EmberError(f"assign submodules after calling Module.__init__() in "
                                 f"{type(self).__name__}")
            if name not in self._modules:
                self._forget(name)
            self._modules[name] = value
        elif params is not None and name in params:
            if value is not None:
                raise EmberError(f"cannot assign {type(value).__name__} to parameter "
                                 f"'{name}' of {type(self).__name__}; wrap it in "
                                 f"ember.nn.Parameter or delete the attribute first")
            params[name] = None
        elif params is not None and name in self._modules:
            if value is not None:
                raise EmberError(f"cannot assign {type(value).__name__} to submodule '{name}' "
                                 f"of {type(self).__name__}")
            self._modules[name] = None
        elif params is not None and name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise EmberError(f"buffer '{name}' of {type(self).__name__} must be a Tensor "
                                 f"or None, got {type(value).__name__}")
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name):
        for store in (self._parameters, self._buffers, self._modules):
            store.pop(name, None)
        self._non_persistent.discard(name)
        self.__dict__.pop(name, None)

    def __getattr__(self, name):
        # Only called when normal lookup fails: parameters, buffers and modules live here.
        state = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in state and name in state[store]:
                return state[store][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                self._non_persistent.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))

    def register_parameter(self, name: str, param: Parameter | None):
        """Register `param` (or a `None` placeholder, e.g. a missing bias) under `name`."""
        if param is not None and not isinstance(param, Parameter):
            raise EmberError(f"register_parameter('{name}'): expected a Parameter or None, "
                             f"got {type(param).__name__}")
        self._forget(name)
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True):
        """Register non-trainable state (e.g. running statistics) that moves with the module
        and, when `persistent`, is saved in the state dict."""
        if tensor is not None and not isinstance(tensor, Tensor):
            raise EmberError(f"register_buffer('{name}'): expected a Tensor or None, "
                             f"got {type(tensor).__name__}")
        self._forget(name)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: Module | None):
        if module is not None and not isinstance(module, Module):
            raise EmberError(f"add_module('{name}'): expected a Module, "
                             f"got {type(module).__name__}")
        self._forget(name)
        self._modules[name] = module

    register_module = add_module

    # ---- traversal ---------------------------------------------------------------------
    def named_modules(self, prefix: str = "", memo=None):
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is not None:
                yield from module.named_modules(f"{prefix}.{name}" if prefix else name, memo)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def _named_members(self, store: str, prefix: str, recurse: bool):
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in getattr(module, store).items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{module_prefix}.{name}" if module_prefix else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True):
        yield from self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse: bool = True):
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix: str = "", recurse: bool = True):
        yield from self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True):
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    # ---- state dict --------------------------------------------------------------------
    def state_dict(self, prefix: str = "", keep_vars: bool = False) -> OrderedDict:
        """Every parameter and persistent buffer by dotted name (sharing memory, detached).

        >>> import ember
        >>> sorted(ember.nn.Linear(2, 3).state_dict())
        ['bias', 'weight']
        """
        out = OrderedDict()
        for module_prefix, module in self.named_modules(prefix.rstrip(".")):
            lead = module_prefix + "." if module_prefix else ""
            for name, param in module._parameters.items():
                if param is not None:
                    out[lead + name] = param if keep_vars else param.detach()
            for name, buffer in module._buffers.items():
                if buffer is not None and name not in module._non_persistent:
                    out[lead + name] = buffer if keep_vars else buffer.detach()
        return out

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Load parameters and buffers from a mapping of names to Tensors or NumPy arrays.

        Every entry is converted and checked before anything is written, so a failed load
        leaves the module unchanged. Shape mismatches always raise; with `strict=True`
        missing and unexpected keys raise too, all listed in one `StateDictError`.
        """
        slots = {}
        for module_prefix, module in self.named_modules():
            lead = module_prefix + "." if module_prefix else ""
            for name in module._parameters:
                slots[lead + name] = (module, name, "_parameters")
            for name in module._buffers:
                if name not in module._non_persistent:
                    slots[lead + name] = (module, name, "_buffers")
        missing = [key for key, (module, name, store) in slots.items()
                   if key not in state_dict and getattr(module, store)[name] is not None
                   and name not in module._optional_state]
        unexpected = [key for key in state_dict if key not in slots]
        wrong_shape, staged = [], []
        for key, value in state_dict.items():
            if key not in slots:
                continue
            module, name, store = slots[key]
            current = getattr(module, store)[name]
            array = value._data if isinstance(value, Tensor) else np.asarray(value)
            if current is not None and tuple(array.shape) != tuple(current.shape):
                wrong_shape.append(f"{key}: expected {tuple(current.shape)}, "
                                   f"got {tuple(array.shape)}")
                continue
            staged.append((module, name, store, current, value, array))
        if wrong_shape or (strict and (missing or unexpected)):
            lines = [f"load_state_dict into {type(self).__name__} failed; nothing was loaded"]
            if missing:
                lines.append("missing keys: " + ", ".join(missing))
            if unexpected:
                lines.append("unexpected keys: " + ", ".join(unexpected))
            if wrong_shape:
                lines.append("wrong shapes: " + "; ".join(wrong_shape))
            raise StateDictError("\n  ".join(lines))
        new_data = [(entry, _converted(entry[3], entry[4], entry[5])) for entry in staged]
        touched = {}
        for (module, name, store, current, _, _), (data, device) in new_data:
            if current is None:
                fresh = Parameter(Tensor(data, device)) if store == "_parameters" else \
                    Tensor(data, device)
                getattr(module, store)[name] = fresh
            else:
                current._data = data
                current._device = device
            touched[id(module)] = module
        for module in touched.values():
            module._state_loaded()
        return IncompatibleKeys(missing, unexpected)

    def save_weights(self, path, metadata: dict | None = None) -> None:
        """Write `state_dict()` to `path` (safetensors with checksums, atomically)."""
        from ember.io.model_files import save_weights

        save_weights(self, path, metadata)

    def load_weights(self, path, strict: bool = True) -> IncompatibleKeys:
        """Load a weights file; on any error the module is left unchanged."""
        from ember.io.model_files import load_weights

        return load_weights(self, path, strict)

    def _state_loaded(self):
        """Called after `load_state_dict` wrote into this module: lazy layers whose weights
        arrived from the state dict take their input size from them."""

    # ---- modes and conversion ----------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> Module:
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True):
        tracer = STATE.tracer
        if tracer is not None and hasattr(tracer, "reset_grads"):  # inside ember.jit
            tracer.reset_grads(list(self.parameters()))
        for param in self.parameters():
            if param.grad is None:
                continue
            if set_to_none:
                param.grad = None
            else:
                param.grad._data[...] = 0

    def apply(self, fn) -> Module:
        """Call `fn(module)` on every submodule (children first) and on self."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    def to(self, *args, device=None, dtype=None) -> Module:
        """Move parameters and buffers to a device and/or cast the floating ones to a dtype,
        in place (the Parameter objects stay the same, so optimizers keep working)."""
        for arg in args:
            if isinstance(arg, Device) or (isinstance(arg, str) and arg.split(":")[0]
                                           in ("cpu", "cuda", "gpu")):
                device = arg
            else:
                dtype = arg
        target = as_device(device) if device is not None else None
        dtype = dtypes.as_dtype(dtype) if dtype is not None else None
        if dtype is not None and dtype.kind != "f":
            raise EmberError(f"Module.to: only floating dtypes can be applied to a module, "
                             f"got {dtype.name}")
        with no_grad():
            for tensor in [*self.parameters(), *self.buffers()]:
                _convert_in_place(tensor, target, dtype)
                if tensor.grad is not None:
                    _convert_in_place(tensor.grad, target, dtype)
        return self

    def cpu(self) -> Module:
        return self.to(CPU)

    def cuda(self, index: int = 0) -> Module:
        return self.to(f"cuda:{index}")

    def float(self) -> Module:
        return self.to(dtypes.float32)

    def double(self) -> Module:
        return self.to(dtypes.float64)

    def half(self) -> Module:
        return self.to(dtypes.float16)

    # ---- display -----------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The layer's options, shown inside its repr (override in layers)."""
        return ""

    def __repr__(self):
        lines = []
        extra = self.extra_repr()
        if extra:
            lines.extend(extra.split("\n"))
        for name, module in self._modules.items():
            child = repr(module).replace("\n", "\n  ")
            lines.append(f"({name}): {child}")
        if not lines:
            return f"{type(self).__name__}()"
        if len(lines) == 1 and not self._modules:
            return f"{type(self).__name__}({lines[0]})"
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"

    def __deepcopy__(self, memo):
        """`copy.deepcopy(model)`: an independent module with copied parameters and buffers
        (used for clones such as TransformerEncoder's layers or a best-weights snapshot)."""
        clone = type(self).__new__(type(self))
        memo[id(self)] = clone
        for name, value in self.__dict__.items():
            object.__setattr__(clone, name, copy.deepcopy(value, memo))
        return clone

    def __getstate__(self):
        raise EmberError("ember modules are not pickled; save weights with "
                         "module.state_dict() and ember.save (safetensors)")


def _converted(current, value, array):
    """The array to store for a state-dict entry: the current dtype and device kept."""
    device = current._device if current is not None else (
        value._device if isinstance(value, Tensor) else CPU)
    if isinstance(value, Tensor) and value._device is not CPU:
        value = value.cpu()
        array = value._data
    dtype = current._data.dtype if current is not None else array.dtype
    data = np.array(array, dtype=dtype, copy=True)
    if device is not CPU:
        data = _to_device(Tensor(data), device)._data
    return data, device


def _convert_in_place(tensor: Tensor, target, dtype):
    if dtype is not None and tensor._data.dtype.kind == "f" and tensor._data.dtype != dtype.np:
        tensor._data = tensor._data.astype(dtype.np)
    if target is not None and tensor._device != target:
        tensor._data = _to_device(Tensor(tensor._data, tensor._device), target)._data
        tensor._device = target
