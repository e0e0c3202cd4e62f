"""Op-table rows for indexing, gather/scatter, masked fill and pad.

Index arrays come from `make`; they are integer inputs, so only the floating inputs are
gradient-checked. Rows with `double=True` square the result: these ops are linear, and the
square makes the first derivative depend on the inputs, so the double-backward check runs
through Index/IndexPut's own vjps instead of skipping as "constant".
"""
from __future__ import annotations

import numpy as np

from ember.ops.indexing import index_put
from ember.ops.scatter import (
    gather,
    index_add,
    masked_fill,
    pad,
    scatter_add,
    take,
    take_along_axis,
)
from tests.ops.optable import OpSpec

FLOATS = ("float32", "float64")
WITH_INT = ("float32", "float64", "int64")


def _draw(rng, shape, dtype):
    if np.dtype(dtype).kind == "f":
        return rng.uniform(-2.0, 2.0, size=shape).astype(dtype)
    return rng.integers(-5, 6, size=shape).astype(dtype)


def _with(*extra):
    """make(): x (and any further data inputs) of the row dtype, then `extra` index arrays.

    Each extra item is `f(rng, shapes) -> array`; the shapes after the data inputs belong to
    them.
    """
    def make(rng, shapes, dtype):
        count = len(shapes) - len(extra)
        data = [_draw(rng, shape, dtype) for shape in shapes[:count]]
        return data + [build(rng, shapes) for build in extra]

    return make


def _ints(position, size_of):
    """Integers (with repeats and negatives) in range for an axis whose size `size_of` gives."""
    def build(rng, shapes):
        size = size_of(shapes)
        return rng.integers(-size, size, size=shapes[position]).astype(np.int64)

    return build


def _mask(position):
    def build(rng, shapes):
        return rng.random(shapes[position]) < 0.5

    return build


def _unique_rows(position, size_of):
    """Distinct indices, so a plain (non-accumulating) put is deterministic."""
    def build(rng, shapes):
        return rng.permutation(size_of(shapes))[:shapes[position][0]].astype(np.int64)

    return build


def _squared(function):
    return lambda *args: function(*args) ** 2


def _gather_ref(axis):
    def ref(x, index):
        block = tuple(slice(None) if d == axis else slice(0, n) for d, n in enumerate(index.shape))
        return np.take_along_axis(x[block], index, axis)

    return ref


def _grids(index, axis):
    return tuple(index if d == axis else np.arange(n).reshape([-1 if e == d else 1 for e in
                                                               range(index.ndim)])
                 for d, n in enumerate(index.shape))


def _scatter_add_ref(axis):
    def ref(x, src, index):
        out = x.copy()
        np.add.at(out, _grids(index, axis), src[tuple(slice(0, n) for n in index.shape)])
        return out

    return ref


def _index_put_ref(accumulate):
    def ref(x, values, index):
        out = x.copy()
        if accumulate:
            np.add.at(out, (index,), values)
        else:
            out[index] = values
        return out

    return ref


def _index_add_ref(x, source, index):
    out = x.copy()
    np.add.at(out, (slice(None), index), source)
    return out


def _pad_row(name, width, mode, shapes, ember_mode=None, value=0):
    fill = {"constant_values": value} if mode == "constant" else {}
    return OpSpec(f"pad-{name}", _squared(lambda x: pad(x, width, ember_mode or mode,
                                                              value=value)),
                  _squared(lambda x: np.pad(x, width, mode, **fill)),
                  shapes=shapes, dtypes=WITH_INT, double=True)


