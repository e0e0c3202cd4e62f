"""Layer-table rows for pooling and upsampling (ember/nn/layers/pool.py).

References are written here (or in tests/ops/conv_reference.py) from PyTorch's documented
definitions, output position by output position; rows cross-check with torch.nn too.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

import ember
from tests.nn.layertable import LayerSpec
from tests.ops.conv_reference import reference_max_pool

try:
    import torch
except ImportError:
    torch = None


def _ntuple(value, count):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * count


def _pool_size(size, k, s, p, d, ceil_mode):
    span = size + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    return out - 1 if ceil_mode and (out - 1) * s >= size + p else out


def _max_pool_ref(spatial, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                  return_indices=False):
    def ref(p, x):
        k = _ntuple(kernel_size, spatial)
        s = _ntuple(stride if stride is not None else kernel_size, spatial)
        q, d = _ntuple(padding, spatial), _ntuple(dilation, spatial)
        outs = [_pool_size(*a, ceil_mode) for a in zip(x.shape[2:], k, s, q, d)]
        # Extra high padding realises ceil_mode; padded taps never win a maximum.
        pads = [(qi, (o - 1) * si + di * (ki - 1) + 1 - n - qi)
                for n, ki, si, qi, di, o in zip(x.shape[2:], k, s, q, d, outs)]
        values, indices = reference_max_pool(x, k, s, pads, d)
        return (values, indices) if return_indices else values
    return ref


def _avg_pool_ref(spatial, kernel_size, stride=None, padding=0, ceil_mode=False,
                  count_include_pad=True, divisor_override=None):
    def ref(p, x):
        k = _ntuple(kernel_size, spatial)
        s = _ntuple(stride if stride is not None else kernel_size, spatial)
        q = _ntuple(padding, spatial)
        outs = [_pool_size(*a, 1, ceil_mode) for a in zip(x.shape[2:], k, s, q)]
        y = np.zeros(x.shape[:2] + tuple(outs))
        for position in itertools.product(*map(range, outs)):
            starts = [o * si - qi for o, si, qi in zip(position, s, q)]
            # PyTorch: windows are clipped to the padded input, then to the input.
            ends = [min(a + ki, n + qi) for a, ki, n, qi in zip(starts, k, x.shape[2:], q)]
            padded_count = math.prod(e - a for a, e in zip(starts, ends))
            lows = [max(a, 0) for a in starts]
            highs = [min(e, n) for e, n in zip(ends, x.shape[2:])]
            window = x[(Ellipsis,) + tuple(slice(a, b) for a, b in zip(lows, highs))]
            divisor = divisor_override or (padded_count if count_include_pad else
                                           math.prod(b - a for a, b in zip(lows, highs)))
            y[(Ellipsis,) + position] = window.sum(axis=tuple(range(2, 2 + spatial))) / divisor
        return y
    return ref


def _adaptive_ref(spatial, output_size, reduce, return_indices=False):
    def ref(p, x):
        outs = [n if o is None else o for n, o in
                zip(x.shape[2:], _ntuple(output_size, spatial))]
        y = np.zeros(x.shape[:2] + tuple(outs))
        where = np.zeros(x.shape[:2] + tuple(outs), dtype=np.int64)
        for position in itertools.product(*map(range, outs)):
            bounds = [(i * n // o, -(-(i + 1) * n // o)) for i, n, o in
                      zip(position, x.shape[2:], outs)]
            window = x[(Ellipsis,) + tuple(slice(a, b) for a, b in bounds)]
            flat = window.reshape(x.shape[:2] + (-1,))
            if reduce == "mean":
                y[(Ellipsis,) + position] = flat.mean(axis=-1)
                continue
            y[(Ellipsis,) + position] = flat.max(axis=-1)
            local = np.unravel_index(flat.argmax(axis=-1), window.shape[2:])
            where[(Ellipsis,) + position] = np.ravel_multi_index(
                [li + a for li, (a, _) in zip(local, bounds)], x.shape[2:])
        return (y, where) if return_indices else y
    return ref


def _resample_ref(spatial, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """PyTorch's source-index rules, one output index at a time (float32 for nearest)."""
    def ref(p, x):
        y = x
        factors = _ntuple(scale_factor, spatial) if scale_factor is not None else \
            (None,) * spatial
        for axis, factor in enumerate(factors, start=2):
            n = x.shape[axis]
            out = _ntuple(size, spatial)[axis - 2] if size is not None else \
                math.floor(n * factor)
            rows = np.zeros((out, n))
            for i in range(out):
                if mode == "nearest":
                    scale = np.float32(1 / factor) if factor else np.float32(n) / np.float32(out)
                    rows[i, min(int(np.floor(np.float32(i) * scale)), n - 1)] = 1
                    continue
                if align_corners:
                    source = i * (n - 1) / (out - 1) if out > 1 else 0.0
                else:
                    scale = 1 / factor if factor else n / out
                    source = max((i + 0.5) * scale - 0.5, 0.0)
                low = min(int(np.floor(source)), n - 1)
                high = min(low + 1, n - 1)
                weight = source - low
                rows[i, low] += 1 - weight
                rows[i, high] += weight
            y = np.moveaxis(np.tensordot(rows, y, axes=([1], [axis])), 0, axis)
        return y
    return ref


def _distinct(shape):
    """Distinct values, spaced far beyond the finite-difference step (no ties for max)."""
    def make(rng, dtype):
        size = math.prod(shape)
        return [(rng.permutation(size) / size * 2 - 1).reshape(shape).astype(dtype)]
    return make


