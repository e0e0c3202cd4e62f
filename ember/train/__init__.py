"""The training API behind `ember.Model`: the fit/evaluate/predict loops, callbacks, metrics,
the progress bar and History."""

from ember.train import callbacks, metrics  # callbacks first: history/progress subclass it
from ember.train.callbacks import (
    Callback,
    CallbackList,
    CSVLogger,
    EarlyStopping,
    LambdaCallback,
    LearningRateScheduler,
    ModelCheckpoint,
    ReduceLROnPlateau,
    TerminateOnNaN,
)
from ember.train.checkpoint import Checkpointer, CheckpointError, training_state
from ember.train.history import History
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
)
from ember.train.progress import ProgressBar
from ember.train.resume import TrainingCheckpoint
