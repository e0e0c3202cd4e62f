"""Normalization layers as functions: batch, layer, group and instance norm (PyTorch semantics).

Each one reshapes its input so that its statistics run over whole axes and calls the fused
`normalize` primitive (ember/ops/normalization.py). Running estimates are updated in place,
under no_grad, through `tensor[...] = value`, so a tracer records the update too.
"""
from __future__ import annotations

import math

from ember._core.autograd import no_grad
from ember._core.errors import EmberError, user_frame
from ember._core.primitive import shape_error
from ember._core.tensor import Tensor
from ember.nn.functional._checks import expect_float
from ember.ops._util import as_tensor
from ember.ops.elementwise import sqrt
from ember.ops.movement import reshape
from ember.ops.normalization import normalize


def _tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else as_tensor(x)


def _expect_param(op: str, name: str, value, shape: tuple):
    if value is not None and tuple(value.shape) != tuple(shape):
        raise shape_error(op, f"expected {name} of shape {tuple(shape)}", value)


def _channels_input(op: str, x: Tensor) -> int:
    if x.ndim < 2:
        raise shape_error(op, "expected an input laid out as (N, C, *spatial) with at least "
                          "2 dimensions", x)
    return x.shape[1]


def _update_running(running: Tensor, batch_value: Tensor, momentum: float):
    """running = (1 - momentum) * running + momentum * batch_value, in place."""
    with no_grad():
        value = batch_value.detach().astype(running.dtype, copy=False)
        running[...] = running * (1.0 - momentum) + value * momentum


