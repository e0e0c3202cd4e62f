"""Spoken digits: a small CNN on MFCC features of the Free Spoken Digit Dataset (FSDD).

    python examples/audio_digits.py                  # about 97% test accuracy (~40 s)
    python examples/audio_digits.py --epochs 1 --limit 300

FSDD's official split: recordings with index 0-4 (e.g. 7_jackson_3.wav) test, 5-49 train.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

import ember
from ember import nn
from ember.data import Subset
from ember.data import transforms as T
from ember.datasets import AudioFolder

RATE, SAMPLES = 8000, 8000  # FSDD is 8 kHz mono; pad or cut every clip to 1 second


def default_data() -> str:
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    return os.environ.get("EMBER_DATA", str(shared))


def fix_length(waveform: np.ndarray) -> np.ndarray:
    # Same length in, same number of MFCC frames out, so clips stack into one batch array.
    return np.pad(waveform, (0, max(0, SAMPLES - len(waveform))))[:SAMPLES]


def features(dataset) -> tuple[np.ndarray, np.ndarray]:
    """Compute every clip's MFCC once; training then reads arrays, not WAV files, each epoch."""
    pairs = [dataset[i] for i in range(len(dataset))]
    return (np.stack([mfcc for mfcc, _ in pairs])[:, None].astype(np.float32),
            np.array([label for _, label in pairs], dtype=np.int64))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=default_data(), help="folder holding fsdd/")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--limit", type=int, default=None,
                        help="use only N training clips (a random choice)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    ember.manual_seed(args.seed)

    # 20 MFCCs from 40 mel bands, 32 ms windows every 16 ms: a (20, 63) image per clip.
    transform = T.Compose([fix_length, T.MFCC(RATE, n_mfcc=20, n_mels=40, n_fft=256,
                                              hop_length=128)])
    def label(name): return int(name.split("_")[0])       # "7_jackson_3.wav" -> 7
    def index(path): return int(Path(path).stem.split("_")[2])
    folder = Path(args.data) / "fsdd" / "recordings"
    train = AudioFolder(folder, transform, label_fn=label, is_valid_file=lambda p: index(p) >= 5,
                        sample_rate=RATE)
    test = AudioFolder(folder, transform, label_fn=label, is_valid_file=lambda p: index(p) < 5,
                       sample_rate=RATE)
    if args.limit:  # files are sorted by digit, so take a random subset, not the first N
        order = np.random.default_rng(args.seed).permutation(len(train))
        train = Subset(train, order[:args.limit].tolist())
    x_train, y_train = features(train)
    x_test, y_test = features(test)
    # Standardise each coefficient with training statistics only (no peeking at the test set).
    mean, std = x_train.mean(axis=(0, 3), keepdims=True), x_train.std(axis=(0, 3), keepdims=True)
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    print(f"{len(x_train)} training and {len(x_test)} test clips, features {x_train.shape[1:]}")

    model = ember.Sequential([
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.3), nn.Linear(None, 64), nn.ReLU(), nn.Linear(64, 10)])
    model.compile(optimizer="adam", loss="cross_entropy", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, verbose=2)
    logs = model.evaluate(x_test, y_test, batch_size=300, verbose=0, return_dict=True)
    print(f"test accuracy {logs['accuracy']:.4f} on {len(x_test)} clips (chance 0.10)")
    return {"test_accuracy": float(logs["accuracy"]), "test_loss": float(logs["loss"])}


if __name__ == "__main__":
    main()
