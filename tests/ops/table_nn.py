"""Op-table rows for the functional activations, the fused normalization primitive, erf and
the embedding lookup (ember/nn/functional/, ember/ops/normalization.py, special.py,
embedding.py). References are NumPy formulas written here."""
from __future__ import annotations

import math

import numpy as np

import ember
import ember.nn.functional as F
from ember.ops.normalization import normalize
from ember.ops.special import erf, floored_log
from tests.ops.optable import OpSpec

SHAPES = [((5,),), ((2, 3, 4),)]
_erf = np.vectorize(math.erf)


def _typed(function):
    """A reference computed in float64 and returned in the input's dtype."""
    return lambda x, *rest: np.asarray(function(x.astype(np.float64), *rest)).astype(x.dtype)


def _standardize(x, axes, eps=1e-5):
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps), mean, var


def _away_from(*kinks, low=-3.0, high=3.0):
    """Uniform inputs kept 0.05 from the kinks, so finite differences never straddle one."""
    def make(rng, shapes, dtype):
        out = []
        for shape in shapes:
            x = rng.uniform(low, high, size=shape)
            for kink in kinks:
                near = np.abs(x - kink) < 0.05
                x[near] = kink + np.where(x[near] >= kink, 0.05, -0.05)
            out.append(x.astype(dtype))
        return out
    return make


def _normal_stats(rng, shapes, dtype):
    return [rng.standard_normal(shape).astype(dtype) for shape in shapes]


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


IDS = np.array([[0, 3, 3], [5, 0, 3]])  # repeated ids: the weight gradient must accumulate
IDS_PADDED = np.array([[0, 3, 1], [5, 1, 3]])

