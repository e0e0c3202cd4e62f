"""ember/ops/_fastmath.py: the vectorizable float32 exp against float64 NumPy."""
from __future__ import annotations

import numba
import numpy as np

from ember.ops._fastmath import exp32


@numba.njit
def _exp_all(x, out):
    for i in range(x.size):
        out[i] = exp32(x[i])


def test_exp32_is_within_a_few_ulp_and_keeps_the_special_values():
    x = np.concatenate([np.linspace(-100, 100, 400_001, dtype=np.float32),
                        np.float32([0.0, -0.0, 1e-30, -1e-30, 88.72, -87.3])])
    got = np.empty_like(x)
    _exp_all(x, got)
    exact = np.exp(x.astype(np.float64))
    normal = (exact > np.finfo(np.float32).tiny) & (exact < np.finfo(np.float32).max)
    relative = np.abs(got[normal] - exact[normal]) / exact[normal]
    assert relative.max() < 6 * 2.0 ** -24
    assert relative[np.abs(x[normal]) < 88.3].max() < 1.5 * 2.0 ** -24
    assert np.all(got[exact <= np.finfo(np.float32).tiny] <= np.finfo(np.float32).tiny)
    assert np.all(np.isinf(got[exact >= np.finfo(np.float32).max]))
    special = np.float32([np.nan, np.inf, -np.inf])
    out = np.empty_like(special)
    _exp_all(special, out)
    assert np.isnan(out[0]) and out[1] == np.inf and out[2] == 0.0
