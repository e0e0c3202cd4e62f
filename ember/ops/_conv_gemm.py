"""Convolution on NumPy float32/float64 arrays as GEMMs over runs of samples.

The columns of a whole batch are kernel-volume times the input (42 MB for the cnn
workload's 64x32x26x26 input and 3x3 kernel): writing them misses every cache, their
first touch costs page faults, and they set the step's peak memory. Here the batch goes in
runs of a few samples whose columns (about `RUN_BYTES`) stay in cache, laid out
channel-major, (C/G * K, run * L) per group, so one GEMM covers the run:

- forward: y[run] = W (O/G, C/G * K) @ cols, then (O, run, L) -> (run, O, L);
- input gradient: cols = W^T @ gy[run] (as (O/G, run * L)), then col2im into gx[run];
- filter gradient: gw += gy[run] (O/G, run * L) @ cols^T, one GEMM with run * L terms
  per output instead of a GEMM per sample and a sum over samples.

One column buffer serves every run. Kernels (`_conv_kernels.im2col_rows` / `col2im_rows`)
take the canonical 3-d geometry of `_windows`.
"""
from __future__ import annotations

import math

import numpy as np

from ember.ops import _conv_kernels, _windows

RUN_BYTES = 1 << 21  # column bytes per run: 2 MiB


def applies(xp, array, batch: int, channels: int, kernel, out, stride, padding) -> bool:
    """Whether the run-wise path serves this problem: NumPy float32/float64, a kernel that
    needs columns (not 1x1 / stride 1 / unpadded, which is a view), and columns of at least
    two runs (below that the whole-batch path of ember/ops/conv.py is as fast)."""
    if not _windows._use_kernels(xp, array) or _windows.is_pointwise(kernel, stride, padding):
        return False
    column_bytes = batch * channels * math.prod(kernel) * math.prod(out) * array.itemsize
    return column_bytes >= 2 * RUN_BYTES


def _run_length(batch: int, column_bytes: int) -> int:
    return max(1, min(batch, RUN_BYTES // max(column_bytes, 1)))


def _setup(x_shape, kernel, stride, padding, dilation, groups, dtype):
    spatial = len(kernel)
    out = _windows.output_shape(x_shape[2:], kernel, stride, padding, dilation)
    length = math.prod(out)
    volume = x_shape[1] // groups * math.prod(kernel)  # rows of a group's columns
    run = _run_length(x_shape[0], groups * volume * length * np.dtype(dtype).itemsize)
    canonical = _windows._canonical_geometry(kernel, stride, padding, dilation)
    fill = (1,) * (3 - spatial)
    return out, length, volume, run, canonical, fill


def _columns(buffer, groups, volume, count, length):
    """The first `count` samples' worth of the column buffer as (G, C/G * K, count * L)."""
    return buffer[:groups * volume * count * length].reshape(groups, volume, count * length)


def _cols_view(columns, channels, kernel, count, out, fill):
    """The same memory as the kernels' (C, KD, KH, KW, count, OD, OH, OW)."""
    return columns.reshape((channels,) + kernel + (count,) + fill + tuple(out))


def forward(x, w, stride, padding, dilation, groups):
    """conv(x, w): x (N, C, *S), w (O, C/G, *K) -> (N, O, *out)."""
    batch, channels = x.shape[:2]
    out, length, volume, run, canonical, fill = _setup(x.shape, w.shape[2:], stride, padding,
                                                       dilation, groups, x.dtype)
    kernel = canonical[0]
    weight = w.reshape(groups, w.shape[0] // groups, volume)
    x5 = _windows._canonical(x, len(out))
    y = np.empty((batch, w.shape[0], length), dtype=x.dtype)
    buffer = np.empty(groups * volume * run * length, dtype=x.dtype)
    for start in range(0, batch, run):
        count = min(run, batch - start)
        columns = _columns(buffer, groups, volume, count, length)
        _conv_kernels.im2col_rows(x5, start, *canonical,
                                  _cols_view(columns, channels, kernel, count, out, fill))
        product = np.matmul(weight, columns)  # (G, O/G, count * L)
        y[start:start + count] = product.reshape(w.shape[0], count, length).transpose(1, 0, 2)
    return y.reshape((batch, w.shape[0]) + tuple(out))


def input_grad(gy, w, input_size, stride, padding, dilation, groups):
    """The adjoint of `forward` in x: gy (N, O, *out) -> (N, C, *input_size)."""
    batch, channels = gy.shape[0], w.shape[1] * groups
    x_shape = (batch, channels) + tuple(input_size)
    out, length, volume, run, canonical, fill = _setup(x_shape, w.shape[2:], stride, padding,
                                                       dilation, groups, gy.dtype)
    kernel = canonical[0]
    weight_t = w.reshape(groups, w.shape[0] // groups, volume).transpose(0, 2, 1)
    flat = gy.reshape(batch, groups, w.shape[0] // groups, length)
    gx = np.empty(x_shape, dtype=gy.dtype)
    gx5 = _windows._canonical(gx, len(out))
    buffer = np.empty(groups * volume * run * length, dtype=gy.dtype)
    for start in range(0, batch, run):
        count = min(run, batch - start)
        rows = np.ascontiguousarray(flat[start:start + count].transpose(1, 2, 0, 3))
        columns = _columns(buffer, groups, volume, count, length)
        np.matmul(weight_t, rows.reshape(groups, -1, count * length), out=columns)
        _conv_kernels.col2im_rows(_cols_view(columns, channels, kernel, count, out, fill),
                                  start, *canonical, gx5)
    return gx


def filter_grad(x, gy, kernel_size, stride, padding, dilation, groups):
    """The adjoint of `forward` in w: (x, gy) -> gw (O, C/G, *kernel_size)."""
    batch, channels = x.shape[:2]
    out, length, volume, run, canonical, fill = _setup(x.shape, kernel_size, stride, padding,
                                                       dilation, groups, x.dtype)
    kernel = canonical[0]
    out_channels = gy.shape[1]
    flat = gy.reshape(batch, groups, out_channels // groups, length)
    x5 = _windows._canonical(x, len(out))
    gw = np.zeros((groups, out_channels // groups, volume), dtype=x.dtype)
    buffer = np.empty(groups * volume * run * length, dtype=x.dtype)
    for start in range(0, batch, run):
        count = min(run, batch - start)
        columns = _columns(buffer, groups, volume, count, length)
        _conv_kernels.im2col_rows(x5, start, *canonical,
                                  _cols_view(columns, channels, kernel, count, out, fill))
        rows = np.ascontiguousarray(flat[start:start + count].transpose(1, 2, 0, 3))
        gw += np.matmul(rows.reshape(groups, -1, count * length), columns.transpose(0, 2, 1))
    return gw.reshape((out_channels, channels // groups) + tuple(kernel_size))
