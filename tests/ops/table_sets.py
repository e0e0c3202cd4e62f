"""Op-table rows for the set functions (ember/ops/sets.py); forward checks only."""
from __future__ import annotations

import numpy as np

from ember.ops import sets
from tests.ops.optable import OpSpec

SHAPES = [((),), ((7,),), ((3, 5),), ((2, 3, 4),)]
NUMERIC = ("float32", "float64", "int64")


def _few_values(rng, shapes, dtype):
    # Five distinct values over many elements: every set function sees repeats.
    return [rng.integers(-2, 3, size=shape).astype(dtype) for shape in shapes]


def _np_unique_all(x):
    # np.unique rather than np.unique_all: NumPy >= 2.3 may return the Array API variants
    # unsorted, while ember's are sorted like torch.unique.
    values, indices, inverse, counts = np.unique(x, return_index=True, return_inverse=True,
                                                 return_counts=True, equal_nan=False)
    return values, indices, inverse.reshape(x.shape), counts


ROWS = [
    OpSpec("unique_values", sets.unique_values, np.unique, SHAPES, dtypes=(*NUMERIC, "bool"),
           make=_few_values, grad=()),
    OpSpec("unique_counts", lambda x: tuple(sets.unique_counts(x)),
           lambda x: _np_unique_all(x)[::3], SHAPES, dtypes=NUMERIC, make=_few_values, grad=()),
    OpSpec("unique_inverse", lambda x: tuple(sets.unique_inverse(x)),
           lambda x: _np_unique_all(x)[::2], SHAPES, dtypes=NUMERIC, make=_few_values, grad=()),
    OpSpec("unique_all", lambda x: tuple(sets.unique_all(x)), _np_unique_all, SHAPES,
           dtypes=NUMERIC, make=_few_values, grad=()),
]
