"""Op-table rows for elementwise math (ember/ops/elementwise.py)."""
from __future__ import annotations

import numpy as np

import ember
from tests.ops.optable import OpSpec

UNARY_SHAPES = [((),), ((5,),), ((2, 3, 4),)]
BINARY_SHAPES = [((4,), (4,)), ((2, 3), (3,)), ((2, 1, 4), (3, 1)), ((), (2, 3))]


def _unary(name, ref, domain=(-2.0, 2.0), double=True, **extra):
    return OpSpec(name, getattr(ember, name), ref, UNARY_SHAPES, domain=domain, double=double,
                  **extra)


def _sigmoid(x):
    return (1 / (1 + np.exp(-x))).astype(x.dtype)


def _away_from_integers(rng, shapes, dtype):
    # floor/ceil/round/trunc are flat between integers: keep samples off the jumps.
    return [(rng.integers(-3, 3, size=s) + rng.uniform(0.2, 0.4, size=s)).astype(dtype)
            for s in shapes]


def _positive_pair(rng, shapes, dtype):
    return [rng.uniform(0.5, 2.0, size=s).astype(dtype) for s in shapes]


def _distinct_pair(rng, shapes, dtype):
    # maximum/minimum: operands at least 0.1 apart so finite differences never straddle a tie
    a = rng.uniform(-2, 2, size=shapes[0])
    gap = rng.choice([-1.0, 1.0], size=np.broadcast_shapes(*shapes)) * rng.uniform(0.1, 1.0)
    b = (np.broadcast_to(a, np.broadcast_shapes(*shapes)) + gap)
    b = b[tuple(slice(0, n) if n > 1 else slice(0, 1) for n in b.shape)]
    b = b.reshape(b.shape)[(...,)] if b.shape == tuple(shapes[1]) else np.resize(b, shapes[1])
    return [a.astype(dtype), (b + 0.05 * np.sign(b)).astype(dtype)]


def _nonzero_divisor(rng, shapes, dtype):
    a = rng.uniform(-3, 3, size=shapes[0])
    b = rng.uniform(0.5, 2, size=shapes[1]) * rng.choice([-1, 1], size=shapes[1])
    return [a.astype(dtype), b.astype(dtype)]


def _remainder_inputs(rng, shapes, dtype):
    b = rng.uniform(0.7, 1.3, size=shapes[1]) * rng.choice([-1, 1], size=shapes[1])
    quotient = rng.integers(-3, 3, size=np.broadcast_shapes(*shapes)) + rng.uniform(0.2, 0.8)
    a = quotient * b
    return [np.asarray(a).reshape(np.broadcast_shapes(*shapes))[
        tuple(slice(None) for _ in shapes[0])].astype(dtype) if a.shape == tuple(shapes[0])
        else rng.uniform(0.2, 0.8, size=shapes[0]).astype(dtype), b.astype(dtype)]


