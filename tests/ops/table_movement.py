"""Op-table rows for shape manipulation (ember/ops/movement.py) and triangles/meshgrid."""
from __future__ import annotations

import numpy as np

import ember
from tests.ops.optable import OpSpec

ALL_DTYPES = ("float32", "float64", "int64", "bool")


def _row(name, fn, ref, shapes, **extra):
    extra.setdefault("dtypes", ALL_DTYPES)
    return OpSpec(name, fn, ref, shapes, double=True, **extra)


def _pad_ref(x):
    return np.pad(x, ((1, 2), (0, 1)))


ROWS = [
    _row("reshape", lambda x: ember.reshape(x, (4, -1)), lambda x: x.reshape(4, -1),
         [((2, 6),), ((3, 4),)]),
    _row("reshape_0d", lambda x: ember.reshape(x, (1, 1)), lambda x: x.reshape(1, 1), [((),)]),
    _row("broadcast_to", lambda x: ember.broadcast_to(x, (2, 3, 4)),
         lambda x: np.broadcast_to(x, (2, 3, 4)), [((3, 1),), ((4,),), ((),)]),
    _row("permute_dims", lambda x: ember.permute_dims(x, (2, 0, 1)),
         lambda x: np.transpose(x, (2, 0, 1)), [((2, 3, 4),)]),
    _row("matrix_transpose", ember.matrix_transpose, lambda x: np.swapaxes(x, -1, -2),
         [((3, 4),), ((2, 3, 4),)]),
    _row("moveaxis", lambda x: ember.moveaxis(x, 0, -1), lambda x: np.moveaxis(x, 0, -1),
         [((2, 3, 4),)]),
    _row("expand_dims", lambda x: ember.expand_dims(x, axis=1),
         lambda x: np.expand_dims(x, 1), [((3,),), ((2, 3),)]),
    _row("squeeze", lambda x: ember.squeeze(x, axis=1), lambda x: np.squeeze(x, 1),
         [((3, 1),), ((2, 1, 4),)]),
    _row("concat", lambda a, b: ember.concat([a, b], axis=1),
         lambda a, b: np.concatenate([a, b], axis=1), [((2, 3), (2, 5)), ((1, 2, 3), (1, 1, 3))]),
    _row("concat_none", lambda a, b: ember.concat([a, b], axis=None),
         lambda a, b: np.concatenate([a.reshape(-1), b.reshape(-1)]), [((2, 3), (4,))]),
    _row("stack", lambda a, b: ember.stack([a, b], axis=-1), lambda a, b: np.stack([a, b], -1),
         [((3,), (3,)), ((2, 3), (2, 3)), ((), ())]),
    _row("split_sections", lambda x: ember.split(x, 3, axis=1), lambda x: tuple(
        np.split(x, 3, axis=1)), [((2, 6),)]),
    _row("split_indices", lambda x: ember.split(x, [1, 3]), lambda x: tuple(
        np.split(x, [1, 3])), [((5, 2),)]),
    _row("unstack", lambda x: ember.unstack(x, axis=1),
         lambda x: tuple(np.moveaxis(x, 1, 0)), [((2, 3),)]),
    _row("flip", lambda x: ember.flip(x, axis=0), lambda x: np.flip(x, 0), [((4,),), ((2, 3),)]),
    _row("flip_all", ember.flip, np.flip, [((2, 3, 4),)]),
    _row("roll", lambda x: ember.roll(x, 2, axis=1), lambda x: np.roll(x, 2, axis=1),
         [((2, 5),)]),
    _row("roll_flat", lambda x: ember.roll(x, -1), lambda x: np.roll(x, -1), [((2, 3),)]),
    _row("roll_axes", lambda x: ember.roll(x, (1, -2), axis=(0, 1)),
         lambda x: np.roll(x, (1, -2), axis=(0, 1)), [((3, 4),)]),
    _row("tile", lambda x: ember.tile(x, (2, 3)), lambda x: np.tile(x, (2, 3)),
         [((3,),), ((2, 2),), ((),)]),
    _row("repeat_int", lambda x: ember.repeat(x, 3, axis=0), lambda x: np.repeat(x, 3, 0),
         [((2, 3),)]),
    _row("repeat_flat", lambda x: ember.repeat(x, 2), lambda x: np.repeat(x, 2), [((2, 3),)]),
    _row("repeat_counts", lambda x: ember.repeat(x, [2, 0, 1], axis=1),
         lambda x: np.repeat(x, [2, 0, 1], axis=1), [((2, 3),)]),
    _row("tril", lambda x: ember.tril(x, k=-1), lambda x: np.tril(x, -1),
         [((4, 4),), ((2, 3, 5),)]),
    _row("triu", lambda x: ember.triu(x, k=1), lambda x: np.triu(x, 1), [((4, 3),)]),
    _row("meshgrid_xy", lambda a, b: tuple(ember.meshgrid(a, b)),
         lambda a, b: tuple(np.meshgrid(a, b)), [((3,), (4,))]),
    _row("meshgrid_ij", lambda a, b: tuple(ember.meshgrid(a, b, indexing="ij")),
         lambda a, b: tuple(np.meshgrid(a, b, indexing="ij")), [((3,), (4,))]),
    _row("broadcast_arrays", lambda a, b: tuple(ember.broadcast_arrays(a, b)),
         lambda a, b: tuple(np.broadcast_arrays(a, b)), [((3, 1), (4,))]),
]
