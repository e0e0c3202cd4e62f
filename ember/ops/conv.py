"""N-d convolution: one primitive for 1-d, 2-d and 3-d, its transpose, and its filter gradient.

Layouts are PyTorch's: input (N, C, *S), weight (O, C / groups, *kernel). The forward is
im2col + one GEMM: columns (N, G, C/G * K, L) times the weight (G, O/G, C/G * K) in one
batched matmul over groups. That layout was measured against one big (C*K, N*L) GEMM
(64x32x26x26 input, 64 3x3 filters, NumPy 2.4 + OpenBLAS, 2 cores): 9.4 ms against 10.4 ms
with its output transpose, and the weight gradient 10.9 ms against 11.5 ms, so the batch
stays outermost and the result needs no transpose.

Three primitives close under differentiation, so gradients of any order are convolutions:
- `Convolution(x, w)`: y = conv(x, w).
  vjp: gx = conv_transpose(gy, w), gw = conv_filter_grad(x, gy).
- `ConvTranspose(y, w)`: the adjoint of conv in its input (col2im of w^T y).
  vjp: gy = conv(g, w), gw = conv_filter_grad(g, y).
- `ConvFilterGrad(x, gy)`: the adjoint of conv in its weight.
  vjp: gx = conv_transpose(gy, g), ggy = conv(x, g).
All three share the geometry of the forward convolution: `stride`, `padding` ((low, high)
per axis), `dilation`, `groups`. The filter gradient recomputes the columns rather than
keeping them from the forward pass: they are kernel-volume times the input's size.
"""
from __future__ import annotations

import math

from ember._core.primitive import AbstractValue, Primitive, apply, shape_error
from ember._core.tensor import Tensor
from ember.ops import _conv_gemm, _windows


def _needs(ctx, index: int) -> bool:
    return ctx.node.edges[index] is not None


def _check_geometry(op: str, x, w, stride, padding, dilation, groups, *operands):
    """Shape rule shared by the three primitives: channels, groups and window fit."""
    spatial = len(stride)
    if x.ndim != spatial + 2 or w.ndim != spatial + 2:
        raise shape_error(op, f"expected a {spatial + 2}-d input and weight", *operands)
    if w.shape[0] % groups:
        raise shape_error(op, f"out_channels={w.shape[0]} is not divisible by "
                          f"groups={groups}", *operands)
    if x.shape[1] != w.shape[1] * groups:
        raise shape_error(op, f"expected input with {w.shape[1] * groups} channels "
                          f"(weight {tuple(w.shape)} x groups={groups}), got "
                          f"{x.shape[1]} channels", *operands)


def _conv_output(op, spatial, kernel, stride, padding, dilation, *operands) -> tuple:
    out = _windows.output_shape(spatial, kernel, stride, padding, dilation)
    if min(out, default=1) < 1:
        raise shape_error(op, f"the input's spatial size {tuple(spatial)} (padded by "
                          f"{list(padding)}) is smaller than the dilated kernel "
                          f"{tuple(dilation[i] * (k - 1) + 1 for i, k in enumerate(kernel))}",
                          *operands)
    return out


def _columns(xp, x, kernel, stride, padding, dilation, groups):
    """im2col of x as (N, G, C/G * K, L)."""
    cols = _windows.im2col(xp, x, kernel, stride, padding, dilation)
    return cols.reshape(x.shape[0], groups, -1, math.prod(cols.shape[2 + len(kernel):]))


def _same_dtype(out, like):
    # NumPy multiplies bfloat16 in float32: hand back the operands' dtype.
    return out if out.dtype == like.dtype else out.astype(like.dtype)


