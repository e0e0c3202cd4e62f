"""Training callbacks (`from ember.callbacks import EarlyStopping`); they live in
`ember.train.callbacks`."""
from ember.train.callbacks import (
    Callback,
    CallbackList,
    CSVLogger,
    EarlyStopping,
    LambdaCallback,
    LearningRateScheduler,
    ModelCheckpoint,
    ProgressBar,
    ReduceLROnPlateau,
    TerminateOnNaN,
)
from ember.viz.callback import TensorBoard

__all__ = ["CSVLogger", "Callback", "CallbackList", "EarlyStopping", "LambdaCallback",
           "LearningRateScheduler", "ModelCheckpoint", "ProgressBar", "ReduceLROnPlateau",
           "TensorBoard", "TerminateOnNaN"]