ROWS = [
    OpSpec("getitem-basic", _squared(lambda x: x[1:, ::-2]), _squared(lambda x: x[1:, ::-2]),
           shapes=[((3, 4),), ((4, 5, 2),)], dtypes=WITH_INT, double=True),
    OpSpec("getitem-int-none-ellipsis", _squared(lambda x: x[-1, None, ..., 0]),
           _squared(lambda x: x[-1, None, ..., 0]),
           shapes=[((3, 4),), ((2, 3, 4),)], dtypes=WITH_INT, double=True),
    OpSpec("getitem-0d", lambda x: x[()] * x[None], lambda x: x[()] * x[None],
           shapes=[((),)], double=True),
    OpSpec("getitem-to-0d", _squared(lambda x: x[1, -1]), _squared(lambda x: x[1, -1]),
           shapes=[((2, 3),)], double=True),
    OpSpec("getitem-list", _squared(lambda x: x[[0, 2, 2, -1]]),
           _squared(lambda x: x[[0, 2, 2, -1]]), shapes=[((4,),), ((3, 2),)],
           dtypes=WITH_INT, double=True),
    OpSpec("getitem-array", _squared(lambda x, i: x[i]), _squared(lambda x, i: x[i]),
           shapes=[((5, 3), (7,)), ((4,), (2, 3)), ((3,), ())],
           make=_with(_ints(1, lambda s: s[0][0])), dtypes=WITH_INT, double=True),
    OpSpec("getitem-arrays-adjacent", _squared(lambda x, i, j: x[:, i, j]),
           _squared(lambda x, i, j: x[:, i, j]), shapes=[((2, 3, 4), (5,), (1,))],
           make=_with(_ints(1, lambda s: s[0][1]), _ints(2, lambda s: s[0][2])),
           double=True),
    OpSpec("getitem-arrays-separated", _squared(lambda x, i, j: x[i, :, j]),
           _squared(lambda x, i, j: x[i, :, j]), shapes=[((3, 2, 4), (2, 1), (3,))],
           make=_with(_ints(1, lambda s: s[0][0]), _ints(2, lambda s: s[0][2])),
           double=True),
    OpSpec("getitem-int-and-array", _squared(lambda x, i: x[1, ..., i]),
           _squared(lambda x, i: x[1, ..., i]), shapes=[((2, 3, 4), (5,))],
           make=_with(_ints(1, lambda s: s[0][2])), double=True),
    OpSpec("getitem-mask", _squared(lambda x, m: x[m]), _squared(lambda x, m: x[m]),
           shapes=[((4, 3), (4, 3)), ((4, 3), (4,)), ((5,), (5,))],
           make=_with(_mask(1)), dtypes=WITH_INT, double=True),
    OpSpec("take-axis", _squared(lambda x, i: take(x, i, axis=1)),
           _squared(lambda x, i: np.take(x, i, axis=1)), shapes=[((3, 4), (6,)), ((2, 3, 2), ())],
           make=_with(_ints(1, lambda s: s[0][1])), dtypes=WITH_INT, double=True),
    OpSpec("take-flat", _squared(lambda x, i: take(x, i)),
           _squared(lambda x, i: np.take(x, i)), shapes=[((3, 4), (2, 5))],
           make=_with(_ints(1, lambda s: int(np.prod(s[0])))), double=True),
    OpSpec("take_along_axis", _squared(lambda x, i: take_along_axis(x, i, 1)),
           _squared(lambda x, i: np.take_along_axis(x, i, 1)),
           shapes=[((3, 4), (3, 6)), ((3, 4, 2), (1, 5, 2))],
           make=_with(_ints(1, lambda s: s[0][1])), dtypes=WITH_INT, double=True),
    OpSpec("gather", _squared(lambda x, i: gather(x, 0, i)),
           _squared(lambda x, i: _gather_ref(0)(x, i)), shapes=[((4, 3), (6, 2)), ((5,), (8,))],
           make=_with(_ints(1, lambda s: s[0][0])), dtypes=WITH_INT, double=True),
    OpSpec("gather-last", _squared(lambda x, i: gather(x, -1, i)),
           _squared(lambda x, i: _gather_ref(2)(x, i)), shapes=[((2, 3, 4), (2, 2, 5))],
           make=_with(_ints(1, lambda s: s[0][2])), double=True),
    OpSpec("scatter_add", _squared(lambda x, s, i: scatter_add(x, 0, i, s)),
           _squared(_scatter_add_ref(0)), shapes=[((3, 4), (5, 4), (5, 3)), ((4,), (6,), (6,))],
           make=_with(_ints(2, lambda s: s[0][0])), dtypes=WITH_INT, double=True),
    OpSpec("scatter_add-axis1", _squared(lambda x, s, i: scatter_add(x, 1, i, s)),
           _squared(_scatter_add_ref(1)), shapes=[((2, 3, 2), (2, 5, 3), (2, 4, 2))],
           make=_with(_ints(2, lambda s: s[0][1])), double=True),
    OpSpec("index_put", _squared(lambda x, v, i: index_put(x, (i,), v)),
           _squared(_index_put_ref(False)), shapes=[((5, 3), (3, 3), (3,)), ((5, 3), (3,), (2,))],
           make=_with(_unique_rows(2, lambda s: s[0][0])), dtypes=WITH_INT, double=True),
    OpSpec("index_put-accumulate",
           _squared(lambda x, v, i: index_put(x, (i,), v, accumulate=True)),
           _squared(_index_put_ref(True)), shapes=[((4, 2), (6, 2), (6,)), ((3,), (), (5,))],
           make=_with(_ints(2, lambda s: s[0][0])), dtypes=WITH_INT, double=True),
    OpSpec("index_add", _squared(lambda x, s, i: index_add(x, 1, i, s)),
           _squared(_index_add_ref), shapes=[((2, 3), (2, 5), (5,))],
           make=_with(_ints(2, lambda s: s[0][1])), dtypes=WITH_INT, double=True),
    OpSpec("masked_fill", _squared(lambda x, m: masked_fill(x, m, 0.5)),
           _squared(lambda x, m: np.where(m, np.asarray(0.5, x.dtype), x)),
           shapes=[((3, 4), (3, 4)), ((3, 4), (4,)), ((), ())],
           make=_with(_mask(1)), double=True),
    OpSpec("masked_fill-tensor-value", _squared(lambda x, v, m: masked_fill(x, m, v)),
           _squared(lambda x, v, m: np.where(m, v, x)), shapes=[((3, 4), (), (1, 4))],
           make=_with(_mask(2)), double=True),
    _pad_row("constant", ((1, 2), (0, 3)), "constant", [((2, 3),)], value=1.5),
    _pad_row("constant-all", 2, "constant", [((3,),), ((2, 1, 2),), ((),)]),
    _pad_row("reflect", ((2, 1), (1, 3)), "reflect", [((3, 4),)]),
    _pad_row("reflect-wide", (5, 7), "reflect", [((3,),), ((1,),)]),
    _pad_row("symmetric", (4, 2), "symmetric", [((3,),)]),
    _pad_row("replicate", ((1, 2), (3, 0)), "edge", [((2, 3),)], ember_mode="replicate"),
    _pad_row("circular", ((4, 1), (1, 2)), "wrap", [((3, 2),)], ember_mode="circular"),
]
