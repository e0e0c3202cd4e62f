"""Helpers over a module's parameters: functional calls, vector views, gradient clipping
(`clip_grad_norm_`/`clip_grad_value_` live in `ember.optim.clip`, re-exported here as in
PyTorch's `torch.nn.utils`)."""
from __future__ import annotations

from ember._core.errors import EmberError
from ember._core.tensor import Tensor
from ember.nn.module import Module
from ember.ops.movement import concat, reshape
from ember.optim.clip import clip_grad_norm_, clip_grad_value_  # noqa: F401 (re-export)


def functional_call(module: Module, tensors: dict, *args, **kwargs):
    """Run `module(*args)` with some parameters/buffers replaced by the given tensors
    (by state-dict name), without changing the module. Gradients then flow to those tensors.

    >>> import ember
    >>> layer = ember.nn.Linear(2, 1, bias=False)
    >>> w = ember.ones((1, 2), requires_grad=True)
    >>> ember.nn.utils.functional_call(layer, {'weight': w}, ember.ones((1, 2))).item()
    2.0
    """
    owners = dict(module.named_modules())
    swapped = []
    try:
        for name, tensor in tensors.items():
            owner_name, _, attr = name.rpartition(".")
            owner = owners.get(owner_name)
            store = None
            if owner is not None:
                store = owner._parameters if attr in owner._parameters else (
                    owner._buffers if attr in owner._buffers else None)
            if store is None:
                raise EmberError(f"functional_call: {type(module).__name__} has no parameter "
                                 f"or buffer named '{name}'")
            swapped.append((store, attr, store[attr]))
            store[attr] = tensor
        return module(*args, **kwargs)
    finally:
        for store, attr, original in reversed(swapped):
            store[attr] = original


def parameters_to_vector(parameters) -> Tensor:
    """All parameters flattened and concatenated into one 1-d tensor (differentiable)."""
    return concat([reshape(p, (-1,)) for p in parameters], axis=0)


def vector_to_parameters(vector: Tensor, parameters):
    """Copy consecutive slices of `vector` into the parameters (in place)."""
    parameters = list(parameters)
    total = sum(p.size for p in parameters)
    if vector.ndim != 1 or vector.shape[0] != total:
        raise EmberError(f"vector_to_parameters: expected a 1-d vector of {total} values for "
                         f"these parameters, got shape {tuple(vector.shape)}")
    offset = 0
    data = vector._data
    for param in parameters:
        chunk = data[offset:offset + param.size].reshape(param.shape)
        param._data[...] = chunk.astype(param._data.dtype, copy=False)
        offset += param.size
