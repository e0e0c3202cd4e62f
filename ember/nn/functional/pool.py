"""Pooling with PyTorch's signatures: max/avg pooling 1-d to 3-d and adaptive pooling.

The math lives in ember/ops/pool.py (one N-d primitive per kind); these functions turn
PyTorch's arguments (stride=None meaning kernel_size, ceil_mode, count_include_pad,
divisor_override, output sizes with None) into window geometry and check the call.
ceil_mode becomes extra high-side padding that no window is allowed to start in.
"""
from __future__ import annotations

import numpy as np

from ember._core.errors import EmberError, user_frame
from ember._core.primitive import shape_error
from ember._core.tensor import Tensor
from ember.nn.functional._checks import expect_float
from ember.nn.functional.conv import batched, ntuple
from ember.ops import pool as pool_ops
from ember.ops.linalg import matmul
from ember.ops.movement import moveaxis, squeeze


def _output_size(size, kernel, stride, pad, dilation, ceil_mode) -> int:
    """PyTorch's pooling_output_shape."""
    span = size + 2 * pad - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)
    out = span // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1  # the last window must start inside the input or its left padding
    return out


def _geometry(op, x, spatial, kernel_size, stride, padding, dilation, ceil_mode, max_pool):
    """(kernel, stride, (low, high) pairs, dilation) for a pooling call, checked."""
    kernel = ntuple(kernel_size, spatial, "kernel_size", op)
    stride = kernel if stride is None or stride == () or stride == [] else ntuple(
        stride, spatial, "stride", op)
    pads = ntuple(padding, spatial, "padding", op)
    dilation = ntuple(dilation, spatial, "dilation", op)
    if min(kernel + stride + dilation) < 1 or min(pads) < 0:
        raise EmberError(f"{op}: kernel_size, stride and dilation must be positive and "
                         f"padding non-negative, got kernel_size={kernel}, stride={stride}, "
                         f"padding={pads}, dilation={dilation} at {user_frame()}")
    for k, p, d in zip(kernel, pads, dilation):
        limit = ((k - 1) * d + 1) // 2 if max_pool else k // 2
        if p > limit:
            raise EmberError(f"{op}: padding should be at most half of the (effective) "
                             f"kernel size, got padding={pads}, kernel_size={kernel}, "
                             f"dilation={dilation} at {user_frame()}")
    pairs = []
    for size, k, s, p, d in zip(x.shape[2:], kernel, stride, pads, dilation):
        out = _output_size(size, k, s, p, d, ceil_mode)
        if out < 1:
            raise shape_error(op, f"the output would be empty: kernel_size={kernel}, "
                              f"stride={stride}, padding={pads}, dilation={dilation} do not "
                              f"fit the input", x)
        # High padding that yields exactly `out` windows (more than p under ceil_mode).
        pairs.append((p, (out - 1) * s + d * (k - 1) + 1 - size - p))
    return kernel, stride, tuple(pairs), dilation


def _prepare(op, x, spatial):
    expect_float(op, x)
    return batched(op, x, spatial)


def _unbatch(values, added):
    return squeeze(values, axis=0) if added else values


def max_pool(op, spatial, x, kernel_size, stride, padding, dilation, ceil_mode,
             return_indices):
    """Shared body of max_pool1d/2d/3d."""
    x, added = _prepare(op, x, spatial)
    kernel, stride, pairs, dilation = _geometry(op, x, spatial, kernel_size, stride, padding,
                                                dilation, ceil_mode, True)
    values, indices = pool_ops.max_pool(x, kernel_size=kernel, stride=stride, padding=pairs,
                                        dilation=dilation)
    values, indices = _unbatch(values, added), _unbatch(indices, added)
    return (values, indices) if return_indices else values


