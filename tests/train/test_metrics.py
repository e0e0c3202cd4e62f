"""Every metric against a NumPy or scikit-learn reference, fed batch by batch."""
from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as sk

import ember
from ember.train import metrics as M


def _feed(metric, y_true, y_pred, chunks=3):
    """Update in uneven chunks (as batches arrive) and return the final result."""
    metric.reset_state()
    edges = np.linspace(0, len(y_true), chunks + 1).astype(int)
    for start, stop in zip(edges[:-1], edges[1:]):
        metric.update_state(y_true[start:stop], y_pred[start:stop])
    return metric.result()


rng = np.random.default_rng(0)
LABELS = rng.integers(0, 4, 90)
SCORES = rng.normal(size=(90, 4)).astype(np.float32)
SCORES[np.arange(90)[:50], LABELS[:50]] += 2.0  # better than chance
BINARY = rng.integers(0, 2, 90)
PROBS = np.clip(0.5 * BINARY + rng.uniform(0, 0.6, 90), 0, 1).astype(np.float32)
TARGETS = rng.normal(size=(90, 3)).astype(np.float32)
OUTPUTS = (TARGETS + rng.normal(0, 0.5, (90, 3))).astype(np.float32)
PREDICTED = SCORES.argmax(1)
THRESHOLDED = (PROBS > 0.5).astype(int)

CASES = [  # (metric, y_true, y_pred, reference)
    (M.Accuracy(), LABELS, SCORES, sk.accuracy_score(LABELS, PREDICTED)),
    (M.Accuracy(), np.eye(4)[LABELS], SCORES, sk.accuracy_score(LABELS, PREDICTED)),
    (M.Accuracy(), BINARY, PROBS, sk.accuracy_score(BINARY, THRESHOLDED)),
    (M.BinaryAccuracy(threshold=0.3), BINARY, PROBS, np.mean(BINARY == (PROBS > 0.3))),
    (M.TopKAccuracy(k=2), LABELS, SCORES, sk.top_k_accuracy_score(LABELS, SCORES, k=2)),
    (M.Precision(), BINARY, PROBS, sk.precision_score(BINARY, THRESHOLDED)),
    (M.Recall(), BINARY, PROBS, sk.recall_score(BINARY, THRESHOLDED)),
    (M.F1Score(), BINARY, PROBS, sk.f1_score(BINARY, THRESHOLDED)),
    (M.Precision(), LABELS, SCORES, sk.precision_score(LABELS, PREDICTED, average="macro")),
    (M.Recall(), LABELS, SCORES, sk.recall_score(LABELS, PREDICTED, average="macro")),
    (M.F1Score(), LABELS, SCORES, sk.f1_score(LABELS, PREDICTED, average="macro")),
    (M.F1Score(average="micro"), LABELS, SCORES,
     sk.f1_score(LABELS, PREDICTED, average="micro")),
    (M.AUC(), BINARY, PROBS, sk.roc_auc_score(BINARY, PROBS)),
    (M.AUC(), BINARY, np.round(PROBS, 1), sk.roc_auc_score(BINARY, np.round(PROBS, 1))),
    (M.MeanSquaredError(), TARGETS, OUTPUTS, np.mean((TARGETS - OUTPUTS) ** 2)),
    (M.MeanAbsoluteError(), TARGETS, OUTPUTS, np.mean(np.abs(TARGETS - OUTPUTS))),
    (M.RootMeanSquaredError(), TARGETS, OUTPUTS, np.sqrt(np.mean((TARGETS - OUTPUTS) ** 2))),
]


@pytest.mark.parametrize("metric, y_true, y_pred, expected", CASES,
                         ids=[f"{type(c[0]).__name__}-{i}" for i, c in enumerate(CASES)])
def test_metric_matches_reference(metric, y_true, y_pred, expected):
    assert _feed(metric, y_true, y_pred) == pytest.approx(float(expected), rel=1e-6)


def test_confusion_matrix_matches_sklearn_and_grows_with_new_classes():
    metric = M.ConfusionMatrix()
    result = _feed(metric, LABELS, SCORES)
    np.testing.assert_array_equal(result, sk.confusion_matrix(LABELS, PREDICTED))
    metric.update_state([5], [[0.0] * 4])  # class 5 appears: the matrix grows to 6x6
    assert metric.result().shape == (6, 6) and metric.result()[5, 0] == 1


def test_metrics_take_tensors_and_one_column_scores():
    y_true = ember.tensor(BINARY.astype(np.float32))
    y_pred = ember.tensor(PROBS[:, None])
    assert M.AUC()(y_true, y_pred) == pytest.approx(sk.roc_auc_score(BINARY, PROBS))
    assert M.Accuracy()(y_true, y_pred) == pytest.approx(np.mean(BINARY == THRESHOLDED))


def test_mean_is_weighted_and_reset_state_forgets():
    mean = M.Mean()
    mean.update_state([1.0, 2.0, 3.0])
    mean.update_state(10.0, sample_weight=3)
    assert mean.result() == pytest.approx((6 + 30) / 6)
    mean.reset_state()
    assert math.isnan(mean.result())
    accuracy = M.Accuracy()
    accuracy([0, 1], [[1.0, 0.0], [1.0, 0.0]])
    accuracy.reset_state()
    assert accuracy([1], [[0.0, 1.0]]) == 1.0


def test_auc_with_one_class_is_nan_and_multiclass_scores_are_refused():
    assert math.isnan(M.AUC()([1, 1], [0.2, 0.9]))
    with pytest.raises(ember.ShapeError, match="binary"):
        M.AUC()(LABELS, SCORES)


def test_lookup_by_name_keeps_the_name_and_rejects_unknown_names():
    assert isinstance(M.get("acc"), M.Accuracy) and M.get("acc").name == "acc"
    kinds = {"top_k_accuracy": M.TopKAccuracy, "binary_accuracy": M.BinaryAccuracy,
             "precision": M.Precision, "recall": M.Recall, "f1": M.F1Score, "auc": M.AUC,
             "mse": M.MeanSquaredError, "mae": M.MeanAbsoluteError,
             "rmse": M.RootMeanSquaredError}
    for name, kind in kinds.items():
        assert type(M.get(name)) is kind
    function_metric = M.get(lambda y_true, y_pred: np.abs(y_true - y_pred))
    assert function_metric([1.0, 2.0], [1.5, 2.5]) == pytest.approx(0.5)
    with pytest.raises(ember.EmberError, match="unknown metric"):
        M.get("accuracyy")


def test_mismatched_sizes_raise_shape_error():
    with pytest.raises(ember.ShapeError):
        M.MeanSquaredError()(np.zeros(3), np.zeros(4))
