"""Smoke tests for the model-family examples (autoencoder, GAN, RBM, Transformer): each script
runs end to end on tiny settings and its returned metrics move the right way."""
from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from tests.examples._scripts import load


def _run(name: str, *argv: str) -> dict:
    metrics = load(name).main([*argv, "--verbose", "0", "--seed", "0"])
    assert metrics and all(math.isfinite(value) for value in metrics.values()), metrics
    return metrics


def test_autoencoder_reconstructs_better_after_training():
    metrics = _run("autoencoder", "--epochs", "3", "--limit", "300")
    assert metrics["mse_after"] < 0.6 * metrics["mse_before"], metrics


def test_autoencoder_reads_mnist_from_data():
    data = os.environ.get("EMBER_DATA", "")  # the root conftest points it at ../shared/data
    if not (Path(data) / "mnist").is_dir():
        pytest.skip("no mnist/ under $EMBER_DATA")
    metrics = _run("autoencoder", "--dataset", "mnist", "--data", str(data), "--epochs", "1",
                   "--limit", "256")
    assert metrics["mse_after"] < metrics["mse_before"], metrics


def test_gan_moves_toward_the_ring_mixture():
    # ~1000 steps: fewer and the generator is still hopping between modes (seeded, so stable).
    metrics = _run("gan", "--epochs", "15", "--limit", "4096")
    assert metrics["distance_after"] < 0.5 * metrics["distance_before"], metrics


@pytest.mark.parametrize("persistent", [[], ["--pcd"]], ids=["cd1", "pcd1"])
def test_rbm_pseudo_likelihood_rises(persistent):
    metrics = _run("rbm", "--epochs", "2", "--limit", "300", *persistent)
    # Untrained, every pixel is a coin flip: 64 log(1/2) = -44.4 nats.
    assert metrics["pseudo_likelihood_before"] == pytest.approx(64 * math.log(0.5), abs=1.0)
    assert metrics["pseudo_likelihood_after"] > metrics["pseudo_likelihood_before"] + 10.0


def test_transformer_beats_chance_on_held_out_sequences():
    metrics = _run("transformer_reverse", "--epochs", "2", "--limit", "640")
    assert metrics["token_accuracy"] > 0.2, metrics  # chance is 0.1 with 10 tokens
