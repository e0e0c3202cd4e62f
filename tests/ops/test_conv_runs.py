"""The run-wise convolution path (ember/ops/_conv_gemm.py) against the loop references and
against the whole-batch im2col path, with runs small enough that a batch takes several (the
last one partial)."""
from __future__ import annotations

import numpy as np
import pytest

from ember.ops import _conv_gemm
from ember.ops.conv import CONV_FILTER_GRAD, CONV_TRANSPOSE, CONVOLUTION
from tests.ops.conv_reference import reference_conv, reference_conv_transpose

# (x shape, weight shape, stride, padding (low, high), dilation, groups)
CASES = [
    ((5, 3, 9, 8), (4, 3, 3, 3), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),
    ((5, 4, 9, 8), (6, 2, 3, 2), (2, 1), ((1, 1), (0, 2)), (1, 2), 2),
    ((5, 2, 11), (3, 2, 4), (3,), ((2, 1),), (2,), 1),
    ((5, 2, 5, 4, 6), (2, 1, 2, 3, 2), (1, 2, 1), ((1, 0), (1, 1), (0, 1)), (1, 1, 2), 2),
    ((4, 3, 7, 7), (5, 3, 1, 1), (2, 2), ((0, 0), (0, 0)), (1, 1), 1),  # 1x1, strided
    ((4, 2, 8, 8), (3, 2, 3, 3), (2, 2), ((1, 0), (1, 0)), (1, 1), 1),  # uncovered high side
]


def _runs_of_two(monkeypatch, x, w, out):
    """RUN_BYTES for runs of two samples (the odd batches end with a run of one)."""
    per_sample = x.shape[1] * int(np.prod(w.shape[2:])) * int(np.prod(out)) * x.itemsize
    monkeypatch.setattr(_conv_gemm, "RUN_BYTES", 2 * per_sample)
    assert _conv_gemm._run_length(x.shape[0], per_sample) == 2


def _geometry(case):
    _, _, stride, padding, dilation, groups = case
    return dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_runs_match_the_references(case, dtype, monkeypatch):
    rng = np.random.default_rng(7)
    x = rng.standard_normal(case[0]).astype(dtype)
    w = rng.standard_normal(case[1]).astype(dtype)
    geometry = _geometry(case)
    spatial = x.shape[2:]
    kernel = w.shape[2:]
    out = reference_conv(x, w, **geometry).shape[2:]
    _runs_of_two(monkeypatch, x, w, out)
    y = CONVOLUTION.forward(np, x, w, **geometry)
    assert _conv_gemm.applies(np, x, x.shape[0], x.shape[1], kernel, out, geometry["stride"],
                              geometry["padding"])
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(y, reference_conv(x, w, **geometry), **tol)

    gy = rng.standard_normal(y.shape).astype(dtype)
    gx = CONV_TRANSPOSE.forward(np, gy, w, input_size=spatial, **geometry)
    # the input gradient is PyTorch's transposed convolution of gy with the same weight
    # (w's (O, C/G, *K) is that weight's (in, out / groups, *K))
    expected = reference_conv_transpose(gy, w, spatial, **geometry)
    np.testing.assert_allclose(gx, expected, **tol)

    gw = CONV_FILTER_GRAD.forward(np, x, gy, kernel_size=kernel, **geometry)
    # <gy, conv(x, w)> is linear in w: its gradient is the filter gradient
    assert gw.shape == w.shape
    for index in [(0,) * w.ndim, tuple(n - 1 for n in w.shape)]:
        basis = np.zeros_like(w)
        basis[index] = 1.0
        directional = np.sum(gy * reference_conv(x, basis, **geometry))
        np.testing.assert_allclose(gw[index], directional, **tol)


@pytest.mark.parametrize("case", CASES[:4], ids=[f"case{i}" for i in range(4)])
def test_runs_equal_the_whole_batch_path(case, monkeypatch):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(case[0])
    w = rng.standard_normal(case[1])
    geometry = _geometry(case)
    y = CONVOLUTION.forward(np, x, w, **geometry)
    gy = rng.standard_normal(y.shape)
    results = []
    for run_bytes in (None, 1 << 40):  # runs of two; then a whole-batch problem
        if run_bytes is None:
            _runs_of_two(monkeypatch, x, w, y.shape[2:])
        else:
            monkeypatch.setattr(_conv_gemm, "RUN_BYTES", run_bytes)
        results.append((CONVOLUTION.forward(np, x, w, **geometry),
                        CONV_TRANSPOSE.forward(np, gy, w, input_size=x.shape[2:], **geometry),
                        CONV_FILTER_GRAD.forward(np, x, gy, kernel_size=w.shape[2:],
                                                 **geometry)))
    assert not _conv_gemm.applies(np, x, x.shape[0], x.shape[1], w.shape[2:], y.shape[2:],
                                  geometry["stride"], geometry["padding"])
    for runs, whole in zip(*results):
        np.testing.assert_allclose(runs, whole, rtol=1e-12, atol=1e-12)


def test_pointwise_and_low_precision_problems_keep_the_whole_batch_path(monkeypatch):
    monkeypatch.setattr(_conv_gemm, "RUN_BYTES", 8)
    x = np.ones((4, 3, 5, 5), np.float32)
    assert not _conv_gemm.applies(np, x, 4, 3, (1, 1), (5, 5), (1, 1), ((0, 0), (0, 0)))
    assert _conv_gemm.applies(np, x, 4, 3, (1, 1), (3, 3), (2, 2), ((0, 0), (0, 0)))
    assert not _conv_gemm.applies(np, x.astype(np.float16), 4, 3, (3, 3), (3, 3), (1, 1),
                                  ((0, 0), (0, 0)))