ROWS = [
    # ---- activations with kinks: first derivatives only (they are piecewise constant) ----
    OpSpec("f_relu", F.relu, _typed(lambda x: np.maximum(x, 0)), SHAPES, make=_away_from(0)),
    OpSpec("f_relu6", F.relu6, _typed(lambda x: np.clip(x, 0, 6)), SHAPES,
           make=_away_from(0, 6, low=-2, high=8)),
    OpSpec("f_leaky_relu", lambda x: F.leaky_relu(x, 0.1),
           _typed(lambda x: np.where(x > 0, x, 0.1 * x)), SHAPES, make=_away_from(0)),
    OpSpec("f_hardtanh", lambda x: F.hardtanh(x, -0.5, 1.5),
           _typed(lambda x: np.clip(x, -0.5, 1.5)), SHAPES, make=_away_from(-0.5, 1.5)),
    OpSpec("f_hardsigmoid", F.hardsigmoid, _typed(lambda x: np.clip(x / 6 + 0.5, 0, 1)),
           SHAPES, make=_away_from(-3, 3, low=-5, high=5)),
    OpSpec("f_prelu", F.prelu, lambda x, w: np.where(x > 0, x, w[None, :, None] * x),
           [((2, 3, 4), (3,))], make=lambda rng, shapes, dtype: [
               _away_from(0)(rng, shapes[:1], dtype)[0],
               rng.uniform(0.1, 0.5, size=shapes[1]).astype(dtype)]),
    # ---- smooth activations: double backward too ----
    OpSpec("f_hardswish", F.hardswish, _typed(lambda x: x * np.clip(x + 3, 0, 6) / 6), SHAPES,
           make=_away_from(-3, 3, low=-5, high=5), double=True),
    OpSpec("f_elu", lambda x: F.elu(x, 0.7),
           _typed(lambda x: np.where(x > 0, x, 0.7 * np.expm1(np.minimum(x, 0)))), SHAPES,
           make=_away_from(0), double=True),
    OpSpec("f_selu", F.selu, _typed(lambda x: 1.0507009873554805 * np.where(
        x > 0, x, 1.6732632423543772 * np.expm1(np.minimum(x, 0)))), SHAPES,
        make=_away_from(0), double=True),
    OpSpec("f_celu", lambda x: F.celu(x, 1.5), _typed(lambda x: np.where(
        x > 0, x, 1.5 * np.expm1(np.minimum(x, 0) / 1.5))), SHAPES, make=_away_from(0),
        double=True),
    OpSpec("f_gelu", F.gelu, _typed(lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2)))), SHAPES,
           double=True),
    OpSpec("f_gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), _typed(
        lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))),
        SHAPES, double=True),
    OpSpec("f_silu", F.silu, _typed(lambda x: x * _sigmoid(x)), SHAPES, double=True),
    OpSpec("f_mish", F.mish, _typed(lambda x: x * np.tanh(np.log1p(np.exp(x)))), SHAPES,
           double=True),
    OpSpec("f_sigmoid", F.sigmoid, _typed(_sigmoid), SHAPES, double=True),
    OpSpec("f_tanh", F.tanh, _typed(np.tanh), SHAPES, double=True),
    OpSpec("f_softplus", lambda x: F.softplus(x, beta=2.0, threshold=3.0), _typed(
        lambda x: np.where(2 * x > 3, x, np.log1p(np.exp(np.minimum(2 * x, 3))) / 2)), SHAPES,
        make=_away_from(1.5), double=True),
    OpSpec("f_softplus_large", F.softplus, _typed(lambda x: np.where(
        x > 20, x, np.log1p(np.exp(np.minimum(x, 20))))), [((6,),)], domain=(-60.0, 60.0),
        make=_away_from(20, low=-60, high=60), double=True),
    OpSpec("f_softsign", F.softsign, _typed(lambda x: x / (1 + np.abs(x))), SHAPES,
           make=_away_from(0), double=True),
    OpSpec("floored_log", floored_log, _typed(lambda p: np.maximum(np.log(p), -100.0)),
           [((7,),), ((2, 3),)], domain=(0.05, 2.0), double=True),
    OpSpec("erf", erf, _typed(_erf), SHAPES + [((7,),)], domain=(-5.0, 5.0), double=True),
    # ---- the fused normalization primitive, all three outputs ----
    OpSpec("normalize_last_axis", lambda x, w, b: normalize(x, w, b, (1,), 1e-5),
           lambda x, w, b: (_standardize(x, (1,))[0] * w + b, *_standardize(x, (1,))[1:]),
           [((3, 5), (5,), (5,))], make=_normal_stats, double=True, rtol=1e-4, atol=1e-5),
    OpSpec("normalize_channels", lambda x: normalize(x, None, None, (0, 2), 1e-5),
           lambda x: _standardize(x, (0, 2)), [((4, 2, 3),)], make=_normal_stats, double=True,
           rtol=1e-4, atol=1e-5),
    OpSpec("f_layer_norm", lambda x, w, b: F.layer_norm(x, (3, 4), w, b),
           lambda x, w, b: _standardize(x, (1, 2))[0] * w + b,
           [((2, 3, 4), (3, 4), (3, 4))], make=_normal_stats, double=True, rtol=1e-4,
           atol=1e-5),
    OpSpec("f_batch_norm_train", lambda x, w, b: F.batch_norm(x, None, None, w, b,
                                                              training=True),
           lambda x, w, b: _standardize(x, (0, 2))[0] * w[:, None] + b[:, None],
           [((3, 2, 4), (2,), (2,))], make=_normal_stats, double=True, rtol=1e-4, atol=1e-5),
    OpSpec("f_batch_norm_eval", lambda x, m, v, w, b: F.batch_norm(x, m, v, w, b),
           lambda x, m, v, w, b: (x - m) / np.sqrt(v + 1e-5) * w + b,
           [((4, 3), (3,), (3,), (3,), (3,))], make=lambda rng, shapes, dtype: [
               rng.standard_normal(s).astype(dtype) if i != 2 else
               rng.uniform(0.5, 1.5, s).astype(dtype) for i, s in enumerate(shapes)],
           double=True),
    OpSpec("f_group_norm", lambda x, w, b: F.group_norm(x, 2, w, b),
           lambda x, w, b: _standardize(x.reshape(2, 2, -1), (2,))[0].reshape(x.shape)
           * w[:, None] + b[:, None], [((2, 4, 3), (4,), (4,))], make=_normal_stats,
           double=True, rtol=1e-4, atol=1e-5),
    OpSpec("f_instance_norm", F.instance_norm, lambda x: _standardize(x, (2, 3))[0],
           [((2, 2, 2, 3),)], make=_normal_stats, double=True, rtol=1e-4, atol=1e-5),
    # ---- embedding: the weight gradient is a scatter-add whose vjp gathers again ----
    OpSpec("f_embedding", lambda w: F.embedding(ember.asarray(IDS), w), lambda w: w[IDS],
           [((6, 4),)], double=True),
    OpSpec("f_embedding_squared", lambda w: F.embedding(ember.asarray(IDS), w) ** 2,
           lambda w: w[IDS] ** 2, [((6, 4),)], double=True),
    OpSpec("f_embedding_padding_int32",  # padding row 2 is never looked up (no gradient)
           lambda w: F.embedding(ember.asarray(IDS_PADDED.astype(np.int32)), w, 2) ** 2,
           lambda w: w[IDS_PADDED] ** 2, [((6, 4),)], double=True),
]
