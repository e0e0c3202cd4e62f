"""Normalization layers: BatchNorm1d/2d/3d, LayerNorm, GroupNorm, InstanceNorm1d/2d/3d.

Parameters and buffers carry PyTorch's names (weight, bias, running_mean, running_var,
num_batches_tracked), so state dicts move between the two unchanged.
"""
from __future__ import annotations

from ember._core import dtypes
from ember._core.autograd import no_grad
from ember._core.primitive import shape_error
from ember.nn import init
from ember.nn.functional.normalization import batch_norm, group_norm, instance_norm, layer_norm
from ember.nn.module import Module, Parameter
from ember.ops.creation import ones, zeros
from ember.ops.movement import expand_dims, squeeze


class _NormBase(Module):
    """Shared state of batch and instance norm: per-channel affine and running estimates.

    `num_features=None` builds the state on the first call from the input's channel count
    (dimension 1), like PyTorch's LazyBatchNorm.
    """

    _op = ""
    _layouts = ()  # accepted input ranks, e.g. (2, 3) for BatchNorm1d

    # Checkpoints from before PyTorch 0.4.1 have no batch counter (PyTorch loads them too).
    _optional_state = frozenset({"num_batches_tracked"})

    def __init__(self, num_features: int | None, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, dtype=None,
                 device=None):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        self._dtype = dtypes.as_dtype(dtype) if dtype is not None else dtypes.default_float
        self._device = device
        self.register_parameter("weight", None)
        self.register_parameter("bias", None)
        self.register_buffer("running_mean", None)
        self.register_buffer("running_var", None)
        self.register_buffer("num_batches_tracked", None)
        if num_features is not None:
            self._build(num_features)

    def _build(self, num_features: int):
        self.num_features = num_features
        self._create_missing()

    def reset_running_stats(self):
        if self.track_running_stats and self.running_mean is not None:
            with no_grad():
                self.running_mean[...] = 0.0
                self.running_var[...] = 1.0
                self.num_batches_tracked[...] = 0

    def reset_parameters(self):
        self.reset_running_stats()
        if self.affine and self.weight is not None:
            init.ones_(self.weight)
            init.zeros_(self.bias)

    def _state_loaded(self):
        if self.num_features is None:
            loaded = self.weight if self.weight is not None else self.running_mean
            if loaded is not None:
                self.num_features = loaded.shape[0]
                self._create_missing()

    def _create_missing(self):
        """Create, at their initial values (weight 1, bias 0, mean 0, var 1, count 0), the
        parameters and buffers that do not exist yet: all of them when the layer is built,
        or what a lazy layer's loaded state dict did not hold."""
        options = {"dtype": self._dtype, "device": self._device}
        if self.affine and self.weight is None:
            self.weight = Parameter(ones(self.num_features, **options))
            self.bias = Parameter(zeros(self.num_features, **options))
        if self.track_running_stats and self.running_mean is None:
            self.running_mean = zeros(self.num_features, **options)
            self.running_var = ones(self.num_features, **options)
        if self.track_running_stats and self.num_batches_tracked is None:
            self.num_batches_tracked = zeros((), dtype=dtypes.int64, device=self._device)

    def _check_input(self, x):
        if x.ndim not in self._layouts:
            raise shape_error(self._op, f"expected a {' or '.join(map(str, self._layouts))}-d "
                              f"input", x)
        if self.num_features is None:
            self._build(x.shape[1])

    def _average_factor(self) -> float:
        """The momentum to use now; momentum=None averages all batches seen so far."""
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            with no_grad():
                self.num_batches_tracked[...] = self.num_batches_tracked + 1
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked.item())
        return factor

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class _BatchNorm(_NormBase):
    _op = "batch_norm"

    def forward(self, x):
        self._check_input(x)
        factor = self._average_factor()
        # Batch statistics in training, or in evaluation when there are no running ones.
        use_batch_stats = self.training or (self.running_mean is None
                                            and self.running_var is None)
        update = not self.training or self.track_running_stats
        return batch_norm(x, self.running_mean if update else None,
                          self.running_var if update else None, self.weight, self.bias,
                          use_batch_stats, factor, self.eps)


