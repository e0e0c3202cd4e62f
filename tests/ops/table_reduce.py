"""Op-table rows for reductions and scans (ember/ops/reduce.py)."""
from __future__ import annotations

import numpy as np

import ember
from tests.ops.optable import OpSpec

SHAPES = [((),), ((5,),), ((2, 3, 4),)]
MATRIX = [((3, 4),), ((2, 3, 4),)]


def _distinct(rng, shapes, dtype):
    # max/min/prod: distinct values away from zero keep finite differences away from ties.
    out = []
    for shape in shapes:
        size = int(np.prod(shape))
        values = (rng.permutation(size) / size + 0.5) * rng.choice([-1, 1], size=size)
        out.append(values.reshape(shape).astype(dtype))
    return out


def _with_zero(rng, shapes, dtype):
    arrays = _distinct(rng, shapes, dtype)
    arrays[0].reshape(-1)[1] = 0.0  # the product's gradient must stay exact with a zero in it
    return arrays


def _axis_rows(name, fn, ref, shapes=SHAPES, **extra):
    return [
        OpSpec(f"{name}_all", lambda x: fn(x), lambda x: ref(x), shapes, **extra),
        OpSpec(f"{name}_axis", lambda x: fn(x, axis=-1), lambda x: ref(x, axis=-1),
               [s for s in shapes if s != ((),)], **extra),
        OpSpec(f"{name}_axes_keepdims", lambda x: fn(x, axis=(0, 2), keepdims=True),
               lambda x: ref(x, axis=(0, 2), keepdims=True), [((2, 3, 4),)], **extra),
    ]


def _logsumexp(x, axis=None, keepdims=False):
    m = np.max(x, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis) if axis is not None else \
        out.reshape(())


ROWS = [
    *_axis_rows("sum", ember.sum, np.sum, double=True),
    *_axis_rows("mean", ember.mean, np.mean, double=True),
    *_axis_rows("max", ember.max, np.max, make=_distinct, double=True),
    *_axis_rows("min", ember.min, np.min, make=_distinct, double=True),
    *_axis_rows("prod", ember.prod, np.prod, make=_distinct, double=True),
    *_axis_rows("var", ember.var, np.var, double=True),
    *_axis_rows("std", ember.std, np.std, shapes=SHAPES[1:], double=True),
    *_axis_rows("logsumexp", ember.logsumexp, _logsumexp, double=True),
    OpSpec("sum_int", ember.sum, np.sum, SHAPES, dtypes=("int64", "int32"), grad=()),
    # leading axes over >= 64 columns: the GEMV path (ones @ x) of float arrays
    OpSpec("sum_leading_axes", lambda x: ember.sum(x, axis=(0, 1)),
           lambda x: np.sum(x, axis=(0, 1)), [((3, 2, 64),)], double=True),
    OpSpec("sum_leading_keepdims", lambda x: ember.sum(x, axis=0, keepdims=True),
           lambda x: np.sum(x, axis=0, keepdims=True), [((5, 70),)], double=True),
    OpSpec("prod_with_zero", lambda x: ember.prod(x, axis=1), lambda x: np.prod(x, axis=1),
           [((3, 4),)], make=_with_zero),  # second order at an exact zero: see cumprod
    OpSpec("var_unbiased", lambda x: ember.var(x, axis=0, correction=1),
           lambda x: np.var(x, axis=0, ddof=1), MATRIX, double=True),
    OpSpec("all", lambda x: ember.all(x > 0, axis=-1), lambda x: np.all(x > 0, axis=-1),
           MATRIX, grad=()),
    OpSpec("any", lambda x: ember.any(x > 1.5), lambda x: np.any(x > 1.5), SHAPES, grad=()),
    OpSpec("cumsum", lambda x: ember.cumsum(x, axis=-1), lambda x: np.cumsum(x, axis=-1),
           [((5,),), ((2, 3, 4),)], double=True),
    OpSpec("cumsum_flat", ember.cumsum, np.cumsum, [((2, 3),)], double=True),
    OpSpec("cumulative_sum_initial",
           lambda x: ember.cumulative_sum(x, axis=0, include_initial=True),
           lambda x: np.concatenate([np.zeros((1,) + x.shape[1:], x.dtype),
                                     np.cumsum(x, axis=0)]), [((4, 3),)], double=True),
    OpSpec("cumprod", lambda x: ember.cumprod(x, axis=1), lambda x: np.cumprod(x, axis=1),
           [((3, 4),)], make=_distinct, double=True),
]
