"""Layer-table rows for normalization, dropout and embedding layers.

The references below compute statistics directly with NumPy (biased variance for
normalizing, as every PyTorch norm layer does), independently of ember.
"""
from __future__ import annotations

import numpy as np

import ember
from tests.nn.layertable import LayerSpec

try:
    import torch
except ImportError:
    torch = None

EPS = 1e-5


def _standardize(x, axes, eps=EPS):
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


def _channel(param, ndim):
    """A (C,) array shaped to broadcast over (N, C, *spatial)."""
    return param.reshape((1, -1) + (1,) * (ndim - 2))


def _affine(p, y, per_channel=True):
    if "weight" in p:
        y = y * (_channel(p["weight"], y.ndim) if per_channel else p["weight"])
    if "bias" in p:
        y = y + (_channel(p["bias"], y.ndim) if per_channel else p["bias"])
    return y


def _batch_norm_train(p, x):
    return _affine(p, _standardize(x, (0,) + tuple(range(2, x.ndim))))


def _batch_norm_eval(p, x):
    mean, var = _channel(p["running_mean"], x.ndim), _channel(p["running_var"], x.ndim)
    return _affine(p, (x - mean) / np.sqrt(var + EPS))


def _layer_norm(dims):
    return lambda p, x: _affine(p, _standardize(x, tuple(range(x.ndim - dims, x.ndim))),
                                per_channel=False)


def _group_norm(groups):
    def ref(p, x):
        grouped = x.reshape(x.shape[0], groups, -1)
        return _affine(p, _standardize(grouped, (2,)).reshape(x.shape))
    return ref


def _instance_norm(p, x):
    return _affine(p, _standardize(x, tuple(range(2, x.ndim))))


def _positive(rng, shape):
    return rng.uniform(0.5, 1.5, size=shape)


def _ids(high, shape, avoid=None):
    def make(rng, dtype):
        ids = rng.integers(0, high, size=shape)
        if avoid is not None:  # padding rows get no gradient: keep them out of gradchecks
            ids[ids == avoid] = (avoid + 1) % high
        return [ids]
    return make


BN_BUFFERS = {"running_mean": (3,), "running_var": (3,), "num_batches_tracked": ()}
BN_PARAMS = {"weight": (3,), "bias": (3,), **BN_BUFFERS}


def _torch(name, *args, **kwargs):
    return lambda: getattr(torch.nn, name)(*args, **kwargs)


