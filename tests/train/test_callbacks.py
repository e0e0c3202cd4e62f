"""Each callback's behaviour, and the order in which fit calls callback events."""
from __future__ import annotations

import csv
import io
import os

import numpy as np
import pytest
from safetensors.numpy import load_file

import ember
from ember import nn
from ember.models import Sequential
from ember.train import (
    CSVLogger,
    EarlyStopping,
    LambdaCallback,
    LearningRateScheduler,
    ModelCheckpoint,
    ProgressBar,
    ReduceLROnPlateau,
    TerminateOnNaN,
)


def _data(count=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(count, 4)).astype(np.float32)
    return x, (x @ rng.normal(size=(4, 1))).astype(np.float32)


def _model(lr=0.05):
    ember.manual_seed(0)
    model = Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    model.compile(ember.optim.SGD(model.parameters(), lr=lr), "mse")
    return model


class _Script(LambdaCallback):
    """Puts scripted values of `key` into each epoch's logs (listed before the callback under
    test, so it sees them) and snapshots the weights at every epoch end."""

    def __init__(self, key, values):
        super().__init__()
        self.key, self.values, self.weights = key, values, []

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]
        self.weights.append({k: v.numpy().copy() for k, v in self.model.state_dict().items()})


def _same_weights(model, weights):
    return all(np.array_equal(v.numpy(), weights[k]) for k, v in model.state_dict().items())


def test_event_order_recorded_by_a_lambda_callback():
    x, y = _data(8)
    events = []

    def record(name):
        return lambda *args: events.append((name, args[0]) if isinstance(args[0], int) else name)

    names = ["on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
             "on_train_batch_begin", "on_train_batch_end", "on_test_begin", "on_test_end",
             "on_test_batch_begin", "on_test_batch_end"]
    callback = LambdaCallback(**{name: record(name) for name in names})
    _model().fit(x, y, batch_size=4, epochs=2, validation_data=(x[:4], y[:4]),
                 callbacks=[callback], verbose=0)
    epoch = lambda e: [("on_epoch_begin", e),  # noqa: E731
                       ("on_train_batch_begin", 0), ("on_train_batch_end", 0),
                       ("on_train_batch_begin", 1), ("on_train_batch_end", 1),
                       "on_test_begin", ("on_test_batch_begin", 0), ("on_test_batch_end", 0),
                       "on_test_end", ("on_epoch_end", e)]
    assert events == ["on_train_begin", *epoch(0), *epoch(1), "on_train_end"]
    with pytest.raises(ember.EmberError, match="unknown event"):
        LambdaCallback(on_epoch_finish=print)


def test_early_stopping_stops_and_restores_the_best_weights():
    x, y = _data()
    script = _Script("val_loss", [1.0, 0.5, 0.7, 0.8, 0.9, 1.0])
    stopper = EarlyStopping(patience=2, restore_best_weights=True)
    model = _model()
    history = model.fit(x, y, epochs=6, callbacks=[script, stopper], verbose=0)
    assert history.epoch == [0, 1, 2, 3] and model.stop_training
    assert stopper.best_epoch == 1 and stopper.stopped_epoch == 3
    assert _same_weights(model, script.weights[1])
    assert not _same_weights(model, script.weights[3])


