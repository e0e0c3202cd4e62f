"""Gradient clipping, in place on `.grad`, as `torch.nn.utils.clip_grad_norm_/_value_`."""
from __future__ import annotations

import math

import numpy as np

from ember._core.device import CPU
from ember._core.errors import EmberError
from ember._core.tensor import Tensor


class NonFiniteNormError(EmberError, RuntimeError):
    """`clip_grad_norm_(..., error_if_nonfinite=True)` met a NaN or infinite gradient norm."""


def _grads(parameters) -> list[Tensor]:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def _norm_order(norm_type) -> float:
    order = float(norm_type)  # accepts 'inf' as PyTorch does
    if not (order > 0 or order == -math.inf):
        raise EmberError(f"clip_grad_norm_: norm_type must be positive, inf or -inf, "
                         f"got {norm_type!r}")
    return order


def _vector_norm(xp, array, order: float):
    """The `order`-norm of all elements, as a 0-d array on the array's device."""
    if array.dtype.kind == "V" or array.dtype.itemsize < 4:
        array = array.astype(np.float32)  # half precision: reduce in float32
    flat = array.reshape(-1)
    if order == 2:
        return xp.sqrt(xp.vdot(flat, flat))  # one BLAS dot: no |g|^2 temporary
    magnitude = xp.abs(flat)
    if order == math.inf:
        return magnitude.max() if flat.size else xp.zeros((), flat.dtype)
    if order == -math.inf:
        return magnitude.min() if flat.size else xp.asarray(math.inf, flat.dtype)
    if order == 1:
        return magnitude.sum()
    return (magnitude ** order).sum() ** (1.0 / order)


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> Tensor:
    """Scale the gradients of `parameters` in place so that their joint `norm_type`-norm
    (the norm of the per-tensor norms) is at most `max_norm`; returns that norm, measured
    before clipping, as a Tensor.

    >>> import ember
    >>> w = ember.nn.Parameter(ember.zeros(2))
    >>> w.grad = ember.tensor([3.0, 4.0])
    >>> ember.optim.clip.clip_grad_norm_([w], max_norm=1.0)
    tensor(5.)
    >>> [round(value, 4) for value in w.grad.tolist()]
    [0.6, 0.8]
    """
    order = _norm_order(norm_type)
    grads = _grads(parameters)
    if not grads:
        return Tensor(np.zeros((), np.float32), CPU)
    device = grads[0]._device
    xp = device.xp
    norms = [_vector_norm(g._device.xp, g._data, order) for g in grads]
    if all(g._device == device for g in grads):
        total = _vector_norm(xp, xp.stack(norms), order)
    else:  # gradients on several devices: combine their norms on the host
        device, xp = CPU, np
        total = _vector_norm(np, np.array([float(n) for n in norms], np.float32), order)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise NonFiniteNormError(
            f"clip_grad_norm_: the total {norm_type}-norm of the gradients of "
            f"{len(grads)} parameter(s) is {float(total)}, so they cannot be clipped; "
            f"find the NaN/Inf (ember.debug.detect_anomaly()) or pass "
            f"error_if_nonfinite=False to scale them anyway")
    # always multiply, clamped at 1 (PyTorch does the same): no host sync to decide
    scale = xp.minimum(max_norm / (total + 1e-6), 1.0)
    for g in grads:
        factor = scale.astype(g._data.dtype) if g._device == device else float(scale)
        # a new array behind the same Tensor: autograd may hand several leaves one shared
        # (or read-only broadcast) gradient array, which must not be scaled twice
        g._data = g._data * factor
    return Tensor(xp.asarray(total), device)


def clip_grad_value_(parameters, clip_value: float) -> None:
    """Clamp every gradient element of `parameters` into [-clip_value, clip_value], in place.

    >>> import ember
    >>> w = ember.nn.Parameter(ember.zeros(3))
    >>> w.grad = ember.tensor([-5.0, 0.5, 2.0])
    >>> ember.optim.clip.clip_grad_value_([w], clip_value=1.0)
    >>> w.grad
    tensor([-1. ,  0.5,  1. ])
    """
    clip_value = float(clip_value)
    for g in _grads(parameters):
        # a new array: several leaves may share one gradient array (see clip_grad_norm_)
        g._data = g._device.xp.clip(g._data, -clip_value, clip_value)
