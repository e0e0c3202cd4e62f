"""Layer-table rows for the convolution layers (ember/nn/layers/conv.py).

References are the loop-based definitions in tests/ops/conv_reference.py; each row also builds
the same torch.nn layer when PyTorch is installed.
"""
from __future__ import annotations

import ember
from tests.nn.layertable import LayerSpec
from tests.ops.conv_reference import reference_conv, reference_conv_transpose

try:
    import torch
except ImportError:
    torch = None


def _ntuple(value, count):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * count


def _conv_ref(spatial, stride=1, padding=0, dilation=1, groups=1):
    def ref(p, x):
        kernel = p["weight"].shape[2:]
        strides, dilations = _ntuple(stride, spatial), _ntuple(dilation, spatial)
        if padding == "same":  # the odd element of the total padding goes high
            totals = [d * (k - 1) for k, d in zip(kernel, dilations)]
            pairs = [(t // 2, t - t // 2) for t in totals]
        elif padding == "valid":
            pairs = [(0, 0)] * spatial
        else:
            pairs = [(q, q) for q in _ntuple(padding, spatial)]
        unbatched = x.ndim == spatial + 1
        y = reference_conv(x[None] if unbatched else x, p["weight"], strides, pairs,
                           dilations, groups)
        if "bias" in p:
            y = y + p["bias"].reshape((-1,) + (1,) * spatial)
        return y[0] if unbatched else y
    return ref


def _transpose_ref(spatial, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    def ref(p, x):
        w = p["weight"]
        strides, dilations = _ntuple(stride, spatial), _ntuple(dilation, spatial)
        pads, extras = _ntuple(padding, spatial), _ntuple(output_padding, spatial)
        size = [(n - 1) * s - 2 * q + d * (k - 1) + e + 1 for n, s, q, d, k, e in
                zip(x.shape[2:], strides, pads, dilations, w.shape[2:], extras)]
        y = reference_conv_transpose(x, w, size, strides, [(q, q) for q in pads], dilations,
                                     groups)
        if "bias" in p:
            y = y + p["bias"].reshape((-1,) + (1,) * spatial)
        return y
    return ref


def _row(name, layer, args, kwargs, spatial, input_shape, params):
    """One row: ember.nn.<layer>(*args, **kwargs) against the reference and torch.nn.<layer>."""
    transposed = layer.startswith("ConvTranspose")
    options = {k: v for k, v in kwargs.items() if k != "bias"}
    ref = (_transpose_ref if transposed else _conv_ref)(spatial, **options)
    return LayerSpec(name, lambda: getattr(ember.nn, layer)(*args, **kwargs), ref,
                     (input_shape,), params,
                     torch=lambda: getattr(torch.nn, layer)(*args, **kwargs))


ROWS = [
    _row("conv1d", "Conv1d", (3, 4, 3), dict(stride=2, padding=1, dilation=2), 1, (2, 3, 9),
         {"weight": (4, 3, 3), "bias": (4,)}),
    _row("conv1d_same_even_kernel_groups", "Conv1d", (4, 6, 4), dict(padding="same", groups=2),
         1, (2, 4, 7), {"weight": (6, 2, 4), "bias": (6,)}),
    _row("conv2d", "Conv2d", (3, 4, 3), {}, 2, (2, 3, 6, 5),
         {"weight": (4, 3, 3, 3), "bias": (4,)}),
    _row("conv2d_stride_padding_dilation_tuples", "Conv2d", (2, 3, (3, 2)),
         dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2)), 2, (1, 2, 7, 6),
         {"weight": (3, 2, 3, 2), "bias": (3,)}),
    _row("conv2d_same_dilated_nobias", "Conv2d", (2, 2, 3),
         dict(padding="same", dilation=2, bias=False), 2, (1, 2, 6, 5),
         {"weight": (2, 2, 3, 3)}),
    _row("conv2d_same_even_kernel", "Conv2d", (2, 3, (2, 4)), dict(padding="same"), 2,
         (1, 2, 5, 6), {"weight": (3, 2, 2, 4), "bias": (3,)}),
    _row("conv2d_depthwise", "Conv2d", (3, 6, 3), dict(padding=1, groups=3), 2, (2, 3, 5, 5),
         {"weight": (6, 1, 3, 3), "bias": (6,)}),
    _row("conv2d_valid_1x1", "Conv2d", (3, 2, 1), dict(padding="valid"), 2, (2, 3, 4, 3),
         {"weight": (2, 3, 1, 1), "bias": (2,)}),
    _row("conv2d_unbatched", "Conv2d", (2, 3, 3), dict(padding=1), 2, (2, 4, 5),
         {"weight": (3, 2, 3, 3), "bias": (3,)}),
    _row("conv3d", "Conv3d", (2, 3, (2, 3, 2)), dict(stride=(1, 2, 1), padding=(1, 0, 1)), 3,
         (1, 2, 4, 5, 4), {"weight": (3, 2, 2, 3, 2), "bias": (3,)}),
    _row("conv3d_groups_nobias", "Conv3d", (4, 2, 2), dict(groups=2, bias=False), 3,
         (1, 4, 3, 3, 3), {"weight": (2, 2, 2, 2, 2)}),
    _row("conv_transpose1d", "ConvTranspose1d", (3, 2, 3),
         dict(stride=2, padding=1, output_padding=1), 1, (2, 3, 4),
         {"weight": (3, 2, 3), "bias": (2,)}),
    _row("conv_transpose2d_groups_output_padding", "ConvTranspose2d", (4, 2, (3, 2)),
         dict(stride=(2, 3), padding=(1, 0), output_padding=(1, 2), groups=2), 2,
         (1, 4, 3, 3), {"weight": (4, 1, 3, 2), "bias": (2,)}),
    _row("conv_transpose2d_dilated_nobias", "ConvTranspose2d", (2, 3, 3),
         dict(dilation=2, bias=False), 2, (1, 2, 3, 2), {"weight": (2, 3, 3, 3)}),
    _row("conv_transpose2d_output_padding_below_dilation", "ConvTranspose2d", (2, 2, 2),
         dict(dilation=3, output_padding=2, padding=1), 2, (1, 2, 3, 3),
         {"weight": (2, 2, 2, 2), "bias": (2,)}),
    _row("conv_transpose3d", "ConvTranspose3d", (2, 2, 2), dict(stride=2), 3,
         (1, 2, 2, 2, 2), {"weight": (2, 2, 2, 2, 2), "bias": (2,)}),
]
