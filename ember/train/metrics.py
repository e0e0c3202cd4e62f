"""Stateful metrics: `update_state(y_true, y_pred)` once per batch, `result()` for the value over
every batch seen since `reset_state()`.

Metrics run on the host in NumPy (their inputs are copied from the device once per batch):
they are bookkeeping, not part of the differentiable graph. Classification metrics take scores
the way ember models emit them: a class axis of logits or probabilities is reduced by argmax;
a single score column (or scores shaped like the targets) is thresholded (`threshold`, 0.5 by
default; `Model.compile` uses 0 for `bce_with_logits`, whose outputs are logits).
"""
from __future__ import annotations

import math

import numpy as np

from ember._core.errors import EmberError, ShapeError
from ember._core.tensor import Tensor


def host_array(value) -> np.ndarray:
    """A NumPy copy-free view of a Tensor (moved to the CPU, detached) or array-like."""
    if isinstance(value, Tensor):
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    return array.astype(np.float32) if array.dtype.kind == "V" else array  # bfloat16


class Metric:
    """Base class: subclasses define `update_state`, `result` and `reset_state`.

    Calling a metric updates it with one batch and returns the running result.

    >>> m = Accuracy()
    >>> m([0, 1, 1], [[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]])
    0.6666666666666666
    """

    default_name = "metric"

    def __init__(self, name: str | None = None):
        self.name = name or self.default_name
        self.reset_state()

    def update_state(self, y_true, y_pred, sample_weight=None):
        raise NotImplementedError(f"{type(self).__name__} does not define update_state()")

    def result(self):
        raise NotImplementedError(f"{type(self).__name__} does not define result()")

    def reset_state(self):
        raise NotImplementedError(f"{type(self).__name__} does not define reset_state()")

    def __call__(self, y_true, y_pred, sample_weight=None):
        self.update_state(y_true, y_pred, sample_weight)
        return self.result()

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"


# ---- running means ---------------------------------------------------------------------------
class Mean(Metric):
    """Weighted mean of every value seen (the loss tracker of `fit`).

    >>> m = Mean("loss")
    >>> m.update_state([1.0, 3.0]); m.update_state(5.0, sample_weight=2.0)
    >>> m.result()
    3.5
    """

    default_name = "mean"

    def reset_state(self):
        self.total, self.count = 0.0, 0.0

    def update_state(self, values, sample_weight=None):
        values = host_array(values).astype(np.float64)
        weights = np.broadcast_to(1.0 if sample_weight is None else host_array(sample_weight),
                                  values.shape)
        self.total += float((values * weights).sum())
        self.count += float(weights.sum())

    def result(self) -> float:
        return self.total / self.count if self.count else math.nan


class _SampleMean(Mean):
    """A mean of one value per sample, computed by `values(y_true, y_pred)`."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        super().update_state(self.values(host_array(y_true), host_array(y_pred)), sample_weight)

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def _labels(y_true: np.ndarray, y_pred: np.ndarray, threshold: float):
    """(true labels, predicted labels) as integer arrays of one shape."""
    multiclass = y_pred.ndim >= 2 and y_pred.shape[-1] > 1 and y_pred.shape != y_true.shape
    one_hot = y_pred.ndim >= 2 and y_pred.shape[-1] > 1 and y_true.shape == y_pred.shape
    if multiclass or one_hot:
        predicted = y_pred.argmax(axis=-1)
        truth = y_true.argmax(axis=-1) if one_hot else y_true
    else:
        predicted = (y_pred > threshold).astype(np.int64)
        truth = y_true > 0.5 if y_true.dtype.kind == "f" else y_true
    if truth.size != predicted.size:
        raise ShapeError(f"metric: {truth.size} targets for {predicted.size} predictions "
                         f"(y_true shape {y_true.shape}, y_pred shape {y_pred.shape})")
    return truth.reshape(predicted.shape).astype(np.int64), predicted.astype(np.int64)


def _matched(y_true: np.ndarray, y_pred: np.ndarray, metric: str) -> np.ndarray:
    """y_true in y_pred's shape: equal sizes reshape ((n,) vs (n, 1)), anything else raises."""
    if y_true.shape == y_pred.shape:
        return y_true
    if y_true.size != y_pred.size:
        raise ShapeError(f"{metric}: y_true shape {y_true.shape} does not match y_pred shape "
                         f"{y_pred.shape}")
    return y_true.reshape(y_pred.shape)


