"""A small CNN on MNIST or Fashion-MNIST, Keras-style: Sequential, compile, fit with a
validation split and early stopping, evaluate.

    python examples/mnist_cnn.py                       # MNIST, about 99% test accuracy
    python examples/mnist_cnn.py --dataset fashion     # Fashion-MNIST, about 90%
    python examples/mnist_cnn.py --epochs 1 --limit 2000
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import ember
from ember import nn
from ember.datasets import MNIST, FashionMNIST

DATASETS = {"mnist": MNIST, "fashion": FashionMNIST}


def default_data() -> str:
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    return os.environ.get("EMBER_DATA", str(shared))


def convnet() -> ember.Sequential:
    # The Keras "simple MNIST convnet": two conv/pool stages, dropout, one linear layer.
    # Linear(None, 10) is lazy: it sizes itself from the first batch (64 * 5 * 5 = 1600).
    return ember.Sequential([
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),     # 32 x 13 x 13
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),    # 64 x 5 x 5
        nn.Flatten(), nn.Dropout(0.5), nn.Linear(None, 10),
    ])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=default_data(),
                        help="folder holding mnist/ and fashion-mnist/")
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="mnist")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--limit", type=int, default=None,
                        help="use only the first N training (and test) images")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    ember.manual_seed(args.seed)

    # A dataset object gives items one by one; arrays() gives it all as float32 in [0, 1].
    cls = DATASETS[args.dataset]
    x_train, y_train = cls(Path(args.data) / cls.folder, train=True).arrays()
    x_test, y_test = cls(Path(args.data) / cls.folder, train=False).arrays()
    x_train, y_train = x_train[:args.limit], y_train[:args.limit]
    x_test, y_test = x_test[:args.limit], y_test[:args.limit]

    model = convnet()
    # Optimizer by name: built on the first batch, after the lazy layer has its weights.
    model.compile(optimizer="adam", loss="cross_entropy", metrics=["accuracy"])
    # validation_split holds out the last 10% of the training images; EarlyStopping ends the
    # run when their loss stops improving and restores the best epoch's weights.
    stop = ember.callbacks.EarlyStopping(monitor="val_loss", patience=2,
                                         restore_best_weights=True)
    start = time.perf_counter()
    history = model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs,
                        validation_split=0.1, callbacks=[stop], verbose=2)
    seconds = time.perf_counter() - start
    model.summary()
    logs = model.evaluate(x_test, y_test, batch_size=1000, verbose=0, return_dict=True)
    print(f"{args.dataset}: test accuracy {logs['accuracy']:.4f} after "
          f"{len(history.history['loss'])} epochs ({seconds:.0f} s)")
    return {"test_accuracy": float(logs["accuracy"]), "test_loss": float(logs["loss"]),
            "epochs": len(history.history["loss"]), "seconds": seconds}


if __name__ == "__main__":
    main()
