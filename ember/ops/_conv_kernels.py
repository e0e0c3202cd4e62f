"""Numba CPU kernels behind convolution and pooling (NumPy float32/float64 arrays only).

Every kernel works on the canonical 3-d layout: inputs are (N, C, D, H, W), and 1-d / 2-d
problems arrive with unit D (and H) axes, kernel 1, stride 1, no padding there. Geometry
arguments are 3-tuples; `pad` is the low-side padding (the high side is implied by the
output size). Padding is never materialised: out-of-range taps read as 0 (convolution) or
are skipped (max pooling).

Why Numba and not stride tricks (measured on a 64x32x26x26 float32 input, 3x3 kernel, one
thread, CPU time, NumPy 2.4): im2col 5.8 ms here (2 ms of it the kernel, the rest first
touching the fresh 42 MB buffer) vs 7.1 ms for `sliding_window_view` + one reshape copy
and 10.5 ms for a loop over kernel offsets; col2im 2.5 ms here vs 13 ms for the loop over
kernel offsets adding strided slices (every pass streams the whole output through the
cache; the kernel finishes one (n, c) plane while it is hot). Those figures are for the
whole-batch kernels; `im2col` now runs `im2col_rows` one sample at a time (equal speed).
`col2im` keeps its own loop: it takes columns of any layout (broadcast gradients among them),
which the run kernel, reading a reshaped contiguous block, cannot. Kernels run serially:
BLAS already owns the cores during the GEMM, and Numba's default threading layer is not safe
to call from several Python threads at once.
"""
from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def im2col(x, kernel, stride, pad, dilation, cols):
    """cols[n, c, kd, kh, kw, od, oh, ow] = x[n, c, od*s - p + kd*d, ...] (0 outside x):
    `im2col_rows` one sample at a time (a sample's block of `cols` is that kernel's layout
    for a run of one)."""
    for n in range(x.shape[0]):
        sample = cols[n]
        im2col_rows(x, n, kernel, stride, pad, dilation,
                    sample.reshape(sample.shape[:4] + (1,) + sample.shape[4:]))


@numba.njit(cache=True)
def col2im(cols, kernel, stride, pad, dilation, out):
    """The transpose of `im2col`: out[n, c, z, y, x] += every tap that read it (out zeroed)."""
    batch, channels, depth, height, width = out.shape
    out_d, out_h, out_w = cols.shape[5], cols.shape[6], cols.shape[7]
    for n in range(batch):
        for c in range(channels):
            for kd in range(kernel[0]):
                for kh in range(kernel[1]):
                    for kw in range(kernel[2]):
                        for od in range(out_d):
                            z = od * stride[0] - pad[0] + kd * dilation[0]
                            if z < 0 or z >= depth:
                                continue
                            for oh in range(out_h):
                                y = oh * stride[1] - pad[1] + kh * dilation[1]
                                if y < 0 or y >= height:
                                    continue
                                for ow in range(out_w):
                                    col = ow * stride[2] - pad[2] + kw * dilation[2]
                                    if 0 <= col < width:
                                        out[n, c, z, y, col] += cols[n, c, kd, kh, kw, od, oh,
                                                                     ow]


@numba.njit(cache=True)
def max_pool(x, kernel, stride, pad, dilation, out, indices):
    """Window maxima and their flat positions in the (D, H, W) plane, as PyTorch reports them.

    A NaN wins over any number (PyTorch propagates NaN through max pooling).
    """
    batch, channels, depth, height, width = x.shape
    out_d, out_h, out_w = out.shape[2], out.shape[3], out.shape[4]
    for n in range(batch):
        for c in range(channels):
            for od in range(out_d):
                for oh in range(out_h):
                    for ow in range(out_w):
                        best = -np.inf
                        best_index = -1
                        for kd in range(kernel[0]):
                            z = od * stride[0] - pad[0] + kd * dilation[0]
                            if z < 0 or z >= depth:
                                continue
                            for kh in range(kernel[1]):
                                y = oh * stride[1] - pad[1] + kh * dilation[1]
                                if y < 0 or y >= height:
                                    continue
                                for kw in range(kernel[2]):
                                    col = ow * stride[2] - pad[2] + kw * dilation[2]
                                    if col < 0 or col >= width:
                                        continue
                                    value = x[n, c, z, y, col]
                                    if best_index < 0 or value > best or value != value:
                                        best = value
                                        best_index = (z * height + y) * width + col
                        out[n, c, od, oh, ow] = best
                        indices[n, c, od, oh, ow] = best_index


