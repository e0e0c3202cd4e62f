"""Op-table rows for convolution and pooling (ember/ops/conv.py, ember/ops/pool.py), checked
against the loop-based references of tests/ops/conv_reference.py."""
from __future__ import annotations

import numpy as np

from ember.ops.conv import conv, conv_transpose
from ember.ops.pool import max_pool, plane_gather, window_sum
from tests.ops.conv_reference import (
    reference_conv,
    reference_conv_transpose,
    reference_max_pool,
    reference_window_sum,
)
from tests.ops.optable import OpSpec


def _distinct(rng, shapes, dtype):
    """Distinct values, spaced well beyond the finite-difference step (no ties in max)."""
    size = int(np.prod(shapes[0]))
    values = rng.permutation(size) / size * 4 - 2
    return [values.reshape(shapes[0]).astype(dtype)]


def _gather_inputs(rng, shapes, dtype):
    x = rng.uniform(-2, 2, size=shapes[0]).astype(dtype)
    plane = int(np.prod(shapes[0][2:]))
    indices = rng.integers(0, plane, size=shapes[0][:2] + (5,))  # repeats: the vjp adds them
    return [x, indices]


def _conv_row(name, shapes, stride, padding, dilation, groups=1, **extra):
    geometry = dict(stride=stride, padding=padding, dilation=dilation)
    return OpSpec(name, lambda x, w: conv(x, w, groups=groups, **geometry),
                  lambda x, w: reference_conv(x, w, groups=groups, **geometry), [shapes],
                  double=True, **extra)


def _transpose_row(name, shapes, output_size, stride, padding, dilation, groups=1):
    geometry = dict(output_size=output_size, stride=stride, padding=padding, dilation=dilation)
    return OpSpec(name, lambda x, w: conv_transpose(x, w, groups=groups, **geometry),
                  lambda x, w: reference_conv_transpose(x, w, groups=groups, **geometry),
                  [shapes], double=True)


def _max_pool_row(name, shape, kernel, stride, padding, dilation):
    geometry = dict(kernel_size=kernel, stride=stride, padding=padding, dilation=dilation)
    return [
        OpSpec(name, lambda x: max_pool(x, **geometry)[0],
               lambda x: reference_max_pool(x, kernel, stride, padding, dilation)[0],
               [(shape,)], make=_distinct, double=True),
        OpSpec(name + "_indices", lambda x: max_pool(x, **geometry)[1],
               lambda x: reference_max_pool(x, kernel, stride, padding, dilation)[1],
               [(shape,)], make=_distinct, grad=()),
    ]


def _window_sum_row(name, shape, kernel, stride, padding):
    return OpSpec(name, lambda x: window_sum(x, kernel_size=kernel, stride=stride,
                                             padding=padding),
                  lambda x: reference_window_sum(x, kernel, stride, padding), [(shape,)],
                  double=True)


ROWS = [
    _conv_row("conv1d", ((2, 4, 9), (6, 2, 3)), (2,), ((1, 2),), (2,), groups=2),
    _conv_row("conv2d", ((2, 3, 6, 5), (4, 3, 3, 2)), (2, 1), ((1, 0), (2, 1)), (1, 2),
              dtypes=("float32", "float64", "float16"), rtol=1e-4, atol=1e-5),
    _conv_row("conv2d_depthwise", ((2, 3, 5, 5), (6, 1, 3, 3)), (1, 1), ((1, 1), (1, 1)),
              (1, 1), groups=3),
    _conv_row("conv2d_1x1", ((2, 3, 4, 4), (5, 3, 1, 1)), (1, 1), ((0, 0), (0, 0)), (1, 1)),
    _conv_row("conv2d_negative_high_pad", ((1, 2, 6, 5), (2, 2, 2, 2)), (2, 2),
              ((1, -1), (0, -1)), (1, 1)),
    _conv_row("conv3d", ((1, 2, 4, 3, 5), (3, 2, 2, 2, 3)), (1, 2, 1),
              ((1, 1), (0, 0), (1, 2)), (1, 1, 1)),
    _transpose_row("conv_transpose1d", ((2, 4, 4), (4, 3, 3)), (9,), (2,), ((1, 0),), (1,),
                   groups=2),
    _transpose_row("conv_transpose2d", ((1, 2, 3, 2), (2, 3, 3, 2)), (6, 6), (2, 2),
                   ((1, 1), (0, -1)), (1, 2)),
    _transpose_row("conv_transpose3d", ((1, 2, 2, 2, 2), (2, 1, 2, 2, 2)), (4, 4, 5),
                   (2, 2, 2), ((0, 0), (0, 0), (0, -1)), (1, 1, 1)),
    *_max_pool_row("max_pool1d", (2, 3, 9), (3,), (2,), ((1, 1),), (1,)),
    *_max_pool_row("max_pool2d", (2, 2, 5, 6), (2, 3), (2, 1), ((1, 1), (1, 2)), (1, 2)),
    *_max_pool_row("max_pool3d", (1, 2, 4, 4, 3), (2, 2, 2), (2, 1, 1),
                   ((0, 0), (1, 0), (0, 1)), (1, 1, 1)),
    _window_sum_row("window_sum1d", (2, 3, 7), (3,), (2,), ((1, 1),)),
    _window_sum_row("window_sum2d", (2, 2, 5, 4), (2, 3), (2, 1), ((1, 1), (0, 2))),
    _window_sum_row("window_sum2d_tiles_with_uncovered_tail", (2, 2, 5, 7), (2, 3), (2, 3),
                    ((0, 0), (0, 0))),
    _window_sum_row("window_sum2d_global", (2, 3, 4, 5), (4, 5), (4, 5), ((0, 0), (0, 0))),
    _window_sum_row("window_sum3d", (1, 2, 3, 4, 3), (2, 2, 2), (1, 2, 1),
                    ((0, 1), (1, 0), (0, 0))),
    OpSpec("plane_gather", plane_gather, lambda x, i: np.take_along_axis(
        x.reshape(x.shape[:2] + (-1,)), i, axis=2), [((2, 3, 4, 3), None)],
        make=_gather_inputs, double=True),
]
