"""Time series: sliding windows with a forecast horizon, a split by time, and scalers.

A series is (time,) or (time, features). Scalers are fitted on the training part only, so no
statistic of the test period leaks into training.
"""
from __future__ import annotations

import numpy as np

from ember._core.errors import EmberError, ShapeError


def _series(series, name: str) -> np.ndarray:
    array = np.asarray(series)
    if array.ndim == 0:
        raise ShapeError(f"{name}: expected a series of shape (time,) or (time, features), "
                         f"got a scalar")
    return array


def sliding_windows(series, window: int, horizon: int = 1,
                    stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets): inputs[i] = series[s:s+window], targets[i] = the next `horizon` steps.

    s = i * stride. Shapes: (n, window, ...) and (n, horizon, ...), with
    n = (time - window - horizon) // stride + 1.

    >>> x, y = sliding_windows(np.arange(6), window=3, horizon=2)
    >>> x.tolist(), y.tolist()
    ([[0, 1, 2], [1, 2, 3]], [[3, 4], [4, 5]])
    """
    array = _series(series, "sliding_windows")
    if window < 1 or horizon < 0 or stride < 1:
        raise EmberError(f"sliding_windows: need window >= 1, horizon >= 0 and stride >= 1, got "
                         f"window={window}, horizon={horizon}, stride={stride}")
    span = window + horizon
    if len(array) < span:
        raise ShapeError(f"sliding_windows: a series of {len(array)} steps is shorter than "
                         f"window + horizon = {span}")
    # One strided view of all spans, then a copy: callers may modify the windows.
    spans = np.lib.stride_tricks.sliding_window_view(array, span, axis=0)[::stride]
    spans = np.moveaxis(spans, -1, 1)                    # (n, span, ...features)
    return spans[:, :window].copy(), spans[:, window:].copy()


def train_test_split_by_time(series, test_fraction: float | None = 0.2,
                             split: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Split at a point in time: the first part trains, the rest tests (never shuffled).

    Give `split` (an index) or `test_fraction` (the test part rounds up to whole steps).

    >>> train, test = train_test_split_by_time(np.arange(10), test_fraction=0.2)
    >>> train.tolist(), test.tolist()
    ([0, 1, 2, 3, 4, 5, 6, 7], [8, 9])
    """
    array = _series(series, "train_test_split_by_time")
    if split is None:
        if test_fraction is None or not 0.0 < test_fraction < 1.0:
            raise EmberError(f"train_test_split_by_time: test_fraction must lie in (0, 1), got "
                             f"{test_fraction}")
        split = len(array) - int(np.ceil(len(array) * test_fraction))
    if not 0 < split < len(array):
        raise EmberError(f"train_test_split_by_time: split must lie in (0, {len(array)}) so "
                         f"both parts are non-empty, got {split}")
    return array[:split], array[split:]


class _Scaler:
    """fit on the training part, then transform / inverse_transform any part."""

    _fitted_attributes: tuple[str, ...] = ()

    def fit_transform(self, x) -> np.ndarray:
        return self.fit(x).transform(x)

    def _check(self, x, name: str) -> np.ndarray:
        if getattr(self, self._fitted_attributes[0], None) is None:
            raise EmberError(f"{type(self).__name__}.{name}: call fit(train) first")
        array = np.asarray(x)
        if array.dtype != np.float64:
            array = array.astype(np.float32)
        expected = getattr(self, self._fitted_attributes[0]).shape
        if array.shape[1:] != expected:
            raise ShapeError(f"{type(self).__name__}.{name}: fitted on features of shape "
                             f"{expected}, got data of shape {array.shape}")
        return array


class StandardScaler(_Scaler):
    """(x - mean) / std per feature (axis 0); constant features get std 1.

    >>> scaler = StandardScaler().fit(np.array([[1.0], [3.0]]))
    >>> scaler.transform(np.array([[5.0]])).tolist(), scaler.inverse_transform([[0.0]]).tolist()
    ([[3.0]], [[2.0]])
    """

    _fitted_attributes = ("mean", "std")

    def __init__(self):
        self.mean = None
        self.std = None

    def fit(self, x) -> StandardScaler:
        array = _series(x, "StandardScaler.fit").astype(np.float64)
        self.mean = array.mean(axis=0)
        std = array.std(axis=0)
        self.std = np.where(std > 0, std, 1.0)
        return self

    def transform(self, x) -> np.ndarray:
        array = self._check(x, "transform")
        return ((array - self.mean) / self.std).astype(array.dtype)

    def inverse_transform(self, x) -> np.ndarray:
        array = self._check(x, "inverse_transform")
        return (array * self.std + self.mean).astype(array.dtype)


class MinMaxScaler(_Scaler):
    """Map each feature's training range onto `feature_range` (default [0, 1]).

    >>> scaler = MinMaxScaler().fit(np.array([2.0, 4.0]))
    >>> scaler.transform([3.0, 6.0]).tolist(), scaler.inverse_transform([0.5]).tolist()
    ([0.5, 2.0], [3.0])
    """

    _fitted_attributes = ("minimum", "scale")

    def __init__(self, feature_range: tuple[float, float] = (0.0, 1.0)):
        low, high = feature_range
        if not low < high:
            raise EmberError(f"MinMaxScaler: feature_range must be (low, high) with low < high, "
                             f"got {feature_range}")
        self.feature_range = (float(low), float(high))
        self.minimum = None
        self.scale = None

    def fit(self, x) -> MinMaxScaler:
        array = _series(x, "MinMaxScaler.fit").astype(np.float64)
        self.minimum = array.min(axis=0)
        extent = array.max(axis=0) - self.minimum
        low, high = self.feature_range
        self.scale = (high - low) / np.where(extent > 0, extent, 1.0)
        return self

    def transform(self, x) -> np.ndarray:
        array = self._check(x, "transform")
        low = self.feature_range[0]
        return ((array - self.minimum) * self.scale + low).astype(array.dtype)

    def inverse_transform(self, x) -> np.ndarray:
        array = self._check(x, "inverse_transform")
        low = self.feature_range[0]
        return ((array - low) / self.scale + self.minimum).astype(array.dtype)
