"""Convolutions with PyTorch's signatures: conv1d/2d/3d and conv_transpose1d/2d/3d.

All of them lower to the one N-d primitive family of ember/ops/conv.py. These functions
validate the call (clear errors naming the op, the shapes and what was expected), turn
PyTorch's padding forms ('valid', 'same', int, tuple) into (low, high) pairs, accept
unbatched (C, *S) inputs and add the bias.
"""
from __future__ import annotations

from ember._core.errors import DTypeError, EmberError, user_frame
from ember._core.primitive import shape_error
from ember._core.tensor import Tensor
from ember.nn.functional._checks import expect_float
from ember.ops import conv as conv_ops
from ember.ops.movement import expand_dims, reshape, squeeze


def ntuple(value, count: int, name: str, op: str) -> tuple:
    """An int broadcast to `count` axes, or a sequence of exactly `count` ints."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,) * count
    try:
        values = tuple(int(v) for v in value)
    except TypeError:
        values = ()
    if len(values) != count:
        raise EmberError(f"{op}: {name} must be an int or a tuple of {count} ints, got "
                         f"{value!r} at {user_frame()}")
    return values


def batched(op: str, x: Tensor, spatial: int) -> tuple:
    """(x with a batch axis, whether one was added): PyTorch also takes unbatched inputs."""
    layout = "(N, C, " + ", ".join("DHW"[3 - spatial:]) + ")"
    if x.ndim == spatial + 2:
        return x, False
    if x.ndim == spatial + 1:
        return expand_dims(x, axis=0), True
    raise shape_error(op, f"expected a {spatial + 2}-d input laid out as {layout} (or "
                      f"{spatial + 1}-d without the batch axis)", x)


def _check_operands(op: str, x: Tensor, weight: Tensor, bias, spatial: int):
    expect_float(op, x)
    if weight.ndim != spatial + 2:
        raise shape_error(op, f"expected a {spatial + 2}-d weight", x, weight)
    if weight.dtype is not x.dtype or (bias is not None and bias.dtype is not x.dtype):
        given = ", ".join(t.dtype.name for t in (x, weight, bias) if t is not None)
        raise DTypeError(f"{op}: input, weight and bias must share one dtype, got {given} at "
                         f"{user_frame()}; cast with .to(dtype)")


def _check_bias(op: str, bias, channels: int, x, weight):
    if bias is not None and tuple(bias.shape) != (channels,):
        raise shape_error(op, f"expected a bias of shape ({channels},)", x, weight, bias)


def _add_bias(y: Tensor, bias) -> Tensor:
    if bias is None:
        return y
    return y + reshape(bias, (bias.shape[0],) + (1,) * (y.ndim - 2))


def _padding_pairs(op, padding, kernel, stride, dilation) -> tuple:
    spatial = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * spatial
        if padding == "same":
            if any(s != 1 for s in stride):
                raise EmberError(f"{op}: padding='same' is not supported for strided "
                                 f"convolutions (stride={stride}) at {user_frame()}")
            # The total d*(k-1) is split as PyTorch does: the odd element goes high.
            totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
            return tuple((total // 2, total - total // 2) for total in totals)
        raise EmberError(f"{op}: padding must be 'valid', 'same', an int or a tuple, got "
                         f"{padding!r} at {user_frame()}")
    pads = ntuple(padding, spatial, "padding", op)
    if min(pads) < 0:
        raise EmberError(f"{op}: padding must be non-negative, got {padding!r} at "
                         f"{user_frame()}")
    return tuple((p, p) for p in pads)


def _positive(op, name, values):
    if min(values) < 1:
        raise EmberError(f"{op}: {name} must be positive, got {values} at {user_frame()}")


def _checked_geometry(op, spatial, x, weight, bias, stride, dilation, groups, grouped_axis):
    """Checks shared by convolution and its transpose; returns the batched input, whether a
    batch axis was added, and stride and dilation as tuples. `grouped_axis` names what the
    weight's first axis holds (out_channels, or in_channels for the transpose)."""
    _check_operands(op, x, weight, bias, spatial)
    x, added = batched(op, x, spatial)
    stride = ntuple(stride, spatial, "stride", op)
    dilation = ntuple(dilation, spatial, "dilation", op)
    _positive(op, "stride", stride)
    _positive(op, "dilation", dilation)
    if groups < 1 or weight.shape[0] % groups:
        raise shape_error(op, f"groups={groups} must be positive and divide {grouped_axis}="
                          f"{weight.shape[0]}", x, weight)
    return x, added, stride, dilation


def convolution(op: str, spatial: int, x, weight, bias, stride, padding, dilation, groups):
    """Shared body of conv1d/2d/3d."""
    x, added, stride, dilation = _checked_geometry(op, spatial, x, weight, bias, stride,
                                                   dilation, groups, "out_channels")
    if x.shape[1] != weight.shape[1] * groups:
        raise shape_error(op, f"expected input with {weight.shape[1] * groups} channels "
                          f"(weight {tuple(weight.shape)}, groups={groups}), but the input "
                          f"has {x.shape[1]} channels", x, weight)
    _check_bias(op, bias, weight.shape[0], x, weight)
    pairs = _padding_pairs(op, padding, weight.shape[2:], stride, dilation)
    y = conv_ops.conv(x, weight, stride=stride, padding=pairs, dilation=dilation,
                      groups=groups)
    y = _add_bias(y, bias)
    return squeeze(y, axis=0) if added else y


