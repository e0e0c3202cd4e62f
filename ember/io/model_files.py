"""Weights files of a module, and whole-model files that rebuild the model without running
code from the file.

A whole-model file is one safetensors file: the weights as tensors and the architecture as
JSON in the header's ember record (`"model": {"config": ..., "training": ...}`). One file,
not a folder of config + weights, because a single atomic rename then replaces both
together: a crash can never pair a new architecture with old weights, and the file stays
readable by any safetensors tool.

The architecture is each module's class, named in a registry (every `ember.nn` layer,
`ember.Sequential`, and user classes decorated with `@ember.io.register`), and the
arguments its constructor was called with, recorded by `capture_init_arguments` when the
module was built. Containers (`Sequential`, `ModuleList`, `ModuleDict`) are stored by their
children instead, because layers can be added after construction. Loading looks class names
up in the registry only: a name that is not registered is an error, never an import.
"""
from __future__ import annotations

import functools
import math
import os

import numpy as np

from ember._core import dtypes
from ember._core.device import Device
from ember._core.errors import EmberError
from ember.io.files import CheckpointError
from ember.io.weights import _bad, _read, _write
from ember.nn.module import Module, StateDictError, capture_init_arguments

_MAX_DEPTH = 100  # nesting of configs and arguments: deeper is a crafted file
_REGISTRY: dict[str, type] = {}
_TAGS = ("tuple", "dict", "dtype", "module", "float")


def register(cls: type | None = None, *, name: str | None = None):
    """Class decorator: let `load_model` rebuild this Module class, under `name` (default:
    the class's qualified name, e.g. 'Block'). Its constructor arguments must be JSON
    values, tuples, dicts, ember dtypes or Modules.

    >>> import ember
    >>> @ember.io.register(name="docs.Scale")
    ... class Scale(ember.nn.Module):
    ...     def __init__(self, size, factor=2.0):
    ...         super().__init__()
    ...         self.factor = factor
    ...         self.weight = ember.nn.Parameter(ember.ones(size))
    ...     def forward(self, x):
    ...         return x * self.weight * self.factor
    """
    def decorate(cls):
        if not (isinstance(cls, type) and issubclass(cls, Module)):
            raise EmberError(f"ember.io.register: expected an ember.nn.Module subclass, got "
                             f"{cls!r}")
        key = name or cls.__qualname__
        _register(key, cls, builtin=False)
        return capture_init_arguments(cls)

    return decorate(cls) if cls is not None else decorate


def save_weights(module: Module, path, metadata: dict | None = None) -> None:
    """Write `module.state_dict()` to `path` (safetensors with checksums, atomically)."""
    _write(module.state_dict(), path, metadata)


def load_weights(module: Module, path, strict: bool = True):
    """Load a weights file into `module`. The file is fully checked and read into new
    arrays before the module is touched, so any failure leaves the module unchanged.
    `strict=False` tolerates missing and unexpected names (shapes must still match).
    Returns the missing and unexpected keys."""
    path = os.fspath(path)
    arrays, _ = _read(path)
    try:
        return module.load_state_dict(arrays, strict=strict)
    except StateDictError as error:
        raise _bad(path, f"the weights do not fit {type(module).__name__}: {error}") from None


def save_model(model: Module, path, metadata: dict | None = None) -> None:
    """Write the architecture (as JSON) and the weights of `model` to one safetensors file.

    >>> import os, tempfile, ember
    >>> @ember.io.register(name="docs.Shift")
    ... class Shift(ember.nn.Module):
    ...     def __init__(self, size, by=1.0):
    ...         super().__init__()
    ...         self.by = by
    ...         self.weight = ember.nn.Parameter(ember.ones(size))
    ...     def forward(self, x):
    ...         return x * self.weight + self.by
    >>> model = ember.Sequential([Shift(3, by=2.0)], name="shifter")
    >>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
    >>> ember.io.save_model(model, path)
    >>> loaded = ember.io.load_model(path)
    >>> loaded.name, loaded[0].by, loaded(ember.zeros(3)).tolist()
    ('shifter', 2.0, [2.0, 2.0, 2.0])
    """
    config = _config(model, type(model).__name__, 0)
    _write(model.state_dict(), path, metadata,
           extra={"model": {"config": config, "training": model.training}})