def avg_pool(op, spatial, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
             divisor_override=None):
    """Shared body of avg_pool1d/2d/3d: a window sum over a constant divisor."""
    x, added = _prepare(op, x, spatial)
    kernel, stride, pairs, _ = _geometry(op, x, spatial, kernel_size, stride, padding, 1,
                                         ceil_mode, False)
    total = pool_ops.window_sum(x, kernel_size=kernel, stride=stride, padding=pairs)
    if divisor_override is not None:
        if divisor_override == 0:
            raise EmberError(f"{op}: divisor_override must not be zero at {user_frame()}")
        return _unbatch(total / divisor_override, added)
    counts = pool_ops.window_count(x.shape[2:], kernel, stride, pairs, count_include_pad)
    if counts.min() == counts.max():  # the usual case: one divisor, a scalar division
        return _unbatch(total / float(counts.flat[0]), added)
    xp = x._device.xp
    divisor = Tensor(xp.asarray(counts.astype(x._data.dtype)), x._device)
    return _unbatch(total / divisor, added)


def _adaptive_sizes(op, x, spatial, output_size) -> tuple:
    if isinstance(output_size, int) or output_size is None:
        output_size = (output_size,) * spatial
    sizes = tuple(x.shape[2 + i] if s is None else s for i, s in enumerate(output_size))
    if len(sizes) != spatial or min(sizes) < 1:
        raise EmberError(f"{op}: output_size must be a positive int or a tuple of {spatial} "
                         f"(positive ints or None), got {output_size!r} at {user_frame()}")
    return tuple(int(s) for s in sizes)


def adaptive_avg_pool(op, spatial, x, output_size):
    """Shared body of adaptive_avg_pool1d/2d/3d (PyTorch's window rule)."""
    x, added = _prepare(op, x, spatial)
    sizes = _adaptive_sizes(op, x, spatial, output_size)
    if all(size % out == 0 for size, out in zip(x.shape[2:], sizes)):
        # Even division: plain average pooling (the common global-pooling case).
        kernel = tuple(size // out for size, out in zip(x.shape[2:], sizes))
        total = pool_ops.window_sum(x, kernel_size=kernel, stride=kernel,
                                    padding=((0, 0),) * spatial)
        return _unbatch(total / float(np.prod(kernel)), added)
    # Overlapping windows of varying length: along each axis, a product with an averaging
    # matrix, so every derivative is a matmul as well.
    xp = x._device.xp
    y = x
    for axis, (size, out) in enumerate(zip(x.shape[2:], sizes)):
        start, end = pool_ops.adaptive_windows(size, out)
        columns = np.arange(size)
        inside = (columns >= start[:, None]) & (columns < end[:, None])
        averaging = (inside / (end - start)[:, None]).T.astype(x._data.dtype)
        matrix = Tensor(xp.asarray(averaging), x._device)  # (size, out)
        y = moveaxis(matmul(moveaxis(y, 2 + axis, -1), matrix), -1, 2 + axis)
    return _unbatch(y, added)


def adaptive_max_pool(op, spatial, x, output_size, return_indices):
    """Shared body of adaptive_max_pool1d/2d/3d: find the maxima, then gather them."""
    x, added = _prepare(op, x, spatial)
    sizes = _adaptive_sizes(op, x, spatial, output_size)
    indices = pool_ops.adaptive_max_indices(x, sizes)
    values = pool_ops.plane_gather(x, indices)
    values, indices = _unbatch(values, added), _unbatch(indices, added)
    return (values, indices) if return_indices else values


# ---- the PyTorch-named functions --------------------------------------------------------------
def max_pool1d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False):
    """Max pooling over (N, C, L); with return_indices also the argmax positions.

    >>> import ember
    >>> ember.nn.functional.max_pool1d(ember.tensor([[[1.0, 3.0, 2.0, 0.0]]]), 2)
    tensor([[[3., 2.]]])
    """
    return max_pool("max_pool1d", 1, input, kernel_size, stride, padding, dilation,
                    ceil_mode, return_indices)


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False):
    """Max pooling over (N, C, H, W), as torch's max_pool2d.

    >>> import ember
    >>> ember.nn.functional.max_pool2d(ember.ones((1, 3, 7, 7)), 2, ceil_mode=True).shape
    (1, 3, 4, 4)
    """
    return max_pool("max_pool2d", 2, input, kernel_size, stride, padding, dilation,
                    ceil_mode, return_indices)