def transposed_convolution(op: str, spatial: int, x, weight, bias, stride, padding,
                           output_padding, groups, dilation, output_size=None):
    """Shared body of conv_transpose1d/2d/3d (weight laid out (in, out / groups, *k))."""
    x, added, stride, dilation = _checked_geometry(op, spatial, x, weight, bias, stride,
                                                   dilation, groups, "in_channels")
    pads = ntuple(padding, spatial, "padding", op)
    if x.shape[1] != weight.shape[0]:
        raise shape_error(op, f"expected input with {weight.shape[0]} channels (weight "
                          f"{tuple(weight.shape)}), but the input has {x.shape[1]} channels",
                          x, weight)
    _check_bias(op, bias, weight.shape[1] * groups, x, weight)
    kernel = weight.shape[2:]
    natural = [(size - 1) * s - 2 * p + d * (k - 1) + 1
               for size, s, p, d, k in zip(x.shape[2:], stride, pads, dilation, kernel)]
    if output_size is not None:
        wanted = tuple(output_size)[-spatial:]
        extra = tuple(w - n for w, n in zip(wanted, natural))
    else:
        extra = ntuple(output_padding, spatial, "output_padding", op)
    for e, s, d in zip(extra, stride, dilation):
        if not 0 <= e < max(s, d):
            raise EmberError(f"{op}: output_padding {extra} must be non-negative and smaller "
                             f"than either stride {stride} or dilation {dilation} at "
                             f"{user_frame()}")
    output = tuple(n + e for n, e in zip(natural, extra))
    if min(output) < 1:
        raise shape_error(op, f"the output size {output} would not be positive", x, weight)
    # The adjoint of a convolution whose high padding is cut by output_padding: its last
    # input positions are reached by no window, so they get only the bias.
    pairs = tuple((p, p - e) for p, e in zip(pads, extra))
    y = conv_ops.conv_transpose(x, weight, output_size=output, stride=stride, padding=pairs,
                                dilation=dilation, groups=groups)
    y = _add_bias(y, bias)
    return squeeze(y, axis=0) if added else y


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """1-d convolution of (N, C, L) with weight (O, C / groups, k), as torch's conv1d.

    >>> import ember
    >>> ember.nn.functional.conv1d(ember.ones((1, 2, 5)), ember.ones((4, 2, 3))).shape
    (1, 4, 3)
    """
    return convolution("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """2-d convolution of (N, C, H, W) with weight (O, C / groups, kh, kw), as torch's conv2d.

    >>> import ember
    >>> x = ember.ones((1, 3, 8, 8))
    >>> ember.nn.functional.conv2d(x, ember.ones((6, 3, 3, 3)), padding='same').shape
    (1, 6, 8, 8)
    """
    return convolution("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def conv3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """3-d convolution of (N, C, D, H, W) with weight (O, C / groups, kd, kh, kw).

    >>> import ember
    >>> x = ember.ones((1, 2, 4, 4, 4))
    >>> ember.nn.functional.conv3d(x, ember.ones((3, 2, 2, 2, 2)), stride=2).shape
    (1, 3, 2, 2, 2)
    """
    return convolution("conv3d", 3, input, weight, bias, stride, padding, dilation, groups)


def conv_transpose1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
                     padding=0, output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """Transposed 1-d convolution; weight is (C_in, C_out / groups, k) as in PyTorch.

    >>> import ember
    >>> ember.nn.functional.conv_transpose1d(ember.ones((1, 2, 4)), ember.ones((2, 3, 3)),
    ...                                      stride=2).shape
    (1, 3, 9)
    """
    return transposed_convolution("conv_transpose1d", 1, input, weight, bias, stride,
                                  padding, output_padding, groups, dilation)


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
                     padding=0, output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """Transposed 2-d convolution; weight is (C_in, C_out / groups, kh, kw) as in PyTorch.

    >>> import ember
    >>> x = ember.ones((1, 4, 5, 5))
    >>> ember.nn.functional.conv_transpose2d(x, ember.ones((4, 2, 3, 3)), stride=2,
    ...                                      padding=1, output_padding=1).shape
    (1, 2, 10, 10)
    """
    return transposed_convolution("conv_transpose2d", 2, input, weight, bias, stride,
                                  padding, output_padding, groups, dilation)


def conv_transpose3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
                     padding=0, output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """Transposed 3-d convolution; weight is (C_in, C_out / groups, kd, kh, kw).

    >>> import ember
    >>> x = ember.ones((1, 2, 2, 2, 2))
    >>> ember.nn.functional.conv_transpose3d(x, ember.ones((2, 1, 2, 2, 2)), stride=2).shape
    (1, 1, 4, 4, 4)
    """
    return transposed_convolution("conv_transpose3d", 3, input, weight, bias, stride,
                                  padding, output_padding, groups, dilation)
