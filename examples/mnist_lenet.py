"""LeNet-5 on MNIST (LeCun et al. 1998), with today's defaults: ReLU, max-pooling and Adam.

    python examples/mnist_lenet.py                 # 15 epochs, >= 99.0% test accuracy
    python examples/mnist_lenet.py --epochs 1 --limit 2000   # a quick smoke run

The layer sizes are the paper's: conv 6@5x5 (padded so 28x28 stays 28x28, as the paper's 32x32
input did), pool, conv 16@5x5, pool, then 120, 84 and 10 units (61,706 parameters).
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import ember
from ember import nn
from ember.datasets import MNIST

MEAN, STD = 0.1307, 0.3081  # MNIST's pixel mean and standard deviation (train set)


def default_data() -> str:
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    return os.environ.get("EMBER_DATA", str(shared))


def lenet5() -> ember.Sequential:
    return ember.Sequential([
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),   # 6 x 14 x 14
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),             # 16 x 5 x 5
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10),                  # logits: cross_entropy applies the softmax
    ])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=default_data(), help="folder holding mnist/")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--limit", type=int, default=None,
                        help="use only the first N training (and test) images")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    ember.manual_seed(args.seed)

    # arrays() hands over the whole set as float32 (N, 1, 28, 28) in [0, 1] at once:
    # faster than a per-image transform, and MNIST fits in memory many times over.
    root = Path(args.data) / "mnist"
    x_train, y_train = MNIST(root, train=True).arrays()
    x_test, y_test = MNIST(root, train=False).arrays()
    x_train, y_train = x_train[:args.limit], y_train[:args.limit]
    x_test, y_test = x_test[:args.limit], y_test[:args.limit]
    x_train, x_test = (x_train - MEAN) / STD, (x_test - MEAN) / STD

    model = lenet5()
    optimizer = ember.optim.Adam(model.parameters(), lr=args.lr)
    model.compile(optimizer=optimizer, loss="cross_entropy", metrics=["accuracy"])
    model.summary((1, 28, 28))
    # Cosine decay towards 0 over the run: large steps early, small ones to settle at the
    # end, which usually gains a little final accuracy over a constant learning rate.
    schedule = ember.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)

    # The test set is only watched here (per-epoch progress), never used to choose anything.
    start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, verbose=2,
              validation_data=(x_test, y_test),
              callbacks=[ember.callbacks.LearningRateScheduler(schedule)])
    seconds = time.perf_counter() - start
    logs = model.evaluate(x_test, y_test, batch_size=1000, verbose=0, return_dict=True)
    print(f"test accuracy {logs['accuracy']:.4f} ({len(x_test)} images), "
          f"{args.epochs} epochs in {seconds:.0f} s")
    return {"test_accuracy": float(logs["accuracy"]), "test_loss": float(logs["loss"]),
            "seconds": seconds}


if __name__ == "__main__":
    main()
