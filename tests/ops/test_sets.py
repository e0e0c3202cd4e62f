"""What the op table cannot express for ember/ops/sets.py: all return flags, NaN handling."""
from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.ops import sets


@pytest.mark.parametrize("dtype", ["int64", "float32"])
def test_unique_family_matches_numpy(dtype):
    data = np.random.default_rng(1).integers(-3, 4, size=(4, 5)).astype(dtype)
    values, indices, inverse, counts = np.unique(data, return_index=True, return_inverse=True,
                                                 return_counts=True)
    x = ember.asarray(data)
    every = sets.unique_all(x)
    np.testing.assert_array_equal(every.values.numpy(), values)
    np.testing.assert_array_equal(every.indices.numpy(), indices)
    np.testing.assert_array_equal(every.inverse_indices.numpy(), inverse.reshape(data.shape))
    np.testing.assert_array_equal(every.counts.numpy(), counts)
    np.testing.assert_array_equal(sets.unique_values(x).numpy(), values)
    np.testing.assert_array_equal(sets.unique_counts(x).counts.numpy(), counts)
    inverse_result = sets.unique_inverse(x)
    assert inverse_result.inverse_indices.shape == data.shape
    rebuilt = inverse_result.values.numpy()[inverse_result.inverse_indices.numpy()]
    np.testing.assert_array_equal(rebuilt, data)


@pytest.mark.parametrize("return_inverse", [False, True])
@pytest.mark.parametrize("return_counts", [False, True])
def test_torch_style_unique_flags(return_inverse, return_counts):
    data = np.array([[3, 1], [3, 2]])
    got = sets.unique(ember.asarray(data), return_inverse=return_inverse,
                        return_counts=return_counts)
    expected = np.unique(data, return_inverse=return_inverse, return_counts=return_counts)
    if not (return_inverse or return_counts):
        got, expected = (got,), (expected,)
    for out, ref in zip(got, expected, strict=True):
        np.testing.assert_array_equal(out.numpy().reshape(-1), np.asarray(ref).reshape(-1))
    if return_inverse:
        assert got[1].shape == data.shape


def test_unique_treats_every_nan_as_distinct():
    x = ember.tensor([float("nan"), 1.0, float("nan"), 1.0])
    result = sets.unique_counts(x)
    assert result.values.shape == (3,) and result.counts.tolist() == [2, 1, 1]