def max_pool3d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False):
    """Max pooling over (N, C, D, H, W), as torch's max_pool3d.

    >>> import ember
    >>> ember.nn.functional.max_pool3d(ember.ones((1, 1, 4, 4, 4)), 2).shape
    (1, 1, 2, 2, 2)
    """
    return max_pool("max_pool3d", 3, input, kernel_size, stride, padding, dilation,
                    ceil_mode, return_indices)


def avg_pool1d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """Average pooling over (N, C, L), as torch's avg_pool1d.

    >>> import ember
    >>> ember.nn.functional.avg_pool1d(ember.tensor([[[1.0, 3.0, 2.0, 0.0]]]), 2)
    tensor([[[2., 1.]]])
    """
    return avg_pool("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode,
                    count_include_pad)


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """Average pooling over (N, C, H, W), as torch's avg_pool2d.

    >>> import ember
    >>> ember.nn.functional.avg_pool2d(ember.ones((1, 1, 4, 4)), 3, stride=1, padding=1,
    ...                                count_include_pad=False).numpy().min()
    np.float32(1.0)
    """
    return avg_pool("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode,
                    count_include_pad, divisor_override)


def avg_pool3d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """Average pooling over (N, C, D, H, W), as torch's avg_pool3d.

    >>> import ember
    >>> ember.nn.functional.avg_pool3d(ember.ones((1, 1, 4, 4, 4)), 2).shape
    (1, 1, 2, 2, 2)
    """
    return avg_pool("avg_pool3d", 3, input, kernel_size, stride, padding, ceil_mode,
                    count_include_pad, divisor_override)


def adaptive_avg_pool1d(input: Tensor, output_size) -> Tensor:
    """Average over `output_size` adaptive windows of (N, C, L).

    >>> import ember
    >>> ember.nn.functional.adaptive_avg_pool1d(ember.tensor([[[1.0, 2.0, 3.0]]]), 2)
    tensor([[[1.5, 2.5]]])
    """
    return adaptive_avg_pool("adaptive_avg_pool1d", 1, input, output_size)


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """Average over adaptive windows of (N, C, H, W); `(1, 1)` is global average pooling.

    >>> import ember
    >>> ember.nn.functional.adaptive_avg_pool2d(ember.ones((2, 8, 5, 7)), (3, None)).shape
    (2, 8, 3, 7)
    """
    return adaptive_avg_pool("adaptive_avg_pool2d", 2, input, output_size)


def adaptive_avg_pool3d(input: Tensor, output_size) -> Tensor:
    """Average over adaptive windows of (N, C, D, H, W).

    >>> import ember
    >>> ember.nn.functional.adaptive_avg_pool3d(ember.ones((1, 2, 3, 4, 5)), 2).shape
    (1, 2, 2, 2, 2)
    """
    return adaptive_avg_pool("adaptive_avg_pool3d", 3, input, output_size)


def adaptive_max_pool1d(input: Tensor, output_size, return_indices: bool = False):
    """Maximum over adaptive windows of (N, C, L).

    >>> import ember
    >>> ember.nn.functional.adaptive_max_pool1d(ember.tensor([[[1.0, 5.0, 2.0]]]), 2)
    tensor([[[5., 5.]]])
    """
    return adaptive_max_pool("adaptive_max_pool1d", 1, input, output_size, return_indices)


def adaptive_max_pool2d(input: Tensor, output_size, return_indices: bool = False):
    """Maximum over adaptive windows of (N, C, H, W), as torch's adaptive_max_pool2d.

    >>> import ember
    >>> ember.nn.functional.adaptive_max_pool2d(ember.ones((1, 2, 5, 5)), 3).shape
    (1, 2, 3, 3)
    """
    return adaptive_max_pool("adaptive_max_pool2d", 2, input, output_size, return_indices)


def adaptive_max_pool3d(input: Tensor, output_size, return_indices: bool = False):
    """Maximum over adaptive windows of (N, C, D, H, W).

    >>> import ember
    >>> ember.nn.functional.adaptive_max_pool3d(ember.ones((1, 1, 3, 4, 5)), 2).shape
    (1, 1, 2, 2, 2)
    """
    return adaptive_max_pool("adaptive_max_pool3d", 3, input, output_size, return_indices)
