"""Smoke tests of the data-driven examples (examples/mnist_*.py, text_char_lm.py,
audio_digits.py, timeseries_forecast.py): each trains on tiny settings through its main() and
must return finite metrics that beat chance. Data come from $EMBER_DATA (../shared/data)."""
from __future__ import annotations

import math
import subprocess
import sys

import pytest

from tests.examples._scripts import EXAMPLES, load


@pytest.mark.parametrize("name", ["mnist_lenet", "mnist_cnn"])
def test_mnist_examples_learn_in_one_epoch(name, capsys):
    metrics = load(name).main(["--epochs", "1", "--limit", "1000"])
    # 1,000 images, one epoch: far from converged, but clearly above chance (0.10).
    assert 0.3 < metrics["test_accuracy"] <= 1.0
    assert math.isfinite(metrics["test_loss"]) and metrics["test_loss"] < math.log(10)
    out = capsys.readouterr().out
    assert "Epoch 1/1" in out and "test accuracy" in out


def test_lenet_is_the_classic_architecture():
    # The paper's LeNet-5 has 61,706 parameters with a 10-way output layer.
    model = load("mnist_lenet").lenet5()
    assert sum(p.size for p in model.parameters()) == 61_706


def test_char_lm_beats_a_uniform_guess_and_samples_text(capsys):
    metrics = load("text_char_lm").main(["--epochs", "1", "--limit", "512", "--seq-len", "32",
                                         "--hidden", "128"])
    assert metrics["vocab_size"] == 66  # Tiny Shakespeare's 65 characters + '<unk>'
    # A uniform guess has perplexity = vocab size; even one short epoch learns letter counts.
    assert math.isfinite(metrics["val_loss"])
    assert 1.0 < metrics["perplexity"] < 0.75 * metrics["vocab_size"]
    out = capsys.readouterr().out
    assert "perplexity" in out
    greedy = [line for line in out.splitlines() if line.startswith("greedy: ROMEO:")]
    assert greedy and len(greedy[0]) > len("greedy: ROMEO:") + 40


def test_audio_digits_beats_chance(capsys):
    metrics = load("audio_digits").main(["--epochs", "2", "--limit", "300"])
    assert 0.2 < metrics["test_accuracy"] <= 1.0  # 10 digits: chance is 0.10
    assert math.isfinite(metrics["test_loss"])
    assert "300 training and 300 test clips" in capsys.readouterr().out


def test_mlp_forecaster_beats_the_naive_last_value():
    metrics = load("timeseries_forecast").main(["--epochs", "15", "--limit", "500"])
    assert math.isfinite(metrics["model_mae"]) and metrics["model_mae"] > 0
    # The naive forecast ignores the daily cycle, so even a briefly trained MLP beats it.
    assert metrics["model_mae"] < metrics["naive_mae"]


def test_lstm_forecaster_runs_as_a_script():
    # The script entry point (`python examples/...`) on the tiniest settings.
    result = subprocess.run([sys.executable, str(EXAMPLES / "timeseries_forecast.py"),
                             "--model", "lstm", "--epochs", "1", "--limit", "64"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "test MAE over 12 steps: lstm" in result.stdout
