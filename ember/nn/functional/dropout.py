"""Dropout as functions: element-wise and channel-wise (feature) dropout, inverted scaling.

Training output is x * mask / (1 - p) with mask ~ Bernoulli(1 - p), so the expected value is
unchanged and evaluation is the identity. Masks come from `ember.random.default_generator`
(or the `generator` given), which makes `ember.manual_seed` reproduce them. The mask is a
constant factor, so the result is an ordinary product: differentiable to any order.
"""
from __future__ import annotations

import numpy as np

from ember import random
from ember._core.errors import EmberError, user_frame
from ember._core.primitive import shape_error
from ember._core.tensor import Tensor
from ember.ops._util import as_tensor


def _check_probability(op: str, p) -> float:
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
        raise EmberError(f"{op}: dropout probability has to be between 0 and 1, but got "
                         f"p={p!r} at {user_frame()}")
    return float(p)


def _masked(x: Tensor, p: float, mask_shape: tuple, generator) -> Tensor:
    """x times a Bernoulli(1 - p) mask of `mask_shape` (broadcast over x) scaled by 1/(1-p)."""
    if p == 1.0:
        return x * 0.0  # every unit dropped; 1 / (1 - p) would be inf
    keep = (generator or random.default_generator).bernoulli(
        1.0 - p, size=mask_shape, dtype=x.dtype, device=x.device)
    if type(keep._data) is np.ndarray:
        keep._data *= keep._data.dtype.type(1.0 / (1.0 - p))  # the fresh mask, in place
        return x * keep
    return x * (keep * (1.0 / (1.0 - p)))  # traced (a graph node) or on a GPU


def dropout(input, p: float = 0.5, training: bool = True, inplace: bool = False,
            generator=None) -> Tensor:
    """Zero each element with probability p and scale the rest by 1 / (1 - p) (training only).

    `inplace` is accepted for PyTorch compatibility; the result is always a new tensor.

    >>> import ember
    >>> x = ember.ones(6)
    >>> bool((ember.nn.functional.dropout(x, 0.5, training=False) == x).all())
    True
    >>> y = ember.nn.functional.dropout(x, 0.5, generator=ember.random.Generator(0))
    >>> sorted(set(y.tolist())) in ([0.0, 2.0], [0.0], [2.0])
    True
    """
    p = _check_probability("dropout", p)
    x = input if isinstance(input, Tensor) else as_tensor(input)
    if not training or p == 0.0:
        return x
    return _masked(x, p, x.shape, generator)


def _feature_dropout(op: str, input, p, training, generator, batched_ndim: int) -> Tensor:
    """Drop whole channels: the mask has one entry per (sample, channel) of (N, C, *spatial);
    an input with one dimension fewer is taken as unbatched (C, *spatial)."""
    p = _check_probability(op, p)
    x = input if isinstance(input, Tensor) else as_tensor(input)
    if x.ndim not in (batched_ndim - 1, batched_ndim):
        names = {3: "(N, C, L)", 4: "(N, C, H, W)", 5: "(N, C, D, H, W)"}[batched_ndim]
        raise shape_error(op, f"expected a {batched_ndim - 1}-d or {batched_ndim}-d input "
                          f"laid out as {names} (N optional)", x)
    if not training or p == 0.0:
        return x
    channel_axes = 2 if x.ndim == batched_ndim else 1
    mask_shape = x.shape[:channel_axes] + (1,) * (x.ndim - channel_axes)
    return _masked(x, p, mask_shape, generator)


def dropout1d(input, p: float = 0.5, training: bool = True, inplace: bool = False,
              generator=None) -> Tensor:
    """Zero whole channels of (N, C, L) or (C, L) inputs with probability p (training only)."""
    return _feature_dropout("dropout1d", input, p, training, generator, 3)


def dropout2d(input, p: float = 0.5, training: bool = True, inplace: bool = False,
              generator=None) -> Tensor:
    """Zero whole channels of (N, C, H, W) inputs with probability p (training only).

    A 3-d input is taken as (N, C, L), as PyTorch does (channel-wise 1-d dropout).

    >>> import ember
    >>> y = ember.nn.functional.dropout2d(ember.ones((2, 3, 4, 4)), 0.5)
    >>> bool(((y == 0).all(axis=(2, 3)) | (y == 2).all(axis=(2, 3))).all())
    True
    """
    x = input if isinstance(input, Tensor) else as_tensor(input)
    if x.ndim == 3:
        return _feature_dropout("dropout2d", x, p, training, generator, 3)
    return _feature_dropout("dropout2d", x, p, training, generator, 4)


def dropout3d(input, p: float = 0.5, training: bool = True, inplace: bool = False,
              generator=None) -> Tensor:
    """Zero whole channels of (N, C, D, H, W) or (C, D, H, W) inputs with probability p."""
    return _feature_dropout("dropout3d", input, p, training, generator, 5)
