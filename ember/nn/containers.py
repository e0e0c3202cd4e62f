"""Containers: `Sequential`, `ModuleList`, `ModuleDict` (children named "0", "1", ... or by key,
as in PyTorch, so state-dict keys match)."""
from __future__ import annotations

from collections import OrderedDict

from ember._core.errors import EmberError
from ember.nn.module import Module


def _index(container: Module, index: int) -> int:
    size = len(container)
    if not -size <= index < size:
        raise IndexError(f"index {index} is out of range for {type(container).__name__} "
                         f"of length {size}")
    return index % size


class _ModuleSequence(Module):
    """Children in order, named by position when appended: what Sequential and ModuleList
    share."""

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module: Module) -> _ModuleSequence:
        self.add_module(str(len(self)), module)
        return self

    def __delitem__(self, index):
        """Delete by position or slice; the rest are renumbered "0", "1", ... as in PyTorch,
        so a later append cannot overwrite a survivor."""
        keys = list(self._modules)
        doomed = keys[index] if isinstance(index, slice) else [keys[_index(self, index)]]
        for key in doomed:
            del self._modules[key]
        survivors = list(self._modules.values())
        self._modules.clear()
        for position, module in enumerate(survivors):
            self._modules[str(position)] = module


class Sequential(_ModuleSequence):
    """Modules applied one after another.

    >>> import ember
    >>> model = ember.nn.Sequential(ember.nn.Linear(4, 8), ember.nn.ReLU(), ember.nn.Linear(8, 2))
    >>> model(ember.ones((3, 4))).shape
    (3, 2)
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], (dict, OrderedDict)):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for position, module in enumerate(modules):
                self.add_module(str(position), module)

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x

    def __getitem__(self, index):
        if isinstance(index, slice):
            return type(self)(OrderedDict(list(self._modules.items())[index]))
        if isinstance(index, str):
            return self._modules[index]
        return list(self._modules.values())[_index(self, index)]

    def __setitem__(self, index: int, module: Module):
        key = list(self._modules)[_index(self, index)]
        self.add_module(key, module)


class ModuleList(_ModuleSequence):
    """A list of modules whose parameters are registered (indexable like a list)."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return ModuleList(list(self._modules.values())[index])
        return self._modules[str(_index(self, index))]

    def __setitem__(self, index: int, module: Module):
        self.add_module(str(_index(self, index)), module)

    def __iadd__(self, modules):
        return self.extend(modules)

    def extend(self, modules) -> ModuleList:
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module):
        modules = list(self._modules.values())
        modules.insert(index, module)
        self._modules.clear()
        self.extend(modules)

    def forward(self, *args, **kwargs):
        raise EmberError("ModuleList is a container and has no forward(); iterate over it")


class ModuleDict(Module):
    """A dict of modules whose parameters are registered under their keys."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module):
        self.add_module(key, module)

    def __delitem__(self, key: str):
        del self._modules[key]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key):
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()

    def pop(self, key: str) -> Module:
        return self._modules.pop(key)

    def update(self, modules):
        items = modules.items() if hasattr(modules, "items") else modules
        for key, module in items:
            self.add_module(key, module)

    def forward(self, *args, **kwargs):
        raise EmberError("ModuleDict is a container and has no forward(); index it by key")
