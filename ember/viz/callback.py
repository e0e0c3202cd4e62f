"""`TensorBoard`: the callback that logs a `fit` run for TensorBoard.

Layout as in Keras, so dashboards and habits carry over: two runs, `<log_dir>/train` and
`<log_dir>/validation`, with the same tag names in both (`epoch_loss`, `epoch_accuracy`, ...)
so TensorBoard draws train and validation in one chart; the learning rate as
`epoch_learning_rate`; per-batch values as `batch_<name>` at the global batch number; weight
histograms as `weights/<parameter name>`.
"""
from __future__ import annotations

import os
import warnings

import numpy as np

from ember._core.errors import EmberError
from ember.train.callbacks import Callback


class TensorBoard(Callback):
    """Log metrics and the learning rate every epoch (and every batch with
    `update_freq='batch'`, or every N batches with an int), weight histograms every
    `histogram_freq` epochs (0: never), and the model's graph once (`write_graph=True`, from
    the first training batch).

    >>> import tempfile
    >>> callback = TensorBoard(tempfile.mkdtemp(), histogram_freq=1, update_freq='batch')
    >>> callback.update_freq
    1
    """

    def __init__(self, log_dir="logs", histogram_freq: int = 0, update_freq="epoch",
                 write_graph: bool = False):
        super().__init__()
        from ember.viz.summary import SummaryWriter  # needs the tensorboard package

        self._writer_class = SummaryWriter
        if update_freq == "batch":
            update_freq = 1
        elif update_freq != "epoch" and not (isinstance(update_freq, int) and update_freq > 0):
            raise EmberError(f"TensorBoard: update_freq must be 'epoch', 'batch' or a positive "
                             f"number of batches, got {update_freq!r}")
        if not isinstance(histogram_freq, int) or histogram_freq < 0:
            raise EmberError(f"TensorBoard: histogram_freq must be an int >= 0 (epochs between "
                             f"weight histograms; 0 for none), got {histogram_freq!r}")
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = histogram_freq
        self.update_freq = update_freq
        self.write_graph = write_graph
        self._writers: dict = {}
        self._global_batch = 0  # batches across epochs and fit calls: the x axis of batch_*
        self._graph_input = None
        self._graph_hook = None

    def _writer(self, run: str):
        if run not in self._writers:
            self._writers[run] = self._writer_class(os.path.join(self.log_dir, run))
        return self._writers[run]

    def on_train_begin(self, logs=None):
        if self.write_graph:
            # The graph is recorded from the first real batch, whatever its dtypes and
            # structure, so capture what the model is first called with.
            # (Removed in on_train_batch_end: removing a hook while the module iterates over
            # its hooks would skip the next one.)
            def capture(module, args):
                if self._graph_input is None:
                    self._graph_input = args
            self._graph_input = None
            self._graph_hook = self.model.register_forward_pre_hook(capture)

    def on_train_batch_end(self, batch, logs=None):
        self._global_batch += 1
        if self._graph_hook is not None and self._graph_input is not None:
            self._write_graph()
        if self.update_freq == "epoch" or self._global_batch % self.update_freq:
            return
        writer = self._writer("train")
        for key, value in _scalars(logs).items():
            writer.add_scalar(f"batch_{key}", value, self._global_batch)
        current_lr = getattr(self.model, "_current_lr", lambda: None)()
        if current_lr is not None:
            writer.add_scalar("batch_learning_rate", current_lr, self._global_batch)

    def _write_graph(self):
        inputs, self._graph_input = self._graph_input, None
        self._graph_hook.remove()
        self._graph_hook = None
        try:
            self._writer("train").add_graph(self.model, inputs)
        except EmberError as error:
            warnings.warn(f"TensorBoard: could not record the model's graph: {error}",
                          stacklevel=2)

    def on_epoch_end(self, epoch, logs=None):
        for key, value in _scalars(logs).items():
            run, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            name = "learning_rate" if name == "lr" else name
            self._writer(run).add_scalar(f"epoch_{name}", value, epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._histograms(epoch)
        for writer in self._writers.values():
            writer.flush()  # so a running TensorBoard shows the epoch now

    def _histograms(self, epoch):
        writer = self._writer("train")
        for name, parameter in self.model.named_parameters():
            values = parameter.cpu().numpy()
            if values.size == 0:
                continue
            if not np.isfinite(values).all():
                warnings.warn(f"TensorBoard: parameter {name} holds NaN or Inf at epoch "
                              f"{epoch}; its histogram is skipped", stacklevel=3)
                continue
            writer.add_histogram(f"weights/{name}", values, epoch)

    def on_train_end(self, logs=None):
        if self._graph_hook is not None:
            self._graph_hook.remove()
            self._graph_hook = None
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


def _scalars(logs) -> dict:
    return {key: float(value) for key, value in (logs or {}).items() if np.ndim(value) == 0}