def _row(name, layer, args, kwargs, ref, shape, distinct=False):
    return LayerSpec(name, lambda: getattr(ember.nn, layer)(*args, **kwargs), ref, (shape,), {},
                     make=_distinct(shape) if distinct else None,
                     torch=lambda: getattr(torch.nn, layer)(*args, **kwargs))


def _max(name, layer, spatial, shape, *args, **kwargs):
    return _row(name, layer, args, kwargs, _max_pool_ref(spatial, *args, **kwargs), shape, True)


def _avg(name, layer, spatial, shape, *args, **kwargs):
    return _row(name, layer, args, kwargs, _avg_pool_ref(spatial, *args, **kwargs), shape)


def _adaptive(name, layer, spatial, shape, output_size, **kwargs):
    reduce = "max" if "Max" in layer else "mean"
    return _row(name, layer, (output_size,), kwargs,
                _adaptive_ref(spatial, output_size, reduce, **kwargs), shape, reduce == "max")


def _upsample(name, spatial, shape, layer="Upsample", **kwargs):
    options = dict(mode="nearest", **kwargs) if layer == "UpsamplingNearest2d" else kwargs
    if layer == "UpsamplingBilinear2d":
        options = dict(mode="bilinear", align_corners=True, **kwargs)
    return _row(name, layer, (), kwargs, _resample_ref(spatial, **options), shape)


ROWS = [
    _max("max_pool1d", "MaxPool1d", 1, (2, 3, 9), 3, stride=2, padding=1),
    _max("max_pool2d", "MaxPool2d", 2, (2, 2, 4, 6), 2),
    _max("max_pool2d_ceil_dilation", "MaxPool2d", 2, (1, 2, 7, 6), (3, 2), stride=(2, 1),
         padding=(1, 0), dilation=(1, 2), ceil_mode=True),
    _max("max_pool2d_indices", "MaxPool2d", 2, (2, 2, 5, 5), 3, stride=2, padding=1,
         return_indices=True),
    _max("max_pool3d", "MaxPool3d", 3, (1, 2, 4, 4, 3), 2, stride=(1, 2, 2), padding=1),
    _avg("avg_pool1d_exclude_pad", "AvgPool1d", 1, (2, 3, 9), 3, stride=2, padding=1,
         count_include_pad=False),
    _avg("avg_pool2d_include_pad", "AvgPool2d", 2, (2, 2, 6, 5), 3, stride=2, padding=1),
    _avg("avg_pool2d_ceil_exclude_pad", "AvgPool2d", 2, (1, 2, 5, 5), 2, ceil_mode=True,
         count_include_pad=False),
    _avg("avg_pool2d_ceil_include_pad", "AvgPool2d", 2, (1, 2, 6, 7), 3, stride=2,
         padding=1, ceil_mode=True),
    _avg("avg_pool2d_divisor_override", "AvgPool2d", 2, (1, 2, 4, 4), 2, divisor_override=3),
    _avg("avg_pool3d", "AvgPool3d", 3, (1, 2, 4, 4, 5), (2, 2, 3), stride=(1, 2, 2),
         padding=(1, 0, 1)),
    _adaptive("adaptive_avg_pool1d_uneven", "AdaptiveAvgPool1d", 1, (2, 3, 10), 4),
    _adaptive("adaptive_avg_pool2d_uneven", "AdaptiveAvgPool2d", 2, (2, 2, 7, 5), (3, 2)),
    _adaptive("adaptive_avg_pool2d_global", "AdaptiveAvgPool2d", 2, (2, 3, 4, 5), 1),
    _adaptive("adaptive_avg_pool2d_none", "AdaptiveAvgPool2d", 2, (1, 2, 6, 4), (None, 3)),
    _adaptive("adaptive_avg_pool3d", "AdaptiveAvgPool3d", 3, (1, 2, 3, 5, 4), (2, 3, 2)),
    _adaptive("adaptive_max_pool1d", "AdaptiveMaxPool1d", 1, (2, 2, 7), 3),
    _adaptive("adaptive_max_pool2d_uneven", "AdaptiveMaxPool2d", 2, (2, 2, 7, 5), (3, 4)),
    _adaptive("adaptive_max_pool2d_indices", "AdaptiveMaxPool2d", 2, (1, 2, 5, 6), 4,
              return_indices=True),
    _adaptive("adaptive_max_pool3d", "AdaptiveMaxPool3d", 3, (1, 2, 3, 4, 5), 2),
    _upsample("upsample_nearest_scale2", 2, (1, 2, 3, 4), scale_factor=2),
    _upsample("upsample_nearest_size", 2, (1, 2, 3, 4), size=(5, 7)),
    _upsample("upsample_nearest_1d_fraction", 1, (2, 2, 4), scale_factor=1.5),
    _upsample("upsample_bilinear", 2, (1, 2, 3, 4), scale_factor=2, mode="bilinear"),
    _upsample("upsample_bilinear_size_align_corners", 2, (1, 2, 3, 4), size=(5, 3),
              mode="bilinear", align_corners=True),
    _upsample("upsample_bilinear_downscale", 2, (1, 2, 6, 5), size=(4, 3), mode="bilinear",
              align_corners=False),
    _upsample("upsample_linear", 1, (2, 2, 5), scale_factor=1.7, mode="linear"),
    _upsample("upsample_trilinear", 3, (1, 1, 2, 3, 2), scale_factor=2, mode="trilinear",
              align_corners=True),
    _upsample("upsampling_nearest2d", 2, (1, 2, 3, 3), layer="UpsamplingNearest2d",
              scale_factor=3),
    _upsample("upsampling_bilinear2d", 2, (1, 2, 3, 3), layer="UpsamplingBilinear2d",
              size=(4, 5)),
]
