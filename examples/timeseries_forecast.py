"""Forecast the next 12 steps of a seasonal series from the last 48, with an MLP or an LSTM,
and compare with the naive forecast (repeat the last value).

    python examples/timeseries_forecast.py               # MLP; try --model lstm
    python examples/timeseries_forecast.py --epochs 1 --limit 200

The series is generated: trend + two seasonal cycles + noise, so it runs anywhere
(--data is accepted for symmetry with the other examples and not read).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

import ember
from ember import nn
from ember.data.transforms import StandardScaler, sliding_windows, train_test_split_by_time

WINDOW, HORIZON = 48, 12


def default_data() -> str:
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    return os.environ.get("EMBER_DATA", str(shared))


def make_series(steps: int, rng) -> np.ndarray:
    t = np.arange(steps)
    season = 10 * np.sin(2 * np.pi * t / 24) + 4 * np.sin(2 * np.pi * t / 168)  # day, week
    return (50 + 0.02 * t + season + rng.normal(0, 1.5, steps)).astype(np.float32)


class LSTMForecaster(ember.Model):
    def __init__(self, hidden: int = 64):
        super().__init__()
        self.lstm = nn.LSTM(1, hidden, batch_first=True)
        self.head = nn.Linear(hidden, HORIZON)

    def forward(self, x):                        # x: (batch, WINDOW)
        out, _ = self.lstm(x.reshape((x.shape[0], x.shape[1], 1)))
        return self.head(out[:, -1])             # the last step's state predicts all 12


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=default_data(), help="unused: the series is generated")
    parser.add_argument("--model", choices=["mlp", "lstm"], default="mlp")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--steps", type=int, default=4000, help="length of the series")
    parser.add_argument("--limit", type=int, default=None,
                        help="use only the last N training windows")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    ember.manual_seed(args.seed)

    series = make_series(args.steps, np.random.default_rng(args.seed))
    # Split by time (never shuffle a series before splitting), then fit the scaler on the
    # training part only: the test period's mean must not leak into training.
    train, test = train_test_split_by_time(series, test_fraction=0.2)
    scaler = StandardScaler().fit(train)
    train, test = scaler.transform(train), scaler.transform(test)
    # The test windows may look back into the training period, as a live forecaster would.
    x_train, y_train = sliding_windows(train, WINDOW, HORIZON)
    x_test, y_test = sliding_windows(np.concatenate([train[-WINDOW:], test]), WINDOW, HORIZON)
    if args.limit:  # the most recent windows: closest to the test period
        x_train, y_train = x_train[-args.limit:], y_train[-args.limit:]

    if args.model == "lstm":
        model = LSTMForecaster()
    else:
        model = ember.Sequential([nn.Linear(WINDOW, 128), nn.ReLU(), nn.Linear(128, 64),
                                  nn.ReLU(), nn.Linear(64, HORIZON)])
    model.compile(optimizer=ember.optim.Adam(model.parameters(), lr=1e-3), loss="mse")
    # validation_split takes the last 10% of the (time-ordered) windows: still a split by time.
    stop = ember.callbacks.EarlyStopping(patience=5, restore_best_weights=True)
    model.fit(x_train, y_train, batch_size=64, epochs=args.epochs, validation_split=0.1,
              callbacks=[stop], verbose=2)

    # Errors in the series' own units: undo the scaling before comparing.
    def unscale(a): return scaler.inverse_transform(a.reshape(-1)).reshape(a.shape)
    truth = unscale(y_test)
    model_mae = float(np.abs(unscale(model.predict(x_test, batch_size=256)) - truth).mean())
    naive = np.repeat(x_test[:, -1:], HORIZON, axis=1)  # tomorrow looks like today
    naive_mae = float(np.abs(unscale(naive) - truth).mean())
    print(f"test MAE over {HORIZON} steps: {args.model} {model_mae:.3f}, "
          f"naive last value {naive_mae:.3f} (noise std 1.5)")
    return {"model_mae": model_mae, "naive_mae": naive_mae}


if __name__ == "__main__":
    main()