def load_model(path, device=None) -> Module:
    """Rebuild a model written by `save_model`: its classes come from the registry, its
    weights (with their saved dtypes) from the file; nothing in the file is executed."""
    path = os.fspath(path)
    arrays, record = _read(path)
    entry = record.get("model")
    if entry is None:
        raise _bad(path, "it holds weights only, no architecture; build the model in code "
                         "and call load_weights")
    if not isinstance(entry, dict) or not isinstance(entry.get("training"), bool):
        raise _bad(path, "the model entry of the ember record is malformed")
    model = _build(path, entry.get("config"), "model", 0)
    _match_dtypes(model, arrays)
    try:
        model.load_state_dict(arrays, strict=True)
    except StateDictError as error:
        raise _bad(path, f"the weights do not fit the architecture stored with them: "
                         f"{error}") from None
    model.train(entry["training"])
    return model.to(device) if device is not None else model


# ---- the registry ---------------------------------------------------------------------
def _register(key: str, cls: type, builtin: bool):
    if not builtin and key.startswith("ember."):
        raise EmberError(f"ember.io.register: names starting with 'ember.' are ember's own; "
                         f"choose another name for {cls.__qualname__}")
    registry = _registry()
    known = registry.get(key)
    redefined = known is not None and (known.__module__, known.__qualname__) == \
        (cls.__module__, cls.__qualname__)  # the same class defined again (a re-run cell)
    if known is not None and known is not cls and not redefined:
        raise EmberError(f"ember.io.register: the name {key!r} already means "
                         f"{known.__module__}.{known.__qualname__}; pass "
                         f"register(name=...) to register {cls.__qualname__} under another")
    registry[key] = cls


@functools.cache
def _containers() -> dict:
    """Container classes (stored by their children) -> constructor keywords to keep."""
    from ember import models, nn

    return {nn.Sequential: (), nn.ModuleList: (), nn.ModuleDict: (),
            models.Sequential: ("name", "input_shape")}


def _registry() -> dict:
    if not _REGISTRY:  # built on first use: ember.nn is complete by then
        from ember import models, nn

        for attribute, value in vars(nn).items():
            if isinstance(value, type) and issubclass(value, Module) and value is not Module:
                _REGISTRY[f"ember.nn.{attribute}"] = value
        _REGISTRY["ember.Sequential"] = models.Sequential
    return _REGISTRY


def _class_name(module: Module, where: str) -> str:
    from ember.models import Model

    cls = type(module)
    if cls is Model:
        raise EmberError(f"save_model: {where} is a functional ember.Model; functional models "
                         f"are saved from the compiler's graph, which is not available yet. "
                         f"Use ember.Sequential or a registered subclass")
    names = [key for key, known in _registry().items() if known is cls]
    if not names:
        raise EmberError(f"save_model: {where} is a {cls.__qualname__}, which is not "
                         f"registered; decorate the class with @ember.io.register so "
                         f"load_model can rebuild it")
    return names[0]


# ---- module -> config -----------------------------------------------------------------
def _config(module: Module, where: str, depth: int) -> dict:
    if depth > _MAX_DEPTH:
        raise EmberError(f"save_model: modules nested deeper than {_MAX_DEPTH} at {where}")
    name = _class_name(module, where)
    kept = _containers().get(type(module))
    if kept is not None:
        children = [[key, _config(child, f"{where}.{key}", depth + 1)]
                    for key, child in module._modules.items() if child is not None]
        kwargs = {key: getattr(module, key) for key in kept}
        return {"class": name, "kwargs": _encode(kwargs, where, depth)["dict"],
                "children": children}
    captured = module.__dict__.get("_init_arguments")
    if captured is None:
        raise EmberError(f"save_model: {where} ({type(module).__qualname__}) did not record "
                         f"its constructor arguments; decorate its class with "
                         f"@ember.io.register")
    args, kwargs = captured
    # Where the model ran is not part of its architecture: load_model(device=...) decides.
    kwargs = {key: value for key, value in kwargs.items() if key != "device"}
    return {"class": name, "args": [_encode(arg, f"{where} argument {index}", depth)
                                    for index, arg in enumerate(args)],
            "kwargs": _encode(kwargs, where, depth)["dict"]}


