"""plot_history: the files it writes open and hold the curves."""
from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest

image_module = pytest.importorskip("matplotlib.image")

from ember._core.errors import EmberError  # noqa: E402
from ember.train.history import History  # noqa: E402
from ember.viz import plot_history  # noqa: E402


def _history() -> History:
    history = History()
    history.on_train_begin()
    for epoch in range(4):
        history.on_epoch_end(epoch, {"loss": 1.0 / (epoch + 1), "accuracy": 0.5 + epoch / 10,
                                     "lr": 0.1 * 0.5 ** epoch, "val_loss": 1.2 / (epoch + 1),
                                     "val_accuracy": 0.45 + epoch / 10})
    return history


def test_png_decodes_with_the_figure_size(tmp_path):
    path = tmp_path / "history.png"
    figure = plot_history(_history(), path, dpi=80)
    pixels = image_module.imread(path)
    width, height = figure.get_size_inches() * 80
    assert pixels.shape[:2] == (round(height), round(width))
    assert pixels.std() > 0  # not a blank canvas


def test_panels_and_curves():
    figure = plot_history(_history())
    assert [axes.get_title() for axes in figure.axes] == ["loss", "accuracy"]
    loss_axes = figure.axes[0]
    lines = {line.get_label(): line for line in loss_axes.get_lines()}
    assert sorted(lines) == ["train", "validation"]
    np.testing.assert_allclose(lines["train"].get_xdata(), [1, 2, 3, 4])
    np.testing.assert_allclose(lines["validation"].get_ydata(), [1.2, 0.6, 0.4, 0.3])


def test_svg_parses_as_xml_and_lr_panel_on_request(tmp_path):
    path = tmp_path / "curves.svg"
    figure = plot_history(_history(), path, metrics=["lr"])
    root = ElementTree.parse(path).getroot()
    assert root.tag.endswith("svg")
    assert figure.axes[0].get_yscale() == "log"


def test_plain_dict_and_errors(tmp_path):
    figure = plot_history({"loss": [3.0, 2.0]})
    assert len(figure.axes) == 1
    with pytest.raises(EmberError, match="no values logged"):
        plot_history({"loss": [1.0]}, metrics=["accuracy"])
    with pytest.raises(EmberError, match="expected a path ending"):
        plot_history({"loss": [1.0]}, tmp_path / "curves.jpeg")