def test_early_stopping_baseline_and_warm_up_epochs():
    x, y = _data()
    script = _Script("val_loss", [0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    history = _model().fit(x, y, epochs=6, verbose=0,
                           callbacks=[script, EarlyStopping(patience=2, baseline=0.1)])
    assert len(history.epoch) == 2  # improving, but not beating the baseline for 2 epochs
    script = _Script("val_loss", [0.9, 1.0, 1.1, 1.2, 1.3, 1.4])
    history = _model().fit(x, y, epochs=6, verbose=0,
                           callbacks=[script, EarlyStopping(patience=1, start_from_epoch=3)])
    assert len(history.epoch) == 5  # epochs 0-2 are not watched; 3 sets best, 4 stops


def test_model_checkpoint_writes_only_the_best_weights(tmp_path):
    x, y = _data()
    script = _Script("val_loss", [1.0, 0.4, 0.6, 0.3, 0.5])
    best = ModelCheckpoint(tmp_path / "best.safetensors", save_best_only=True)
    every = ModelCheckpoint(str(tmp_path / "w-{epoch:02d}-{val_loss:.1f}.safetensors"),
                            save_best_only=True)
    _model().fit(x, y, epochs=5, callbacks=[script, best, every], verbose=0)
    saved = load_file(tmp_path / "best.safetensors")
    assert set(saved) == set(script.weights[3])
    assert all(np.array_equal(saved[k], script.weights[3][k]) for k in saved)
    assert sorted(os.listdir(tmp_path)) == ["best.safetensors", "w-01-1.0.safetensors",
                                            "w-02-0.4.safetensors", "w-04-0.3.safetensors"]


def test_reduce_lr_on_plateau_reduces_after_patience_then_floors_at_min_lr():
    x, y = _data()
    script = _Script("val_loss", [1.0] * 8)
    reduce = ReduceLROnPlateau(factor=0.5, patience=2, min_lr=0.01)
    history = _model(lr=0.04).fit(x, y, epochs=8, callbacks=[script, reduce], verbose=0)
    assert history.history["lr"] == pytest.approx([0.04, 0.04, 0.04, 0.02, 0.02, 0.01, 0.01,
                                                   0.01])


def test_terminate_on_nan_stops_at_the_first_bad_batch():
    x, y = _data(40)
    x[15] = np.nan  # in the second batch of 10
    steps = []
    counter = LambdaCallback(on_train_batch_end=lambda batch, logs: steps.append(batch))
    history = _model().fit(x, y, batch_size=10, epochs=3, shuffle=False,
                           callbacks=[TerminateOnNaN(), counter], verbose=0)
    assert steps == [0, 1] and len(history.epoch) == 1
    assert np.isnan(history.history["loss"][0])


def test_csv_logger_writes_a_row_per_epoch_and_appends(tmp_path):
    x, y = _data()
    path = tmp_path / "log.csv"
    model = _model()
    history = model.fit(x, y, epochs=3, validation_split=0.25, verbose=0,
                        callbacks=[CSVLogger(path)])
    model.fit(x, y, epochs=2, validation_split=0.25, verbose=0,
              callbacks=[CSVLogger(path, append=True)])
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["epoch", "loss", "lr", "val_loss"]
    assert [row["epoch"] for row in rows] == ["0", "1", "2", "0", "1"]
    assert [float(row["loss"]) for row in rows[:3]] == pytest.approx(history.history["loss"])


def test_learning_rate_scheduler_with_a_function_and_with_an_lr_scheduler():
    x, y = _data()
    schedule = LearningRateScheduler(lambda epoch, lr: 0.1 * 0.5 ** epoch)
    history = _model().fit(x, y, epochs=3, callbacks=[schedule], verbose=0)
    assert history.history["lr"] == pytest.approx([0.1, 0.05, 0.025])
    model = _model(lr=0.2)
    step = ember.optim.lr_scheduler.StepLR(model.optimizer, step_size=2, gamma=0.1)
    history = model.fit(x, y, epochs=4, callbacks=[LearningRateScheduler(step)], verbose=0)
    assert history.history["lr"] == pytest.approx([0.2, 0.2, 0.02, 0.02])
    other = ember.optim.SGD([nn.Parameter(ember.zeros(1))], lr=0.1)
    stray = ember.optim.lr_scheduler.StepLR(other, step_size=1)
    with pytest.raises(ember.EmberError, match="different"):
        model.fit(x, y, callbacks=[LearningRateScheduler(stray)], verbose=0)


def test_progress_bar_shows_epochs_steps_and_live_values(capsys):
    x, y = _data()
    stream = io.StringIO()
    _model().fit(x, y, batch_size=16, epochs=2, callbacks=[ProgressBar(1, file=stream)],
                 verbose=2, validation_split=0.25)
    text = stream.getvalue()
    assert "Epoch 1/2" in text and "Epoch 2/2" in text and "3/3" in text
    assert "loss: " in text and "val_loss: " in text
    assert capsys.readouterr().out == ""  # the explicit bar replaces the default one


def test_callbacks_and_metrics_import_as_modules():
    from ember.callbacks import EarlyStopping as FromModule
    from ember.metrics import AUC as MetricFromModule

    assert FromModule is ember.train.callbacks.EarlyStopping
    assert MetricFromModule is ember.train.metrics.AUC


def test_whole_model_checkpoints_and_model_save_round_trip(tmp_path):
    from ember.models import load_model

    model = ember.Sequential([ember.nn.Linear(2, 3), ember.nn.Tanh(), ember.nn.Linear(3, 1)])
    model.compile("sgd", "mse")
    x = np.random.default_rng(0).standard_normal((16, 2)).astype(np.float32)
    model.fit(x, x[:, :1], epochs=2, verbose=0,
              callbacks=[ModelCheckpoint(tmp_path / "m-{epoch}.safetensors",
                                         monitor="loss", save_weights_only=False)])
    model.save(tmp_path / "final.safetensors")
    for name in ("m-2.safetensors", "final.safetensors"):
        restored = load_model(tmp_path / name)
        np.testing.assert_array_equal(restored.predict(x), model.predict(x))
