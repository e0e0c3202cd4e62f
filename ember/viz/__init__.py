"""Looking at training: TensorBoard event files (`SummaryWriter`, the `TensorBoard`
callback), loss curves (`plot_history`) and computation graphs (`draw`).

`SummaryWriter` and `TensorBoard` need the `tensorboard` package and `plot_history` needs
matplotlib (`pip install 'ember[viz]'`); they are imported on first use, so `import
ember.viz` works without them and `draw` needs neither.
"""
from __future__ import annotations

import importlib

from ember._core.errors import EmberError
from ember.viz.graph import Drawing, Graph, draw, record
from ember.viz.plot import plot_history

_LAZY = {"SummaryWriter": "ember.viz.summary", "TensorBoard": "ember.viz.callback"}


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ember.viz' has no attribute {name!r}")
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as error:
        raise EmberError(f"ember.viz.{name} needs the tensorboard package ({error}); install "
                         f"it with pip install 'ember[viz]'") from error


__all__ = ["Drawing", "Graph", "SummaryWriter", "TensorBoard", "draw", "plot_history",
           "record"]
