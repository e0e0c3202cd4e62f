"""Stateful metrics (`from ember.metrics import AUC`); they live in `ember.train.metrics`."""
from ember.train.metrics import (
    AUC,
    Accuracy,
    BinaryAccuracy,
    ConfusionMatrix,
    F1Score,
    Mean,
    MeanAbsoluteError,
    MeanSquaredError,
    Metric,
    Precision,
    Recall,
    RootMeanSquaredError,
    TopKAccuracy,
    get,
)

__all__ = ["AUC", "Accuracy", "BinaryAccuracy", "ConfusionMatrix", "F1Score", "Mean",
           "MeanAbsoluteError", "MeanSquaredError", "Metric", "Precision", "Recall",
           "RootMeanSquaredError", "TopKAccuracy", "get"]
