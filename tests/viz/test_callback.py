"""The TensorBoard callback: what a fit run leaves in the event files."""
from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)

import ember  # noqa: E402
from ember import nn  # noqa: E402
from ember._core.errors import EmberError  # noqa: E402
from ember.models import Sequential  # noqa: E402
from ember.train import LearningRateScheduler  # noqa: E402
from ember.viz import TensorBoard  # noqa: E402


def read(folder) -> EventAccumulator:
    return EventAccumulator(os.fspath(folder), size_guidance={"scalars": 0, "histograms": 0}
                            ).Reload()


def values(accumulator, tag) -> list:
    return [(event.step, event.value) for event in accumulator.Scalars(tag)]


def _fit(callback, epochs=3, **options):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 4)).astype(np.float32)
    y = (x @ rng.normal(size=(4, 1))).astype(np.float32)
    ember.manual_seed(0)
    model = Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 1))
    model.compile(ember.optim.SGD(model.parameters(), lr=0.1), "mse")
    schedule = LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1))
    history = model.fit(x, y, epochs=epochs, batch_size=16, verbose=0, callbacks=[
        schedule, callback], **options)
    return model, history


def test_epoch_loss_and_learning_rate_per_epoch(tmp_path):
    _, history = _fit(TensorBoard(tmp_path), validation_split=0.25)
    train, validation = read(tmp_path / "train"), read(tmp_path / "validation")
    assert set(train.Tags()["scalars"]) == {"epoch_loss", "epoch_learning_rate"}
    assert values(train, "epoch_loss") == [
        (epoch, pytest.approx(loss, rel=1e-6))
        for epoch, loss in enumerate(history.history["loss"])]
    assert values(train, "epoch_learning_rate") == [
        (0, pytest.approx(0.1)), (1, pytest.approx(0.05)), (2, pytest.approx(0.1 / 3))]
    assert values(validation, "epoch_loss") == [
        (epoch, pytest.approx(loss, rel=1e-6))
        for epoch, loss in enumerate(history.history["val_loss"])]
    assert not train.Tags()["histograms"] and not train.Tags()["graph"]


def test_batch_values_histograms_and_graph(tmp_path):
    model, _ = _fit(TensorBoard(tmp_path, histogram_freq=2, update_freq="batch",
                                write_graph=True))
    train = read(tmp_path / "train")
    # 48 samples in batches of 16: 3 batches per epoch, numbered 1.. across epochs.
    assert [step for step, _ in values(train, "batch_loss")] == list(range(1, 10))
    assert [value for _, value in values(train, "batch_learning_rate")] == pytest.approx(
        [0.1] * 3 + [0.05] * 3 + [0.1 / 3] * 3)
    names = [name for name, _ in model.named_parameters()]
    assert sorted(train.Tags()["histograms"]) == sorted(f"weights/{name}" for name in names)
    weight = train.Histograms("weights/0.weight")
    assert [event.step for event in weight] == [0, 2]
    assert weight[-1].histogram_value.num == 24
    assert weight[-1].histogram_value.sum == pytest.approx(float(model[0].weight.sum()), abs=1e-5)
    graph = train.Graph()
    assert [node.op for node in graph.node if node.op not in ("Parameter",)] == \
        ["Placeholder", "dense", "tanh", "dense", "Identity"]


def test_update_freq_every_n_batches(tmp_path):
    _fit(TensorBoard(tmp_path, update_freq=4))
    assert [step for step, _ in values(read(tmp_path / "train"), "batch_loss")] == [4, 8]


@pytest.mark.parametrize("options", [{"update_freq": "sometimes"}, {"update_freq": 0},
                                     {"histogram_freq": -1}])
def test_bad_options_raise(tmp_path, options):
    with pytest.raises(EmberError):
        TensorBoard(tmp_path, **options)
