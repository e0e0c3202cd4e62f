"""A dense autoencoder squeezes digit images through a small code and rebuilds them.

It trains with `fit(x, x)`: the input is its own target. Reported: the test reconstruction
MSE (pixels in [0, 1]) before and after training.

    python examples/autoencoder.py                      # 8x8 Digits (ships with scikit-learn)
    python examples/autoencoder.py --dataset mnist      # 28x28 MNIST from --data/mnist
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

import ember
from ember import nn

DEFAULT_DATA = os.environ.get("EMBER_DATA",
                              str(Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))


def load(dataset: str, data: str):
    """Flattened (train, test) float32 images in [0, 1]."""
    if dataset == "digits":
        splits = [ember.datasets.Digits(train=flag).arrays()[0] for flag in (True, False)]
    else:
        splits = [ember.datasets.MNIST(Path(data) / "mnist", train=flag).data / np.float32(255)
                  for flag in (True, False)]
    return [images.reshape(len(images), -1).astype(np.float32) for images in splits]


def autoencoder(pixels: int, code: int) -> ember.Sequential:
    hidden = 4 * code
    return ember.Sequential([
        nn.Linear(pixels, hidden), nn.ReLU(), nn.Linear(hidden, code),             # encoder
        nn.Linear(code, hidden), nn.ReLU(), nn.Linear(hidden, pixels), nn.Sigmoid(),  # decoder
    ])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["digits", "mnist"], default="digits")
    parser.add_argument("--data", default=DEFAULT_DATA, help="folder holding mnist/")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--code", type=int, default=16, help="size of the bottleneck")
    parser.add_argument("--limit", type=int, default=None, help="use only N training images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=2, help="0 silent, 1 bar, 2 per epoch")
    args = parser.parse_args(argv)

    ember.manual_seed(args.seed)
    train, test = load(args.dataset, args.data)
    train = train[:args.limit]
    model = autoencoder(train.shape[1], args.code)
    model.compile(optimizer=ember.optim.Adam(model.parameters(), lr=2e-3), loss="mse")
    before = model.evaluate(test, test, batch_size=500, verbose=0)
    model.fit(train, train, batch_size=32, epochs=args.epochs, verbose=args.verbose)
    after = model.evaluate(test, test, batch_size=500, verbose=0)
    print(f"test reconstruction MSE: {before:.4f} before training, {after:.4f} after")
    return {"mse_before": float(before), "mse_after": float(after)}


if __name__ == "__main__":
    main()
