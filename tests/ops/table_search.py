"""Op-table rows for searching and sorting (ember/ops/search.py)."""
from __future__ import annotations

import numpy as np

from ember.ops import search
from tests.ops.optable import OpSpec

SHAPES = [((),), ((7,),), ((3, 5),), ((2, 3, 4),)]
NONSCALAR = SHAPES[1:]
NUMERIC = ("float32", "float64", "int64")


def _distinct(rng, shapes, dtype):
    # Sorting is differentiable only away from ties: distinct values at least 0.1 apart keep
    # central differences from swapping neighbours (and int64 draws are a permutation).
    out = []
    for shape in shapes:
        size = int(np.prod(shape))
        values = rng.permutation(size) - size // 2
        out.append((values * (1 if dtype == "int64" else 0.1)).reshape(shape).astype(dtype))
    return out


def _small_ints(rng, shapes, dtype):
    # Few distinct values: many ties and zeros (argsort stability, unique, count_nonzero).
    return [rng.integers(-2, 3, size=shape).astype(dtype) for shape in shapes]


def _sorted_and_queries(rng, shapes, dtype):
    (n,), queries = shapes
    haystack = np.sort(rng.integers(-4, 5, size=n)).astype(dtype)  # with repeats
    return [haystack, rng.integers(-6, 7, size=queries).astype(dtype)]


def _unsorted_with_sorter(rng, shapes, dtype):
    (n,), queries, _ = shapes
    haystack = rng.integers(-4, 5, size=n).astype(dtype)
    return [haystack, rng.integers(-6, 7, size=queries).astype(dtype),
            np.argsort(haystack, kind="stable")]


# (axis, cases): the last, first and a middle axis; only axis -1 applies to 0-d input.
AXES = [(-1, SHAPES), (0, NONSCALAR), (1, [((3, 5),), ((2, 3, 4),)])]


def _np_argsort(x, axis, descending):
    if x.ndim == 0:
        return np.zeros((), np.int64)
    # Stable descending: sort by the negated key, which keeps ties in original order.
    return np.argsort(-x if descending else x, axis=axis, kind="stable")


def _np_sort(x, axis, descending):
    if x.ndim == 0:
        return x
    return np.take_along_axis(x, _np_argsort(x, axis, descending), axis=axis)


def _np_topk(x, k, axis, largest):
    order = _np_argsort(x, axis, largest)
    indices = np.take(order, np.arange(k), axis=axis)
    return np.take_along_axis(x, indices, axis=axis), indices


def _np_kthvalue(x, k, axis):
    values, indices = _np_topk(x, k, axis, largest=False)
    return np.take(values, k - 1, axis=axis), np.take(indices, k - 1, axis=axis)


def _sort_rows():
    rows = []
    for axis, shapes in AXES:
        for descending in (False, True):
            tag = f"axis{axis}{'_desc' if descending else ''}"
            rows.append(OpSpec(
                f"sort_{tag}",
                lambda x, a=axis, d=descending: search.sort(x, axis=a, descending=d),
                lambda x, a=axis, d=descending: _np_sort(x, a, d),
                shapes, dtypes=NUMERIC, make=_distinct, double=True))
            rows.append(OpSpec(
                f"argsort_{tag}",
                lambda x, a=axis, d=descending: search.argsort(x, axis=a, descending=d),
                lambda x, a=axis, d=descending: _np_argsort(x, a, d),
                shapes, dtypes=NUMERIC, make=_small_ints, grad=()))
    return rows