def _encode(value, where: str, depth: int):
    """A JSON value; what JSON lacks is a one-key object tagged with its kind."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return _encode(value.item(), where, depth)
    if isinstance(value, float):
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, list):
        return [_encode(item, where, depth) for item in value]
    if isinstance(value, tuple):
        return {"tuple": [_encode(item, where, depth) for item in value]}
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {"dict": {key: _encode(item, f"{where} argument {key!r}", depth)
                         for key, item in value.items()}}
    if isinstance(value, dtypes.DType):
        return {"dtype": value.name}
    if isinstance(value, Device):
        return None  # a positional device: rebuilt on the default one (see kwargs above)
    if isinstance(value, Module):
        return {"module": _config(value, f"{where} (a module)", depth + 1)}
    raise EmberError(f"save_model: {where} is a {type(value).__name__}, which a model file "
                     f"cannot store (it holds JSON values, tuples, dicts, dtypes and "
                     f"registered modules); save the weights with save_weights and rebuild "
                     f"the model in code, or pass this argument as a plain value")


# ---- config -> module -----------------------------------------------------------------
def _build(path: str, config, where: str, depth: int) -> Module:
    if depth > _MAX_DEPTH:
        raise _bad(path, f"the architecture nests deeper than {_MAX_DEPTH} modules")
    if not isinstance(config, dict) or not isinstance(config.get("class"), str):
        raise _bad(path, f"the architecture entry for {where} is not a class config")
    name = config["class"]
    cls = _registry().get(name)
    if cls is None:
        raise _bad(path, f"the architecture names class {name!r} (at {where}), which is not "
                         f"registered; define it and decorate it with "
                         f"@ember.io.register(name={name!r}) before load_model. ember never "
                         f"imports code named in a file")
    kwargs = _decode(path, {"dict": config.get("kwargs", {})}, where, depth)
    if cls in _containers():
        module = _construct(path, cls, [], kwargs, where)
        children = config.get("children")
        if not isinstance(children, list):
            raise _bad(path, f"container {where} has no list of children")
        for child in children:
            if not (isinstance(child, list) and len(child) == 2 and isinstance(child[0], str)):
                raise _bad(path, f"a child entry of {where} is not [name, config]")
            key, child_config = child
            if not key or "." in key or key.startswith("_") or hasattr(module, key):
                raise _bad(path, f"container {where} has a child named {key!r:.40}, which "
                                 f"is not a usable module name")
            module.add_module(key, _build(path, child_config, f"{where}.{key}", depth + 1))
        return module
    args = _decode(path, config.get("args", []), where, depth)
    if not isinstance(args, list):
        raise _bad(path, f"the arguments of {where} are not a list")
    return _construct(path, cls, args, kwargs, where)


def _construct(path: str, cls: type, args: list, kwargs: dict, where: str) -> Module:
    try:
        return cls(*args, **kwargs)
    except Exception as error:  # a registered constructor refusing the file's arguments
        raise _bad(path, f"rebuilding {where} as {cls.__qualname__}(...) failed: "
                         f"{type(error).__name__}: {error}") from None


def _decode(path: str, value, where: str, depth: int):
    if depth > _MAX_DEPTH:
        raise _bad(path, f"the arguments of {where} nest deeper than {_MAX_DEPTH}")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [_decode(path, item, where, depth + 1) for item in value]
    if not (isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _TAGS):
        raise _bad(path, f"an argument of {where} is {value!r:.80}, not an encoded value")
    tag, inner = next(iter(value.items()))
    if tag == "tuple" and isinstance(inner, list):
        return tuple(_decode(path, item, where, depth + 1) for item in inner)
    if tag == "dict" and isinstance(inner, dict):
        return {key: _decode(path, item, where, depth + 1) for key, item in inner.items()}
    if tag == "float" and inner in ("inf", "-inf", "nan"):
        return float(inner)
    if tag == "dtype" and isinstance(inner, str):
        try:
            return dtypes.as_dtype(inner)
        except Exception:
            raise _bad(path, f"an argument of {where} names unknown dtype {inner!r:.40}") \
                from None
    if tag == "module":
        return _build(path, inner, f"{where} (argument)", depth + 1)
    raise _bad(path, f"an argument of {where} is a malformed {tag!r} value")


def _match_dtypes(model: Module, arrays: dict):
    """Give the freshly built model the saved dtypes (load_state_dict keeps the model's),
    so a float16 or float64 model comes back as it was saved."""
    for name, tensor in model.state_dict(keep_vars=True).items():
        array = arrays.get(name)
        if array is not None and tensor._data.dtype != array.dtype:
            tensor._data = tensor._data.astype(array.dtype)


__all__ = ["CheckpointError", "capture_init_arguments", "load_model", "load_weights",
           "register", "save_model", "save_weights"]