def layer_norm(input, normalized_shape, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Normalize over the trailing `normalized_shape` dimensions, then scale and shift.

    >>> import ember
    >>> ember.nn.functional.layer_norm(ember.tensor([[1.0, 2.0, 3.0]]), (3,)).numpy().round(5)
    array([[-1.22474,  0.     ,  1.22474]], dtype=float32)
    """
    x = _tensor(input)
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else \
        tuple(normalized_shape)
    count = len(shape)
    if count == 0 or x.ndim < count or tuple(x.shape[x.ndim - count:]) != shape:
        raise shape_error("layer_norm", f"expected the input's trailing dimensions to equal "
                          f"normalized_shape={list(shape)}", x)
    expect_float("layer_norm", x)
    _expect_param("layer_norm", "weight", weight, shape)
    _expect_param("layer_norm", "bias", bias, shape)
    axes = tuple(range(x.ndim - count, x.ndim))
    return normalize(x, weight, bias, axes, eps)[0]


def _per_channel(param, channels: int, trailing: int):
    """A (C,) parameter shaped to broadcast over (N, C, *spatial)."""
    return None if param is None else reshape(param, (channels,) + (1,) * trailing)


def batch_norm(input, running_mean, running_var, weight=None, bias=None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalization over (N, C, *spatial) with per-channel statistics.

    In training the batch statistics normalize the input and, when running_mean/running_var
    are given, update them in place: running = (1 - momentum) * running + momentum * batch
    (the variance estimate uses the unbiased batch variance, as PyTorch). In evaluation the
    running estimates normalize.

    >>> import ember
    >>> x = ember.tensor([[1.0], [3.0]])
    >>> mean, var = ember.zeros(1), ember.ones(1)
    >>> ember.nn.functional.batch_norm(x, mean, var, training=True, eps=0.0)
    tensor([[-1.],
            [ 1.]])
    >>> mean, var
    (tensor([0.2]), tensor([1.1]))
    """
    x = _tensor(input)
    channels = _channels_input("batch_norm", x)
    expect_float("batch_norm", x)
    for name, value in (("running_mean", running_mean), ("running_var", running_var),
                        ("weight", weight), ("bias", bias)):
        _expect_param("batch_norm", name, value, (channels,))
    trailing = x.ndim - 2
    weight, bias = _per_channel(weight, channels, trailing), _per_channel(bias, channels,
                                                                          trailing)
    if not training:
        if running_mean is None or running_var is None:
            raise EmberError(f"batch_norm: running_mean and running_var are needed when "
                             f"training=False at {user_frame()}")
        return _affine_with_stats(x, running_mean, running_var, weight, bias, eps, channels,
                                  trailing)
    count = x.size // channels if channels else 0
    if count <= 1:
        raise shape_error("batch_norm", "expected more than 1 value per channel when "
                          "training", x)
    axes = (0,) + tuple(range(2, x.ndim))
    y, batch_mean, batch_var = normalize(x, weight, bias, axes, eps)
    if momentum is None:
        raise EmberError(f"batch_norm: momentum=None (a cumulative average) needs the "
                         f"module's num_batches_tracked; pass a float at {user_frame()}")
    if running_mean is not None:
        _update_running(running_mean, reshape(batch_mean, (channels,)), momentum)
    if running_var is not None:
        unbiased = reshape(batch_var, (channels,)) * (count / (count - 1))
        _update_running(running_var, unbiased, momentum)
    return y


def _affine_with_stats(x, mean, var, weight, bias, eps, channels, trailing):
    """(x - mean) / sqrt(var + eps) * weight + bias folded into one scale and one shift."""
    scale = 1.0 / sqrt(var + eps)
    if weight is not None:
        scale = reshape(scale, weight.shape) * weight
    shift = -mean * reshape(scale, (channels,))
    if bias is not None:
        shift = reshape(shift, bias.shape) + bias
    shape = (channels,) + (1,) * trailing
    return x * reshape(scale, shape).astype(x.dtype, copy=False) + reshape(shift, shape).astype(
        x.dtype, copy=False)


def group_norm(input, num_groups: int, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Normalize each of `num_groups` channel groups per sample, then a per-channel affine.

    >>> import ember
    >>> ember.nn.functional.group_norm(ember.tensor([[1.0, 3.0, 5.0, 9.0]]), 2, eps=0.0)
    tensor([[-1.,  1., -1.,  1.]])
    """
    x = _tensor(input)
    channels = _channels_input("group_norm", x)
    expect_float("group_norm", x)
    if num_groups <= 0 or channels % num_groups:
        raise shape_error("group_norm", f"expected the number of channels to be divisible "
                          f"by num_groups={num_groups}", x)
    _expect_param("group_norm", "weight", weight, (channels,))
    _expect_param("group_norm", "bias", bias, (channels,))
    per_group = channels // num_groups
    grouped_shape = (x.shape[0], num_groups, per_group, math.prod(x.shape[2:]))
    param_shape = (num_groups, per_group, 1)
    weight = None if weight is None else reshape(weight, param_shape)
    bias = None if bias is None else reshape(bias, param_shape)
    y = normalize(reshape(x, grouped_shape), weight, bias, (2, 3), eps)[0]
    return reshape(y, x.shape)


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats: bool = True, momentum: float = 0.1,
                  eps: float = 1e-5) -> Tensor:
    """Normalize each channel of each sample over its spatial positions (N, C, *spatial).

    With `use_input_stats` and running estimates given, those are updated with the
    per-sample statistics averaged over the batch (as PyTorch); without it the running
    estimates normalize.

    >>> import ember
    >>> ember.nn.functional.instance_norm(ember.tensor([[[1.0, 3.0]]]), eps=0.0)
    tensor([[[-1.,  1.]]])
    """
    x = _tensor(input)
    channels = _channels_input("instance_norm", x)
    expect_float("instance_norm", x)
    for name, value in (("running_mean", running_mean), ("running_var", running_var),
                        ("weight", weight), ("bias", bias)):
        _expect_param("instance_norm", name, value, (channels,))
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise EmberError(f"instance_norm: running_mean and running_var are needed when "
                             f"use_input_stats=False at {user_frame()}")
        return _affine_with_stats(x, running_mean, running_var,
                                  _per_channel(weight, channels, x.ndim - 2),
                                  _per_channel(bias, channels, x.ndim - 2), eps, channels,
                                  x.ndim - 2)
    positions = math.prod(x.shape[2:])
    if positions <= 1:
        raise shape_error("instance_norm", "expected more than 1 spatial element per channel",
                          x)
    flat = reshape(x, (x.shape[0], channels, positions))
    y, sample_mean, sample_var = normalize(flat, _per_channel(weight, channels, 1),
                                           _per_channel(bias, channels, 1), (2,), eps)
    if running_mean is not None:
        _update_running(running_mean, sample_mean.mean(axis=(0, 2)), momentum)
    if running_var is not None:
        unbiased = sample_var.mean(axis=(0, 2)) * (positions / (positions - 1))
        _update_running(running_var, unbiased, momentum)
    return reshape(y, x.shape)
