"""Loop-based NumPy references for convolution and pooling, written from the definitions
one output position at a time (independent of ember's im2col/col2im). Shared by the op
table (tests/ops/table_conv.py) and the layer tables (tests/nn/table_conv.py, table_pool.py).
"""
from __future__ import annotations

import itertools

import numpy as np


def _out_size(size, kernel, stride, pad, dilation):
    return (size + pad[0] + pad[1] - dilation * (kernel - 1) - 1) // stride + 1


def _taps(position, offsets, stride, padding, dilation):
    """Input coordinates read by kernel tap `offsets` of the window at `position`."""
    return tuple(o * s - p[0] + k * d
                 for o, k, s, p, d in zip(position, offsets, stride, padding, dilation))


def reference_conv(x, w, stride, padding, dilation, groups=1):
    """y[n, o, pos] = sum_{c, k} x[n, g*Cg + c, pos*s - p + k*d] w[o, c, k] (zero outside)."""
    batch, channels = x.shape[:2]
    out_channels, group_channels = w.shape[:2]
    kernel = w.shape[2:]
    out = tuple(_out_size(*a) for a in zip(x.shape[2:], kernel, stride, padding, dilation))
    per_group = out_channels // groups
    y = np.zeros((batch, out_channels) + out, dtype=x.dtype)
    for position in itertools.product(*map(range, out)):
        for offsets in itertools.product(*map(range, kernel)):
            where = _taps(position, offsets, stride, padding, dilation)
            if not all(0 <= i < n for i, n in zip(where, x.shape[2:])):
                continue
            for o in range(out_channels):
                first = (o // per_group) * group_channels
                values = x[(slice(None), slice(first, first + group_channels)) + where]
                y[(slice(None), o) + position] += values @ w[(o, slice(None)) + offsets]
    return y


def reference_conv_transpose(x, w, output_size, stride, padding, dilation, groups=1):
    """PyTorch's transposed convolution by scattering: weight (in, out / groups, *k);
    `padding` as (low, high) pairs of the convolution it is the adjoint of."""
    batch, in_channels = x.shape[:2]
    group_out = w.shape[1]
    per_group = in_channels // groups
    y = np.zeros((batch, group_out * groups) + tuple(output_size), dtype=x.dtype)
    for position in itertools.product(*map(range, x.shape[2:])):
        for offsets in itertools.product(*map(range, w.shape[2:])):
            where = _taps(position, offsets, stride, padding, dilation)
            if not all(0 <= i < n for i, n in zip(where, output_size)):
                continue
            for i in range(in_channels):
                first = (i // per_group) * group_out
                y[(slice(None), slice(first, first + group_out)) + where] += (
                    x[(slice(None), i) + position][:, None] * w[(i, slice(None)) + offsets])
    return y


def _windows(x, kernel, stride, padding, dilation, fill):
    """Every window's values: (N, C, *out, taps), `fill` where a tap leaves the input."""
    out = tuple(_out_size(*a) for a in zip(x.shape[2:], kernel, stride, padding, dilation))
    taps = list(itertools.product(*map(range, kernel)))
    values = np.full(x.shape[:2] + out + (len(taps),), fill, dtype=x.dtype)
    flat = np.full(x.shape[:2] + out + (len(taps),), -1, dtype=np.int64)
    for position in itertools.product(*map(range, out)):
        for t, offsets in enumerate(taps):
            where = _taps(position, offsets, stride, padding, dilation)
            if all(0 <= i < n for i, n in zip(where, x.shape[2:])):
                values[(slice(None), slice(None)) + position + (t,)] = x[(Ellipsis,) + where]
                flat[(slice(None), slice(None)) + position + (t,)] = np.ravel_multi_index(
                    where, x.shape[2:])
    return values, flat


def reference_max_pool(x, kernel, stride, padding, dilation):
    """(maxima, flat plane index of each maximum)."""
    values, flat = _windows(x, kernel, stride, padding, dilation, -np.inf)
    best = np.argmax(values, axis=-1)[..., None]
    return (np.take_along_axis(values, best, -1)[..., 0],
            np.take_along_axis(flat, best, -1)[..., 0])


def reference_window_sum(x, kernel, stride, padding):
    unit = (1,) * len(kernel)
    return _windows(x, kernel, stride, padding, unit, 0.0)[0].sum(axis=-1)