class Convolution(Primitive):
    def infer(self, x, w, stride, padding, dilation, groups):
        _check_geometry("conv", x, w, stride, padding, dilation, groups, x, w)
        out = _conv_output("conv", x.shape[2:], w.shape[2:], stride, padding, dilation, x, w)
        return AbstractValue((x.shape[0], w.shape[0]) + out, x.dtype, x.device)

    def forward(self, xp, x, w, stride, padding, dilation, groups):
        kernel = w.shape[2:]
        if _conv_gemm.applies(xp, x, x.shape[0], x.shape[1], kernel,
                              _windows.output_shape(x.shape[2:], kernel, stride, padding,
                                                    dilation), stride, padding):
            return _conv_gemm.forward(x, w, stride, padding, dilation, groups)
        cols = _columns(xp, x, kernel, stride, padding, dilation, groups)
        weight = w.reshape(groups, w.shape[0] // groups, -1)
        out = xp.matmul(weight[0] if groups == 1 else weight, cols)  # (N, G, O/G, L)
        spatial = _windows.output_shape(x.shape[2:], kernel, stride, padding, dilation)
        return _same_dtype(out.reshape((x.shape[0], w.shape[0]) + spatial), x)

    def vjp(self, ctx, gy):
        x, w = ctx.inputs
        geometry = ctx.params
        gx = gw = None
        if _needs(ctx, 0):
            gx = apply(CONV_TRANSPOSE, gy, w, input_size=x.shape[2:], **geometry)
        if _needs(ctx, 1):
            gw = apply(CONV_FILTER_GRAD, x, gy, kernel_size=w.shape[2:], **geometry)
        return gx, gw


class ConvTranspose(Primitive):
    """y (N, O, *out) -> (N, C, *input_size): col2im of w^T y, the adjoint of conv in x."""

    def infer(self, y, w, input_size, stride, padding, dilation, groups):
        op = "conv_transpose"
        if w.ndim != len(stride) + 2 or y.ndim != len(stride) + 2:
            raise shape_error(op, f"expected a {len(stride) + 2}-d input and weight", y, w)
        if y.shape[1] != w.shape[0]:
            raise shape_error(op, f"expected input with {w.shape[0]} channels (weight "
                              f"{tuple(w.shape)}), got {y.shape[1]} channels", y, w)
        if w.shape[0] % groups:
            raise shape_error(op, f"in_channels={w.shape[0]} is not divisible by "
                              f"groups={groups}", y, w)
        if _windows.output_shape(input_size, w.shape[2:], stride, padding,
                                 dilation) != tuple(y.shape[2:]):
            raise shape_error(op, f"an output of spatial size {tuple(input_size)} does not "
                              f"fit this input under the given stride/padding", y, w)
        return AbstractValue((y.shape[0], w.shape[1] * groups) + tuple(input_size), y.dtype,
                             y.device)

    def forward(self, xp, y, w, input_size, stride, padding, dilation, groups):
        kernel = w.shape[2:]
        if _conv_gemm.applies(xp, y, y.shape[0], w.shape[1] * groups, kernel, y.shape[2:],
                              stride, padding):
            return _conv_gemm.input_grad(xp.ascontiguousarray(y), w, input_size, stride,
                                         padding, dilation, groups)
        batch, length = y.shape[0], math.prod(y.shape[2:])
        weight = w.reshape(groups, w.shape[0] // groups, -1)  # (G, O/G, C/G * K)
        # A broadcast gradient (of a sum) has zero strides, which BLAS cannot take.
        flat = xp.ascontiguousarray(y).reshape(batch, groups, -1, length)
        cols = xp.matmul(xp.swapaxes(weight, 1, 2), flat)  # (N, G, C/G * K, L)
        cols = _same_dtype(cols, y).reshape((batch, w.shape[1] * groups) + kernel
                                            + y.shape[2:])
        return _windows.col2im(xp, cols, input_size, kernel, stride, padding, dilation)

    def vjp(self, ctx, g):
        y, w = ctx.inputs
        geometry = {k: v for k, v in ctx.params.items() if k != "input_size"}
        gy = gw = None
        if _needs(ctx, 0):
            gy = apply(CONVOLUTION, g, w, **geometry)
        if _needs(ctx, 1):
            gw = apply(CONV_FILTER_GRAD, g, y, kernel_size=w.shape[2:], **geometry)
        return gy, gw


class ConvFilterGrad(Primitive):
    """(x, gy) -> gw of shape (O, C / groups, *kernel_size): the adjoint of conv in w."""

    def infer(self, x, gy, kernel_size, stride, padding, dilation, groups):
        op = "conv_filter_grad"
        out = _conv_output(op, x.shape[2:], kernel_size, stride, padding, dilation, x, gy)
        if tuple(gy.shape[2:]) != out or gy.shape[0] != x.shape[0] or gy.shape[1] % groups \
                or x.shape[1] % groups:
            raise shape_error(op, f"output gradient does not match the convolution of this "
                              f"input (expected spatial size {out})", x, gy)
        return AbstractValue((gy.shape[1], x.shape[1] // groups) + tuple(kernel_size),
                             x.dtype, x.device)

    def forward(self, xp, x, gy, kernel_size, stride, padding, dilation, groups):
        if _conv_gemm.applies(xp, x, x.shape[0], x.shape[1], kernel_size, gy.shape[2:],
                              stride, padding):
            return _conv_gemm.filter_grad(x, xp.ascontiguousarray(gy), kernel_size, stride,
                                          padding, dilation, groups)
        cols = _columns(xp, x, kernel_size, stride, padding, dilation, groups)
        flat = xp.ascontiguousarray(gy).reshape(gy.shape[0], groups, -1, cols.shape[-1])
        # One GEMM per sample and group, then a sum over samples: measured faster than
        # transposing gy and the columns into one (O, N*L) x (N*L, C*K) product.
        per_sample = xp.matmul(flat, xp.swapaxes(cols, 2, 3))  # (N, G, O/G, C/G * K)
        gw = _same_dtype(per_sample.sum(axis=0), x)
        return gw.reshape((gy.shape[1], x.shape[1] // groups) + tuple(kernel_size))

    def vjp(self, ctx, g):
        x, gy = ctx.inputs
        geometry = {k: v for k, v in ctx.params.items() if k != "kernel_size"}
        gx = ggy = None
        if _needs(ctx, 0):
            gx = apply(CONV_TRANSPOSE, gy, g, input_size=x.shape[2:], **geometry)
        if _needs(ctx, 1):
            ggy = apply(CONVOLUTION, x, g, **geometry)
        return gx, ggy


CONVOLUTION, CONV_TRANSPOSE, CONV_FILTER_GRAD = Convolution(), ConvTranspose(), ConvFilterGrad()


# ---- public functions -------------------------------------------------------------------------
def _pairs(padding) -> tuple:
    return tuple((int(low), int(high)) for low, high in padding)


def conv(x: Tensor, weight: Tensor, *, stride: tuple, padding: tuple, dilation: tuple,
         groups: int = 1) -> Tensor:
    """N-d convolution (cross-correlation, as in PyTorch) of x (N, C, *S) with weight
    (O, C / groups, *K); `padding` is one (low, high) pair per spatial axis.

    >>> import ember
    >>> from ember.ops.conv import conv
    >>> conv(ember.ones((1, 2, 5, 5)), ember.ones((3, 2, 3, 3)), stride=(1, 1),
    ...      padding=((1, 1), (1, 1)), dilation=(1, 1)).shape
    (1, 3, 5, 5)
    """
    return apply(CONVOLUTION, x, weight, stride=tuple(stride), padding=_pairs(padding),
                 dilation=tuple(dilation), groups=int(groups))


def conv_transpose(x: Tensor, weight: Tensor, *, output_size: tuple, stride: tuple,
                   padding: tuple, dilation: tuple, groups: int = 1) -> Tensor:
    """The adjoint of `conv` in its input: x (N, O, *S') -> (N, C, *output_size), where
    `conv` with the same geometry maps output_size back to S'. weight is (O, C / groups, *K).

    >>> import ember
    >>> from ember.ops.conv import conv_transpose
    >>> conv_transpose(ember.ones((1, 3, 2, 2)), ember.ones((3, 1, 2, 2)), output_size=(4, 4),
    ...                stride=(2, 2), padding=((0, 0), (0, 0)), dilation=(1, 1)).shape
    (1, 1, 4, 4)
    """
    params = dict(input_size=tuple(output_size), stride=tuple(stride), padding=_pairs(padding),
                  dilation=tuple(dilation), groups=int(groups))
    if isinstance(x, Tensor) and isinstance(weight, Tensor):
        CONV_TRANSPOSE.infer(x, weight, **params)  # forward alone cannot see a misfit size
    return apply(CONV_TRANSPOSE, x, weight, **params)