def _topk_rows():
    rows = []
    for axis, largest, k, shapes in [(-1, True, 3, [((7,),), ((3, 5),), ((2, 3, 4),)]),
                                     (0, False, 2, [((3, 5),), ((2, 3, 4),)]),
                                     (1, True, 1, [((3, 5),), ((2, 3, 4),)]),
                                     (-1, True, 0, [((3, 5),)])]:
        rows.append(OpSpec(
            f"topk_axis{axis}_k{k}{'' if largest else '_smallest'}",
            lambda x, a=axis, k=k, big=largest: tuple(search.topk(x, k, axis=a, largest=big)),
            lambda x, a=axis, k=k, big=largest: _np_topk(x, k, a, big),
            shapes, dtypes=NUMERIC, make=_distinct, double=True))
    rows.append(OpSpec(
        "topk_ties", lambda x: tuple(search.topk(x, 2)), lambda x: _np_topk(x, 2, -1, True),
        [((4, 6),)], dtypes=NUMERIC, make=_small_ints, grad=()))
    rows.append(OpSpec(
        "kthvalue", lambda x: tuple(search.kthvalue(x, 2, axis=1)),
        lambda x: _np_kthvalue(x, 2, 1), [((3, 5),), ((2, 3, 4),)], dtypes=NUMERIC,
        make=_distinct, double=True))
    return rows


def _arg_extreme_rows(name, fn, ref):
    return [
        OpSpec(f"{name}_all", fn, ref, SHAPES, dtypes=NUMERIC, make=_small_ints, grad=()),
        OpSpec(f"{name}_axis", lambda x: fn(x, axis=-1), lambda x: ref(x, axis=-1),
               NONSCALAR, dtypes=NUMERIC, grad=()),
        OpSpec(f"{name}_axis0_keepdims", lambda x: fn(x, axis=0, keepdims=True),
               lambda x: ref(x, axis=0, keepdims=True), NONSCALAR, dtypes=NUMERIC, grad=()),
        OpSpec(f"{name}_all_keepdims", lambda x: fn(x, keepdims=True),
               lambda x: ref(x, keepdims=True), NONSCALAR, dtypes=NUMERIC, grad=()),
    ]


ROWS = [
    *_sort_rows(),
    *_topk_rows(),
    *_arg_extreme_rows("argmax", search.argmax, np.argmax),
    *_arg_extreme_rows("argmin", search.argmin, np.argmin),
    OpSpec("sort_squared", lambda x: search.sort(x, axis=0) ** 2,
           lambda x: np.sort(x, axis=0) ** 2, [((4, 3),)], make=_distinct, double=True),
    OpSpec("topk_squared", lambda x: search.topk(x, 2).values ** 2,
           lambda x: _np_topk(x, 2, -1, True)[0] ** 2, [((3, 5),)], make=_distinct,
           double=True),
    OpSpec("count_nonzero_all", search.count_nonzero, np.count_nonzero, SHAPES,
           dtypes=(*NUMERIC, "bool"), make=_small_ints, grad=()),
    OpSpec("count_nonzero_axes_keepdims",
           lambda x: search.count_nonzero(x, axis=(0, 2), keepdims=True),
           lambda x: np.count_nonzero(x, axis=(0, 2), keepdims=True), [((2, 3, 4),)],
           dtypes=NUMERIC, make=_small_ints, grad=()),
    OpSpec("nonzero", lambda x: search.nonzero(x), np.nonzero, NONSCALAR,
           dtypes=(*NUMERIC, "bool"), make=_small_ints, grad=()),
    *[OpSpec(f"searchsorted_{side}",
             lambda a, b, s=side: search.searchsorted(a, b, side=s),
             lambda a, b, s=side: np.searchsorted(a, b, side=s),
             [((9,), (5,)), ((9,), (2, 3)), ((6,), ())], dtypes=NUMERIC,
             make=_sorted_and_queries, grad=())
      for side in ("left", "right")],
    OpSpec("searchsorted_sorter",
           lambda a, b, s: search.searchsorted(a, b, side="right", sorter=s),
           lambda a, b, s: np.searchsorted(a, b, side="right", sorter=s),
           [((9,), (6,), (9,))], dtypes=NUMERIC, make=_unsorted_with_sorter, grad=()),
]