def _per_sample(values: np.ndarray) -> np.ndarray:
    return values.reshape(values.shape[0], -1).mean(axis=1) if values.ndim > 1 else values


class Accuracy(_SampleMean):
    """Fraction of samples whose predicted class equals the target (argmax over a class axis;
    threshold for a single score). Targets are class indices or one-hot rows."""

    default_name = "accuracy"

    def __init__(self, name: str | None = None, threshold: float = 0.5):
        self.threshold = threshold
        super().__init__(name)

    def values(self, y_true, y_pred):
        truth, predicted = _labels(y_true, y_pred, self.threshold)
        return _per_sample((truth == predicted).astype(np.float64))


class BinaryAccuracy(Accuracy):
    """Accuracy of `y_pred > threshold` against 0/1 targets.

    >>> BinaryAccuracy(threshold=0.0)([1, 0, 1], [2.0, -1.0, -0.5])
    0.6666666666666666
    """

    default_name = "binary_accuracy"

    def values(self, y_true, y_pred):
        truth = _matched(y_true, y_pred, self.name) > 0.5
        return _per_sample((truth == (y_pred > self.threshold)).astype(np.float64))


class TopKAccuracy(_SampleMean):
    """Fraction of samples whose target is among the `k` highest scores.

    >>> TopKAccuracy(k=2)([2, 0], [[0.1, 0.5, 0.4], [0.1, 0.5, 0.4]])
    0.5
    """

    default_name = "top_k_accuracy"

    def __init__(self, k: int = 5, name: str | None = None):
        self.k = k
        super().__init__(name)

    def values(self, y_true, y_pred):
        if y_pred.ndim != 2:
            raise ShapeError(f"{self.name}: y_pred must be (batch, classes), got {y_pred.shape}")
        truth = y_true.argmax(-1) if y_true.shape == y_pred.shape else y_true.reshape(-1)
        # Ties count as hits, as in Keras: a target scoring at least the k-th best is in.
        kth = -np.sort(-y_pred, axis=1)[:, min(self.k, y_pred.shape[1]) - 1]
        target_score = y_pred[np.arange(len(truth)), truth.astype(np.int64)]
        return (target_score >= kth).astype(np.float64)


class MeanSquaredError(_SampleMean):
    """Mean of (y_pred - y_true)^2 over every element."""

    default_name = "mean_squared_error"

    def values(self, y_true, y_pred):
        return _per_sample((y_pred - _matched(y_true, y_pred, self.name)) ** 2.0)


class MeanAbsoluteError(_SampleMean):
    """Mean of |y_pred - y_true| over every element."""

    default_name = "mean_absolute_error"

    def values(self, y_true, y_pred):
        return _per_sample(np.abs(y_pred - _matched(y_true, y_pred, self.name)))


class RootMeanSquaredError(MeanSquaredError):
    """sqrt of the mean squared error over every batch (not a mean of per-batch roots).

    >>> RootMeanSquaredError()([0.0, 0.0], [3.0, 4.0])
    3.5355339059327378
    """

    default_name = "root_mean_squared_error"

    def result(self) -> float:
        return math.sqrt(super().result())


