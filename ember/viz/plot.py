"""`plot_history`: loss and metric curves of a `fit` run, train against validation.

Drawn on a bare `matplotlib.figure.Figure` rather than through `pyplot`: no global figure
state, no GUI backend and no display needed (saving picks the Agg/SVG/PDF renderer from the
file's extension), and nothing is left open for the caller to close.
"""
from __future__ import annotations

import os

from ember._core.errors import EmberError

_FORMATS = ("png", "svg", "pdf")


def _series(history) -> tuple[dict, list]:
    """(name -> values, epoch numbers) of a History, or of a plain dict of lists."""
    if hasattr(history, "history"):
        values, epochs = history.history, list(getattr(history, "epoch", []))
    elif isinstance(history, dict):
        values, epochs = history, []
    else:
        raise EmberError(f"plot_history expects a History (what fit returns) or a dict of "
                         f"lists, got {type(history).__name__}")
    length = max((len(series) for series in values.values()), default=0)
    if len(epochs) != length:
        epochs = list(range(length))
    return values, epochs


def _default_metrics(values: dict) -> list:
    """Every logged name that has a training curve, loss first; 'lr' only when asked."""
    names = [name for name in values if not name.startswith("val_") and name != "lr"]
    names += [name[4:] for name in values if name.startswith("val_") and name[4:] not in values]
    return sorted(dict.fromkeys(names), key=lambda name: (name != "loss", names.index(name)))


def plot_history(history, path=None, metrics=None, dpi: int = 100):
    """Plot one panel per metric (loss first), the training curve and, when logged, the
    validation curve (`val_<name>`) against the epoch (from 1). `metrics` picks and orders
    the panels (e.g. ['loss', 'accuracy', 'lr']). With `path` the figure is also saved, as
    PNG, SVG or PDF by the extension. Returns the matplotlib Figure.

    >>> figure = plot_history({'loss': [1.0, 0.5, 0.3], 'val_loss': [1.1, 0.7, 0.6]})
    >>> [axes.get_title() for axes in figure.axes]
    ['loss']
    """
    from matplotlib.figure import Figure

    values, epochs = _series(history)
    names = list(metrics) if metrics is not None else _default_metrics(values)
    missing = [name for name in names if name not in values and f"val_{name}" not in values]
    if missing or not names:
        raise EmberError(f"plot_history: no values logged for {missing or 'any metric'}; the "
                         f"history holds {sorted(values) or 'nothing'}")
    image_format = None
    if path is not None:
        path = os.fspath(path)
        image_format = os.path.splitext(path)[1].lower().lstrip(".")
        if image_format not in _FORMATS:
            raise EmberError(f"plot_history: cannot save {path!r}; expected a path ending in "
                             f"{', '.join('.' + name for name in _FORMATS)}")
    figure = Figure(figsize=(4.5 * len(names), 3.5), dpi=dpi, layout="constrained")
    x = [epoch + 1 for epoch in epochs]
    for index, name in enumerate(names):
        axes = figure.add_subplot(1, len(names), index + 1)
        for key, label, style in ((name, "train", "-o"), (f"val_{name}", "validation", "--s")):
            if key in values:
                series = [float(value) for value in values[key]]
                axes.plot(x[-len(series):], series, style, markersize=3, label=label)
        axes.set_title(name)
        axes.set_xlabel("epoch")
        axes.grid(alpha=0.3)
        if name == "lr" and all(value > 0 for value in values.get(name, [])):
            axes.set_yscale("log")  # schedules decay geometrically; a log axis shows them
        axes.legend()
    if path is not None:
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        figure.savefig(path, format=image_format, dpi=dpi)
    return figure