@numba.njit(cache=True)
def max_pool_planes(x, kernel_h, kernel_w, stride_h, stride_w, out, indices):
    """`max_pool` for unpadded, undilated windows over (planes, H, W): every tap is inside,
    so there are no bounds tests, and the running maximum is a select, not a branch
    (random data mispredicts half of those branches): 4.7 ms against 9.7 ms for 2x2/2
    pooling of 64x64x24x24 float32."""
    planes, height, width = x.shape
    out_h, out_w = out.shape[1], out.shape[2]
    for p in range(planes):
        for oh in range(out_h):
            for ow in range(out_w):
                top = oh * stride_h
                left = ow * stride_w
                best = x[p, top, left]
                best_index = top * width + left
                for a in range(kernel_h):
                    for b in range(kernel_w):
                        value = x[p, top + a, left + b]
                        take = (value > best) | (value != value)  # NaN wins, as in PyTorch
                        best = value if take else best
                        best_index = (top + a) * width + left + b if take else best_index
                out[p, oh, ow] = best
                indices[p, oh, ow] = best_index


@numba.njit(cache=True)
def plane_scatter(values, indices, out):
    """out[n, c, indices[n, c, l]] += values[n, c, l] (out zeroed; repeats add up)."""
    batch, channels, length = values.shape
    for n in range(batch):
        for c in range(channels):
            for position in range(length):
                out[n, c, indices[n, c, position]] += values[n, c, position]


# ---- channel-major columns for a run of samples (the chunked GEMM path of ember/ops/conv.py)
@numba.njit(cache=True)
def im2col_rows(x, start, kernel, stride, pad, dilation, cols):
    """cols[c, kd, kh, kw, j, od, oh, ow] = x[start + j, c, od*s - p + kd*d, ...] (0 outside
    x): the columns of samples start .. start + cols.shape[4], channel-major, so that one
    GEMM covers every sample of the run."""
    channels, depth, height, width = x.shape[1], x.shape[2], x.shape[3], x.shape[4]
    count = cols.shape[4]
    out_d, out_h, out_w = cols.shape[5], cols.shape[6], cols.shape[7]
    # One bounds test per element measured 4x faster than hoisting the bounds into
    # separate zero-fill / copy loops (which LLVM no longer vectorises).
    for c in range(channels):
        for kd in range(kernel[0]):
            for kh in range(kernel[1]):
                for kw in range(kernel[2]):
                    for j in range(count):
                        n = start + j
                        for od in range(out_d):
                            z = od * stride[0] - pad[0] + kd * dilation[0]
                            for oh in range(out_h):
                                y = oh * stride[1] - pad[1] + kh * dilation[1]
                                inside = 0 <= z < depth and 0 <= y < height
                                for ow in range(out_w):
                                    col = ow * stride[2] - pad[2] + kw * dilation[2]
                                    if inside and 0 <= col < width:
                                        cols[c, kd, kh, kw, j, od, oh, ow] = x[n, c, z, y, col]
                                    else:
                                        cols[c, kd, kh, kw, j, od, oh, ow] = 0.0


@numba.njit(cache=True)
def col2im_rows(cols, start, kernel, stride, pad, dilation, out):
    """The transpose of `im2col_rows`: out[start + j] = the sum of every tap that read it
    (the run's samples are zeroed first; the rest of `out` is left alone)."""
    channels, depth, height, width = out.shape[1], out.shape[2], out.shape[3], out.shape[4]
    count = cols.shape[4]
    out_d, out_h, out_w = cols.shape[5], cols.shape[6], cols.shape[7]
    out[start:start + count] = 0.0
    for c in range(channels):
        for kd in range(kernel[0]):
            for kh in range(kernel[1]):
                for kw in range(kernel[2]):
                    for j in range(count):
                        n = start + j
                        for od in range(out_d):
                            z = od * stride[0] - pad[0] + kd * dilation[0]
                            if z < 0 or z >= depth:
                                continue
                            for oh in range(out_h):
                                y = oh * stride[1] - pad[1] + kh * dilation[1]
                                if y < 0 or y >= height:
                                    continue
                                for ow in range(out_w):
                                    col = ow * stride[2] - pad[2] + kw * dilation[2]
                                    if 0 <= col < width:
                                        out[n, c, z, y, col] += cols[c, kd, kh, kw, j, od, oh,
                                                                     ow]
