"""Pooling and upsampling layers (no parameters): PyTorch's names, arguments and defaults."""
from __future__ import annotations

from ember.nn.functional.pool import adaptive_avg_pool, adaptive_max_pool, avg_pool, max_pool
from ember.nn.functional.upsample import interpolate
from ember.nn.module import Module


class _MaxPoolNd(Module):
    spatial = 2

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices: bool = False, ceil_mode: bool = False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, input):
        return max_pool(f"max_pool{self.spatial}d", self.spatial, input, self.kernel_size,
                        self.stride, self.padding, self.dilation, self.ceil_mode,
                        self.return_indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
                f", dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(_MaxPoolNd):
    """Max pooling over (N, C, L).

    >>> import ember
    >>> ember.nn.MaxPool1d(2)(ember.ones((1, 2, 6))).shape
    (1, 2, 3)
    """

    spatial = 1


class MaxPool2d(_MaxPoolNd):
    """Max pooling over (N, C, H, W), as torch.nn.MaxPool2d.

    >>> import ember
    >>> ember.nn.MaxPool2d(3, stride=2, padding=1)(ember.ones((1, 2, 8, 8))).shape
    (1, 2, 4, 4)
    """

    spatial = 2


class MaxPool3d(_MaxPoolNd):
    """Max pooling over (N, C, D, H, W), as torch.nn.MaxPool3d.

    >>> import ember
    >>> ember.nn.MaxPool3d(2)(ember.ones((1, 1, 4, 4, 4))).shape
    (1, 1, 2, 2, 2)
    """

    spatial = 3


class _AvgPoolNd(Module):
    spatial = 2

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, input):
        return avg_pool(f"avg_pool{self.spatial}d", self.spatial, input, self.kernel_size,
                        self.stride, self.padding, self.ceil_mode, self.count_include_pad,
                        self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(_AvgPoolNd):
    """Average pooling over (N, C, L).

    >>> import ember
    >>> ember.nn.AvgPool1d(2)(ember.tensor([[[1.0, 3.0, 5.0, 7.0]]]))
    tensor([[[2., 6.]]])
    """

    spatial = 1

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True):
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)


class AvgPool2d(_AvgPoolNd):
    """Average pooling over (N, C, H, W), as torch.nn.AvgPool2d.

    >>> import ember
    >>> ember.nn.AvgPool2d(2, ceil_mode=True)(ember.ones((1, 1, 5, 5))).shape
    (1, 1, 3, 3)
    """

    spatial = 2


class AvgPool3d(_AvgPoolNd):
    """Average pooling over (N, C, D, H, W), as torch.nn.AvgPool3d.

    >>> import ember
    >>> ember.nn.AvgPool3d(2)(ember.ones((1, 1, 4, 4, 4))).shape
    (1, 1, 2, 2, 2)
    """

    spatial = 3


class _AdaptiveAvgPoolNd(Module):
    spatial = 2

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, input):
        return adaptive_avg_pool(f"adaptive_avg_pool{self.spatial}d", self.spatial, input,
                                 self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    """Average over `output_size` adaptive windows of (N, C, L).

    >>> import ember
    >>> ember.nn.AdaptiveAvgPool1d(3)(ember.ones((2, 4, 10))).shape
    (2, 4, 3)
    """

    spatial = 1


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    """Average over adaptive windows of (N, C, H, W); output_size 1 is global pooling.

    >>> import ember
    >>> ember.nn.AdaptiveAvgPool2d(1)(ember.ones((2, 4, 7, 7))).shape
    (2, 4, 1, 1)
    """

    spatial = 2


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    """Average over adaptive windows of (N, C, D, H, W).

    >>> import ember
    >>> ember.nn.AdaptiveAvgPool3d((1, 2, 2))(ember.ones((1, 1, 3, 4, 5))).shape
    (1, 1, 1, 2, 2)
    """

    spatial = 3


class _AdaptiveMaxPoolNd(Module):
    spatial = 2

    def __init__(self, output_size, return_indices: bool = False):
        super().__init__()
        self.output_size, self.return_indices = output_size, return_indices

    def forward(self, input):
        return adaptive_max_pool(f"adaptive_max_pool{self.spatial}d", self.spatial, input,
                                 self.output_size, self.return_indices)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    """Maximum over `output_size` adaptive windows of (N, C, L).

    >>> import ember
    >>> ember.nn.AdaptiveMaxPool1d(2)(ember.tensor([[[1.0, 4.0, 2.0, 3.0]]]))
    tensor([[[4., 3.]]])
    """

    spatial = 1


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    """Maximum over adaptive windows of (N, C, H, W), as torch.nn.AdaptiveMaxPool2d.

    >>> import ember
    >>> ember.nn.AdaptiveMaxPool2d((2, 3))(ember.ones((1, 2, 5, 7))).shape
    (1, 2, 2, 3)
    """

    spatial = 2


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    """Maximum over adaptive windows of (N, C, D, H, W).

    >>> import ember
    >>> ember.nn.AdaptiveMaxPool3d(2)(ember.ones((1, 1, 3, 4, 5))).shape
    (1, 1, 2, 2, 2)
    """

    spatial = 3


class Upsample(Module):
    """Resample by `size` or `scale_factor` (see `ember.nn.functional.interpolate`).

    >>> import ember
    >>> ember.nn.Upsample(scale_factor=2, mode='bilinear')(ember.ones((1, 3, 4, 4))).shape
    (1, 3, 8, 8)
    """

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest",
                 align_corners: bool | None = None, recompute_scale_factor: bool | None = None):
        super().__init__()
        self.size, self.scale_factor, self.mode = size, scale_factor, mode
        self.align_corners, self.recompute_scale_factor = align_corners, recompute_scale_factor

    def forward(self, input):
        return interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                           self.recompute_scale_factor)

    def extra_repr(self):
        given = (f"size={self.size}" if self.size is not None
                 else f"scale_factor={self.scale_factor}")
        return f"{given}, mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
    """Nearest-neighbour 2-d upsampling (Upsample with mode='nearest').

    >>> import ember
    >>> ember.nn.UpsamplingNearest2d(scale_factor=3)(ember.ones((1, 1, 2, 2))).shape
    (1, 1, 6, 6)
    """

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """Bilinear 2-d upsampling with align_corners=True (PyTorch's definition of this layer).

    >>> import ember
    >>> ember.nn.UpsamplingBilinear2d(size=(5, 5))(ember.ones((1, 1, 2, 2))).shape
    (1, 1, 5, 5)
    """

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)