ROWS = [
    _unary("negative", np.negative, dtypes=("float32", "float64", "int64", "int8")),
    _unary("positive", np.positive, dtypes=("float32", "float64", "int64")),
    _unary("abs", np.abs, dtypes=("float32", "float64", "int32"),
           make=lambda rng, shapes, dtype: [
               (rng.uniform(0.1, 2, size=s) * rng.choice([-1, 1], size=s)).astype(dtype)
               for s in shapes]),
    _unary("exp", np.exp),
    _unary("expm1", np.expm1),
    _unary("log", np.log, domain=(0.2, 3.0)),
    _unary("log1p", np.log1p, domain=(-0.5, 3.0)),
    _unary("log2", np.log2, domain=(0.2, 3.0)),
    _unary("log10", np.log10, domain=(0.2, 3.0)),
    _unary("sqrt", np.sqrt, domain=(0.2, 3.0)),
    _unary("square", np.square, dtypes=("float32", "float64", "int64")),
    _unary("sin", np.sin),
    _unary("cos", np.cos),
    _unary("tan", np.tan, domain=(-1.2, 1.2)),
    _unary("asin", np.arcsin, domain=(-0.9, 0.9)),
    _unary("acos", np.arccos, domain=(-0.9, 0.9)),
    _unary("atan", np.arctan),
    _unary("sinh", np.sinh),
    _unary("cosh", np.cosh),
    _unary("tanh", np.tanh),
    _unary("asinh", np.arcsinh),
    _unary("acosh", np.arccosh, domain=(1.2, 3.0)),
    _unary("atanh", np.arctanh, domain=(-0.9, 0.9)),
    _unary("sigmoid", _sigmoid, domain=(-6.0, 6.0)),
    _unary("sign", np.sign, dtypes=("float32", "float64", "int64")),
    _unary("floor", np.floor, make=_away_from_integers),
    _unary("ceil", np.ceil, make=_away_from_integers),
    _unary("round", np.round, make=_away_from_integers),
    _unary("trunc", np.trunc, make=_away_from_integers),
    _unary("reciprocal", np.reciprocal, make=lambda rng, shapes, dtype: _nonzero_divisor(
        rng, shapes * 2, dtype)[1:]),
    OpSpec("astype_f32_to_f64", lambda x: ember.astype(x, ember.float64),
           lambda x: x.astype(np.float64), UNARY_SHAPES, double=True),
    OpSpec("astype_to_int32", lambda x: ember.astype(x, ember.int32),
           lambda x: x.astype(np.int32), UNARY_SHAPES, grad=()),
    OpSpec("add", ember.add, np.add, BINARY_SHAPES, dtypes=("float32", "float64", "int64"),
           double=True),
    OpSpec("subtract", ember.subtract, np.subtract, BINARY_SHAPES,
           dtypes=("float32", "float64", "int32"), double=True),
    OpSpec("multiply", ember.multiply, np.multiply, BINARY_SHAPES,
           dtypes=("float32", "float64", "int64"), double=True),
    OpSpec("divide", ember.divide, np.divide, BINARY_SHAPES, make=_nonzero_divisor,
           double=True),
    OpSpec("pow", ember.pow, np.power, BINARY_SHAPES, make=_positive_pair, double=True),
    OpSpec("pow_scalar_exponent", lambda x: x ** 3, lambda x: x ** 3, UNARY_SHAPES,
           double=True),
    OpSpec("rpow_scalar_base", lambda x: 2.0 ** x, lambda x: (2.0 ** x).astype(x.dtype),
           UNARY_SHAPES, double=True),
    OpSpec("maximum", ember.maximum, np.maximum, BINARY_SHAPES[:2], make=_distinct_pair,
           double=True),
    OpSpec("minimum", ember.minimum, np.minimum, BINARY_SHAPES[:2], make=_distinct_pair,
           double=True),
    OpSpec("atan2", ember.atan2, np.arctan2, BINARY_SHAPES, make=_positive_pair, double=True),
    OpSpec("hypot", ember.hypot, np.hypot, BINARY_SHAPES, make=_positive_pair, double=True),
    OpSpec("logaddexp", ember.logaddexp, np.logaddexp, BINARY_SHAPES, double=True),
    OpSpec("copysign", ember.copysign, np.copysign, BINARY_SHAPES, make=_nonzero_divisor,
           grad=(0,), double=True),
    OpSpec("remainder", ember.remainder, np.remainder, BINARY_SHAPES[:1],
           make=_remainder_inputs, double=True),
    OpSpec("floor_divide", ember.floor_divide, np.floor_divide, BINARY_SHAPES,
           make=_nonzero_divisor, dtypes=("float32", "float64"), grad=()),
    OpSpec("where", lambda c, a, b: ember.where(c > 0, a, b),
           lambda c, a, b: np.where(c > 0, a, b),
           [((4,), (4,), (4,)), ((2, 3), (3,), (2, 1)), ((), (2,), ())], grad=(1, 2),
           double=True),
    OpSpec("clip_scalars", lambda x: ember.clip(x, -0.5, 0.7), lambda x: np.clip(x, -0.5, 0.7),
           UNARY_SHAPES, make=lambda rng, shapes, dtype: [
               (rng.choice([-1.5, -0.2, 0.3, 1.4], size=s) + rng.uniform(-0.05, 0.05, size=s))
               .astype(dtype) for s in shapes], double=True),
    OpSpec("clip_tensors", lambda x, lo, hi: ember.clip(x, lo, hi),
           lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi),
           [((6,), (6,), (6,))], make=lambda rng, shapes, dtype: [
               np.array([-2.0, -0.4, 0.1, 0.5, 1.8, 0.9], dtype),
               np.array([-1.0, -1.0, 0.0, 0.0, 0.0, 1.0], dtype),
               np.array([1.0, 1.0, 0.3, 1.0, 1.0, 2.0], dtype)], double=True),
]