ROWS = [
    # ---- batch norm ----
    LayerSpec("batchnorm1d_train_2d", lambda: ember.nn.BatchNorm1d(3), _batch_norm_train,
              ((6, 3),), BN_PARAMS, train=True, torch=_torch("BatchNorm1d", 3)),
    LayerSpec("batchnorm1d_train_3d", lambda: ember.nn.BatchNorm1d(3), _batch_norm_train,
              ((4, 3, 5),), BN_PARAMS, train=True, torch=_torch("BatchNorm1d", 3)),
    LayerSpec("batchnorm1d_eval", lambda: ember.nn.BatchNorm1d(3), _batch_norm_eval,
              ((4, 3, 5),), BN_PARAMS, make_params={"running_var": _positive},
              torch=_torch("BatchNorm1d", 3)),
    LayerSpec("batchnorm2d_train", lambda: ember.nn.BatchNorm2d(3), _batch_norm_train,
              ((2, 3, 3, 4),), BN_PARAMS, train=True, torch=_torch("BatchNorm2d", 3)),
    LayerSpec("batchnorm2d_eval", lambda: ember.nn.BatchNorm2d(3), _batch_norm_eval,
              ((2, 3, 3, 4),), BN_PARAMS, make_params={"running_var": _positive},
              torch=_torch("BatchNorm2d", 3)),
    LayerSpec("batchnorm2d_train_no_affine", lambda: ember.nn.BatchNorm2d(3, affine=False),
              _batch_norm_train, ((2, 3, 3, 3),), BN_BUFFERS, train=True,
              torch=_torch("BatchNorm2d", 3, affine=False)),
    LayerSpec("batchnorm2d_eval_no_affine", lambda: ember.nn.BatchNorm2d(3, affine=False),
              _batch_norm_eval, ((2, 3, 3, 3),), BN_BUFFERS,
              make_params={"running_var": _positive},
              torch=_torch("BatchNorm2d", 3, affine=False)),
    LayerSpec("batchnorm2d_eval_untracked",  # no running stats: batch statistics always
              lambda: ember.nn.BatchNorm2d(3, track_running_stats=False), _batch_norm_train,
              ((2, 3, 3, 3),), {"weight": (3,), "bias": (3,)},
              torch=_torch("BatchNorm2d", 3, track_running_stats=False)),
    LayerSpec("batchnorm3d_train", lambda: ember.nn.BatchNorm3d(3), _batch_norm_train,
              ((2, 3, 2, 2, 3),), BN_PARAMS, train=True, torch=_torch("BatchNorm3d", 3)),
    LayerSpec("batchnorm3d_eval", lambda: ember.nn.BatchNorm3d(3), _batch_norm_eval,
              ((2, 3, 2, 2, 3),), BN_PARAMS, make_params={"running_var": _positive},
              torch=_torch("BatchNorm3d", 3)),
    # ---- layer norm ----
    LayerSpec("layernorm_last1", lambda: ember.nn.LayerNorm(5), _layer_norm(1), ((3, 5),),
              {"weight": (5,), "bias": (5,)}, torch=_torch("LayerNorm", 5)),
    LayerSpec("layernorm_last2", lambda: ember.nn.LayerNorm((3, 4)), _layer_norm(2),
              ((2, 3, 4),), {"weight": (3, 4), "bias": (3, 4)},
              torch=_torch("LayerNorm", (3, 4))),
    LayerSpec("layernorm_no_bias", lambda: ember.nn.LayerNorm(4, bias=False), _layer_norm(1),
              ((2, 3, 4),), {"weight": (4,)}, torch=_torch("LayerNorm", 4, bias=False)),
    LayerSpec("layernorm_no_affine", lambda: ember.nn.LayerNorm(4, elementwise_affine=False),
              _layer_norm(1), ((3, 4),), {},
              torch=_torch("LayerNorm", 4, elementwise_affine=False)),
    # ---- group norm ----
    LayerSpec("groupnorm", lambda: ember.nn.GroupNorm(2, 4), _group_norm(2), ((2, 4, 3, 3),),
              {"weight": (4,), "bias": (4,)}, torch=_torch("GroupNorm", 2, 4)),
    LayerSpec("groupnorm_2d_input", lambda: ember.nn.GroupNorm(3, 6), _group_norm(3),
              ((2, 6),), {"weight": (6,), "bias": (6,)}, torch=_torch("GroupNorm", 3, 6)),
    LayerSpec("groupnorm_no_affine", lambda: ember.nn.GroupNorm(1, 3, affine=False),
              _group_norm(1), ((2, 3, 5),), {}, torch=_torch("GroupNorm", 1, 3, affine=False)),
    # ---- instance norm ----
    LayerSpec("instancenorm2d", lambda: ember.nn.InstanceNorm2d(3), _instance_norm,
              ((2, 3, 3, 4),), {}, train=True, torch=_torch("InstanceNorm2d", 3)),
    LayerSpec("instancenorm2d_affine_tracked_train",
              lambda: ember.nn.InstanceNorm2d(3, affine=True, track_running_stats=True),
              _instance_norm, ((2, 3, 3, 3),), BN_PARAMS, train=True,
              torch=_torch("InstanceNorm2d", 3, affine=True, track_running_stats=True)),
    LayerSpec("instancenorm2d_affine_tracked_eval",
              lambda: ember.nn.InstanceNorm2d(3, affine=True, track_running_stats=True),
              _batch_norm_eval, ((2, 3, 3, 3),), BN_PARAMS,
              make_params={"running_var": _positive},
              torch=_torch("InstanceNorm2d", 3, affine=True, track_running_stats=True)),
    LayerSpec("instancenorm1d_eval_untracked", lambda: ember.nn.InstanceNorm1d(3),
              _instance_norm, ((2, 3, 5),), {}, torch=_torch("InstanceNorm1d", 3)),
    # ---- dropout (deterministic configurations) ----
    LayerSpec("dropout_p0_train", lambda: ember.nn.Dropout(0.0), lambda p, x: x, ((3, 4),), {},
              train=True, torch=_torch("Dropout", 0.0)),
    LayerSpec("dropout_eval", lambda: ember.nn.Dropout(0.5), lambda p, x: x, ((3, 4),), {},
              torch=_torch("Dropout", 0.5)),
    LayerSpec("dropout2d_eval", lambda: ember.nn.Dropout2d(0.3), lambda p, x: x,
              ((2, 3, 2, 2),), {}, torch=_torch("Dropout2d", 0.3)),
    LayerSpec("dropout2d_p0_train", lambda: ember.nn.Dropout2d(0.0), lambda p, x: x,
              ((2, 3, 2, 2),), {}, train=True, torch=_torch("Dropout2d", 0.0)),
    # ---- embedding ----
    LayerSpec("embedding", lambda: ember.nn.Embedding(7, 3), lambda p, ids: p["weight"][ids],
              (), {"weight": (7, 3)}, make=_ids(7, (4, 5)), grad=(),
              torch=_torch("Embedding", 7, 3)),
    LayerSpec("embedding_padding", lambda: ember.nn.Embedding(7, 3, padding_idx=2),
              lambda p, ids: p["weight"][ids], (), {"weight": (7, 3)},
              make=_ids(7, (2, 6), avoid=2), grad=(),
              torch=_torch("Embedding", 7, 3, padding_idx=2)),
]