# ---- confusion-matrix metrics -------------------------------------------------------------
class ConfusionMatrix(Metric):
    """Counts[i, j] = samples of true class i predicted as class j (sklearn's layout). The
    matrix grows to the largest class seen unless `num_classes` fixes it.

    >>> ConfusionMatrix()([0, 1, 1], [[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]]).tolist()
    [[1, 0], [1, 1]]
    """

    default_name = "confusion_matrix"

    def __init__(self, num_classes: int | None = None, name: str | None = None,
                 threshold: float = 0.5):
        self.num_classes = num_classes
        self.threshold = threshold
        super().__init__(name)

    def reset_state(self):
        size = self.num_classes or 0
        self.matrix = np.zeros((size, size), np.int64)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = host_array(y_pred)
        truth, predicted = _labels(host_array(y_true), y_pred, self.threshold)
        truth, predicted = truth.reshape(-1), predicted.reshape(-1)
        if truth.size and min(truth.min(), predicted.min()) < 0:
            raise EmberError(f"{self.name}: class labels must be >= 0")
        classes = y_pred.shape[-1] if y_pred.ndim >= 2 and y_pred.shape[-1] > 1 else 2
        size = max(classes, int(truth.max(initial=0)) + 1, int(predicted.max(initial=0)) + 1)
        if self.num_classes is not None and size > self.num_classes:
            raise EmberError(f"{self.name}: saw class {size - 1}, but num_classes is "
                             f"{self.num_classes}")
        if size > len(self.matrix):
            grown = np.zeros((size, size), self.matrix.dtype)
            grown[:len(self.matrix), :len(self.matrix)] = self.matrix
            self.matrix = grown
        weights = 1 if sample_weight is None else np.broadcast_to(
            host_array(sample_weight), truth.shape)
        if sample_weight is not None and self.matrix.dtype != np.float64:
            self.matrix = self.matrix.astype(np.float64)
        np.add.at(self.matrix, (truth, predicted), weights)

    def result(self) -> np.ndarray:
        return self.matrix.copy()


class _FromConfusion(ConfusionMatrix):
    """Precision/recall/F1 from accumulated counts. `average='auto'` is 'binary' (class 1 is
    positive) for two classes and 'macro' (unweighted mean over the classes that occur in the
    targets or predictions, as sklearn) otherwise."""

    averages = ("auto", "binary", "macro", "micro")

    def __init__(self, average: str = "auto", threshold: float = 0.5,
                 num_classes: int | None = None, name: str | None = None):
        if average not in self.averages:
            raise EmberError(f"{type(self).__name__}: average must be one of {self.averages}, "
                             f"got {average!r}")
        self.average = average
        super().__init__(num_classes, name, threshold)

    def result(self) -> float:
        counts = self.matrix.astype(np.float64)
        tp = np.diag(counts)
        fp, fn = counts.sum(0) - tp, counts.sum(1) - tp
        average = self.average
        if average == "auto":
            average = "binary" if len(counts) <= 2 else "macro"
        if average == "binary":
            if len(counts) > 2:
                raise EmberError(f"{self.name}: average='binary' needs two classes, saw "
                                 f"{len(counts)}; use average='macro'")
            if len(counts) < 2:
                return 0.0
            return float(self.score(tp[1:], fp[1:], fn[1:])[0])
        if average == "micro":
            return float(self.score(tp.sum(keepdims=True), fp.sum(keepdims=True),
                                    fn.sum(keepdims=True))[0])
        present = (counts.sum(0) + counts.sum(1)) > 0
        return float(self.score(tp, fp, fn)[present].mean()) if present.any() else 0.0

    @staticmethod
    def score(tp, fp, fn) -> np.ndarray:
        raise NotImplementedError


def _ratio(numerator, denominator):
    """numerator / denominator, 0 where the denominator is 0 (sklearn's zero_division)."""
    return np.divide(numerator, denominator, out=np.zeros_like(numerator),
                     where=denominator > 0)


class Precision(_FromConfusion):
    """tp / (tp + fp).

    >>> Precision()([1, 0, 1, 1], [0.9, 0.8, 0.2, 0.7])
    0.6666666666666666
    """

    default_name = "precision"

    @staticmethod
    def score(tp, fp, fn):
        return _ratio(tp, tp + fp)


