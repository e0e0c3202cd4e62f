"""Convolution layers: Conv1d/2d/3d (with a lazy in_channels) and ConvTranspose1d/2d/3d.

The modules own the parameters and call `ember.nn.functional`; names, defaults, weight
layouts and initialisation follow PyTorch, so state dicts load across the two.
"""
from __future__ import annotations

import math

from ember._core import dtypes
from ember._core.errors import EmberError, user_frame
from ember.nn import init
from ember.nn.functional.conv import (
    convolution,
    ntuple,
    transposed_convolution,
)
from ember.nn.module import Module, Parameter
from ember.ops.creation import empty


class _ConvNd(Module):
    """Shared parameter handling; `transposed` layers store weight as (in, out / groups, *k)."""

    spatial = 2
    transposed = False

    def __init__(self, in_channels: int | None, out_channels: int, kernel_size, stride=1,
                 padding=0, dilation=1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", output_padding=0, device=None, dtype=None):
        super().__init__()
        name = type(self).__name__
        if padding_mode != "zeros":
            raise EmberError(f"{name}: only padding_mode='zeros' is supported, got "
                             f"{padding_mode!r} at {user_frame()}; pad the input with "
                             f"ember.pad(x, ..., mode=...) and use padding=0")
        if groups < 1 or out_channels % groups or (in_channels is not None
                                                   and in_channels % groups):
            raise EmberError(f"{name}: in_channels={in_channels} and out_channels="
                             f"{out_channels} must both be divisible by groups={groups} at "
                             f"{user_frame()}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = ntuple(kernel_size, self.spatial, "kernel_size", name)
        self.stride = ntuple(stride, self.spatial, "stride", name)
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise EmberError(f"{name}: padding must be 'valid', 'same', an int or a tuple,"
                                 f" got {padding!r} at {user_frame()}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise EmberError(f"{name}: padding='same' is not supported for strided "
                                 f"convolutions (stride={self.stride}) at {user_frame()}")
            self.padding = padding
        else:
            self.padding = ntuple(padding, self.spatial, "padding", name)
        self.dilation = ntuple(dilation, self.spatial, "dilation", name)
        self.output_padding = ntuple(output_padding, self.spatial, "output_padding", name)
        self.groups = groups
        self.padding_mode = padding_mode
        self._dtype = dtypes.as_dtype(dtype) if dtype is not None else dtypes.default_float
        self._device = device
        self.register_parameter("weight", None)
        self.register_parameter("bias", Parameter(empty(
            out_channels, dtype=self._dtype, device=device)) if bias else None)
        if in_channels is not None:
            self._build(in_channels)

    def _build(self, in_channels: int):
        if in_channels % self.groups:
            raise EmberError(f"{type(self).__name__}: the input has {in_channels} channels, "
                             f"not divisible by groups={self.groups} at {user_frame()}")
        self.in_channels = in_channels
        if self.transposed:
            shape = (in_channels, self.out_channels // self.groups)
        else:
            shape = (self.out_channels, in_channels // self.groups)
        self.weight = Parameter(empty(shape + self.kernel_size, dtype=self._dtype,
                                      device=self._device))
        self.reset_parameters()

    def reset_parameters(self):
        # PyTorch's default: kaiming_uniform(a=sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        # for the weight, and the same bound for the bias.
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init.calculate_fan_in_and_fan_out(self.weight)
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def _state_loaded(self):
        if self.weight is not None:
            self.in_channels = (self.weight.shape[0] if self.transposed
                                else self.weight.shape[1] * self.groups)

    def _infer_channels(self, x):
        if self.weight is None:
            self._build(x.shape[1] if x.ndim == self.spatial + 2 else x.shape[0])

    def extra_repr(self):
        in_channels = "None" if self.in_channels is None else self.in_channels
        text = (f"{in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding != (0,) * self.spatial:
            text += f", padding={self.padding}"
        if self.dilation != (1,) * self.spatial:
            text += f", dilation={self.dilation}"
        if self.transposed and self.output_padding != (0,) * self.spatial:
            text += f", output_padding={self.output_padding}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text


class _Conv(_ConvNd):
    def __init__(self, in_channels: int | None, out_channels: int, kernel_size, stride=1,
                 padding=0, dilation=1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, device=device, dtype=dtype)

    def forward(self, input):
        self._infer_channels(input)
        return convolution(f"conv{self.spatial}d", self.spatial, input, self.weight,
                           self.bias, self.stride, self.padding, self.dilation, self.groups)


class Conv1d(_Conv):
    """1-d convolution over (N, C, L); `in_channels=None` infers it on the first call.

    >>> import ember
    >>> ember.nn.Conv1d(None, 4, 3, padding=1)(ember.ones((2, 5, 7))).shape
    (2, 4, 7)
    """

    spatial = 1


class Conv2d(_Conv):
    """2-d convolution over (N, C, H, W), as torch.nn.Conv2d (`in_channels=None`: lazy).

    >>> import ember
    >>> layer = ember.nn.Conv2d(3, 8, 3, stride=2, padding=1)
    >>> layer(ember.ones((1, 3, 8, 8))).shape, layer.weight.shape
    ((1, 8, 4, 4), (8, 3, 3, 3))
    """

    spatial = 2


class Conv3d(_Conv):
    """3-d convolution over (N, C, D, H, W), as torch.nn.Conv3d (`in_channels=None`: lazy).

    >>> import ember
    >>> ember.nn.Conv3d(2, 4, 3, padding='same')(ember.ones((1, 2, 4, 4, 4))).shape
    (1, 4, 4, 4, 4)
    """

    spatial = 3


class _ConvTranspose(_ConvNd):
    transposed = True

    def __init__(self, in_channels: int | None, out_channels: int, kernel_size, stride=1,
                 padding=0, output_padding=0, groups: int = 1, bias: bool = True,
                 dilation=1, padding_mode: str = "zeros", device=None, dtype=None):
        if isinstance(padding, str):
            raise EmberError(f"{type(self).__name__}: padding must be an int or a tuple, got "
                             f"{padding!r} at {user_frame()}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, output_padding, device=device,
                         dtype=dtype)

    def forward(self, input, output_size=None):
        """`output_size` picks among the sizes a strided layer can produce (PyTorch's rule)."""
        self._infer_channels(input)
        return transposed_convolution(
            f"conv_transpose{self.spatial}d", self.spatial, input, self.weight, self.bias,
            self.stride, self.padding, self.output_padding, self.groups, self.dilation,
            output_size=output_size)


class ConvTranspose1d(_ConvTranspose):
    """Transposed 1-d convolution; weight (in, out / groups, k) as in PyTorch.

    >>> import ember
    >>> ember.nn.ConvTranspose1d(4, 2, 3, stride=2)(ember.ones((1, 4, 5))).shape
    (1, 2, 11)
    """

    spatial = 1


class ConvTranspose2d(_ConvTranspose):
    """Transposed 2-d convolution ("deconvolution"), as torch.nn.ConvTranspose2d.

    >>> import ember
    >>> layer = ember.nn.ConvTranspose2d(8, 3, 4, stride=2, padding=1)
    >>> layer(ember.ones((1, 8, 5, 5))).shape, layer.weight.shape
    ((1, 3, 10, 10), (8, 3, 4, 4))
    """

    spatial = 2


class ConvTranspose3d(_ConvTranspose):
    """Transposed 3-d convolution, as torch.nn.ConvTranspose3d.

    >>> import ember
    >>> ember.nn.ConvTranspose3d(2, 1, 2, stride=2)(ember.ones((1, 2, 2, 2, 2))).shape
    (1, 1, 4, 4, 4)
    """

    spatial = 3
