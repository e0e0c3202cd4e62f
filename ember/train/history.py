"""`History`: the per-epoch logs of one `fit` call, which `fit` returns."""
from __future__ import annotations

from ember.train.callbacks import Callback


class History(Callback):
    """`history[name]` lists one value per epoch ('loss', 'accuracy', 'val_loss', 'lr', ...);
    `epoch` lists the epoch numbers (from 0, offset by `initial_epoch`).

    >>> history = History()
    >>> history.on_train_begin()
    >>> history.on_epoch_end(0, {'loss': 0.5})
    >>> history.history, history.epoch
    ({'loss': [0.5]}, [0])
    """

    def __init__(self):
        super().__init__()
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)
        if self.model is not None:
            self.model.history = self

    def plot(self, path=None, metrics=None):
        """Loss and metric curves, train vs validation (see `ember.viz.plot_history`);
        returns the matplotlib Figure and saves PNG/SVG/PDF by the extension of `path`."""
        from ember.viz.plot import plot_history

        return plot_history(self, path, metrics)

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={sorted(self.history)})"