class Recall(_FromConfusion):
    """tp / (tp + fn)."""

    default_name = "recall"

    @staticmethod
    def score(tp, fp, fn):
        return _ratio(tp, tp + fn)


class F1Score(_FromConfusion):
    """2 tp / (2 tp + fp + fn): the harmonic mean of precision and recall, per class."""

    default_name = "f1"

    @staticmethod
    def score(tp, fp, fn):
        return _ratio(2 * tp, 2 * tp + fp + fn)


class AUC(Metric):
    """Area under the ROC curve of binary targets, exact: every score is kept and ranked
    (Mann-Whitney U with tied scores sharing their mean rank, which equals sklearn's
    trapezoidal ROC AUC). Scores may be logits or probabilities; a (batch, 2) input uses
    column 1.

    >>> AUC()([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """

    default_name = "auc"

    def reset_state(self):
        self._scores, self._labels = [], []

    def update_state(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise EmberError(f"{self.name}: sample weights are not supported by AUC")
        scores, truth = host_array(y_pred), host_array(y_true)
        if scores.ndim == 2 and scores.shape[1] == 2:
            scores = scores[:, 1]
        if scores.ndim > 1 and scores.shape[-1] > 1:
            raise ShapeError(f"{self.name}: ROC AUC is binary; got scores of shape "
                             f"{scores.shape} (pass one positive-class score per sample)")
        if truth.size != scores.size:
            raise ShapeError(f"{self.name}: {truth.size} targets for {scores.size} scores")
        self._scores.append(scores.reshape(-1).astype(np.float64))
        self._labels.append(truth.reshape(-1) > 0.5)

    def result(self) -> float:
        if not self._scores:
            return math.nan
        scores, positive = np.concatenate(self._scores), np.concatenate(self._labels)
        n_pos = int(positive.sum())
        n_neg = positive.size - n_pos
        if n_pos == 0 or n_neg == 0:
            return math.nan  # undefined with one class only
        _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
        first_rank = np.cumsum(counts) - counts + 1
        mean_rank = first_rank + (counts - 1) / 2.0
        rank_sum = mean_rank[inverse][positive].sum()
        return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


class _FunctionMetric(_SampleMean):
    """A mean of `fn(y_true, y_pred)` over samples (a plain function given as a metric)."""

    def __init__(self, fn, name: str | None = None):
        self.fn = fn
        super().__init__(name or getattr(fn, "__name__", "metric"))

    def values(self, y_true, y_pred):
        return _per_sample(host_array(self.fn(y_true, y_pred)).astype(np.float64))


_BY_NAME = {
    "accuracy": Accuracy, "acc": Accuracy, "binary_accuracy": BinaryAccuracy,
    "top_k_accuracy": TopKAccuracy, "precision": Precision, "recall": Recall, "f1": F1Score,
    "f1_score": F1Score, "auc": AUC, "mse": MeanSquaredError, "mae": MeanAbsoluteError,
    "rmse": RootMeanSquaredError, "mean_squared_error": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError, "root_mean_squared_error": RootMeanSquaredError,
    "confusion_matrix": ConfusionMatrix,
}


def get(identifier) -> Metric:
    """A Metric from a name ('accuracy', 'auc', 'mse', ...), a Metric, or a function
    `fn(y_true, y_pred) -> per-sample values`. A named metric logs under the name given.

    >>> get('acc').name
    'acc'
    """
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower())
        if cls is None:
            raise EmberError(f"unknown metric {identifier!r}; expected one of "
                             f"{sorted(_BY_NAME)}, a Metric, or a function")
        return cls(name=identifier)
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if callable(identifier):
        return _FunctionMetric(identifier)
    raise EmberError(f"a metric must be a name, a Metric or a function, got "
                     f"{type(identifier).__name__}")
