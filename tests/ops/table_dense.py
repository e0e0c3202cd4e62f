"""Op-table rows for the fused affine map (ember/ops/dense.py)."""
from __future__ import annotations

from ember.ops.dense import dense
from tests.ops.optable import OpSpec


def _ref(x, w, b=None):
    y = x @ w.T
    return y + b if b is not None else y


ROWS = [
    OpSpec("dense", dense, _ref, [((5, 4), (3, 4), (3,)), ((2, 3, 4), (2, 4), (2,))],
           double=True),
    OpSpec("dense_vector_input", dense, _ref, [((4,), (3, 4), (3,))], double=True),
    OpSpec("dense_no_bias", lambda x, w: dense(x, w), _ref, [((2, 1, 4), (3, 4))],
           double=True),
]