class BatchNorm1d(_BatchNorm):
    """Batch normalization over (N, C) or (N, C, L) inputs, per channel C.

    >>> import ember
    >>> layer = ember.nn.BatchNorm1d(3)
    >>> layer(ember.randn(4, 3)).shape, list(layer.state_dict())
    ((4, 3), ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked'])
    """

    _layouts = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalization over (N, C, H, W) inputs, per channel C."""

    _layouts = (4,)


class BatchNorm3d(_BatchNorm):
    """Batch normalization over (N, C, D, H, W) inputs, per channel C."""

    _layouts = (5,)


class _InstanceNorm(_NormBase):
    _op = "instance_norm"

    def __init__(self, num_features: int | None, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = False, track_running_stats: bool = False, dtype=None,
                 device=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype,
                         device)

    def forward(self, x):
        batched = self._layouts[-1]
        if x.ndim == batched - 1:  # unbatched (C, *spatial)
            return squeeze(self.forward(expand_dims(x, axis=0)), axis=0)
        self._check_input(x)
        # PyTorch's instance norm neither counts batches nor averages cumulatively:
        # momentum=None means the running statistics stay put.
        factor = self.momentum if self.momentum is not None else 0.0
        use_input_stats = self.training or not self.track_running_stats
        return instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                             use_input_stats, factor, self.eps)


class InstanceNorm1d(_InstanceNorm):
    """Instance normalization over (N, C, L) inputs: per sample and channel."""

    _layouts = (3,)


class InstanceNorm2d(_InstanceNorm):
    """Instance normalization over (N, C, H, W) inputs: per sample and channel.

    >>> import ember
    >>> ember.nn.InstanceNorm2d(2)(ember.randn(1, 2, 3, 3)).shape
    (1, 2, 3, 3)
    """

    _layouts = (4,)


class InstanceNorm3d(_InstanceNorm):
    """Instance normalization over (N, C, D, H, W) inputs: per sample and channel."""

    _layouts = (5,)


class LayerNorm(Module):
    """Normalize over the trailing `normalized_shape` dimensions, with an elementwise affine.

    >>> import ember
    >>> layer = ember.nn.LayerNorm(4)
    >>> layer(ember.randn(2, 4)).shape, list(layer.state_dict())
    ((2, 4), ['weight', 'bias'])
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, dtype=None, device=None):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else \
            tuple(normalized_shape)
        self.normalized_shape = shape
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        self.register_parameter("weight", None)
        self.register_parameter("bias", None)
        if elementwise_affine:
            self.weight = Parameter(ones(shape, dtype=dtype, device=device))
            if bias:
                self.bias = Parameter(zeros(shape, dtype=dtype, device=device))

    def reset_parameters(self):
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, x):
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class GroupNorm(Module):
    """Normalize each of `num_groups` groups of channels per sample; per-channel affine.

    >>> import ember
    >>> ember.nn.GroupNorm(2, 4)(ember.randn(3, 4, 5)).shape
    (3, 4, 5)
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, dtype=None, device=None):
        super().__init__()
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels={num_channels} must be divisible by "
                             f"num_groups={num_groups}")
        self.num_groups, self.num_channels = num_groups, num_channels
        self.eps, self.affine = eps, affine
        self.register_parameter("weight", None)
        self.register_parameter("bias", None)
        if affine:
            self.weight = Parameter(ones(num_channels, dtype=dtype, device=device))
            self.bias = Parameter(zeros(num_channels, dtype=dtype, device=device))

    def reset_parameters(self):
        if self.affine:
            init.ones_(self.weight)
            init.zeros_(self.bias)

    def forward(self, x):
        return group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"
