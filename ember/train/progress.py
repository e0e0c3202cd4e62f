"""The progress display of `fit`/`evaluate` (the one progress bar in ember, built on tqdm).

verbose=1: a live tqdm bar per epoch (epoch i/N, step, elapsed and ETA, running loss and
metrics); it stays on screen as that epoch's line, with the validation values added.
verbose=2: one plain line per epoch, printed when the epoch ends. verbose=0: nothing.
verbose='auto': 1 when stdout is a terminal, else 2 (logs and CI output get one line per
epoch instead of a stream of carriage returns), as Keras does.
"""
from __future__ import annotations

import sys
import time

import numpy as np

from ember._core.errors import EmberError
from ember.train.callbacks import Callback


def resolve_verbose(verbose) -> int:
    """0, 1 or 2 from `verbose` (0/1/2/'auto'/bool).

    >>> resolve_verbose(2), resolve_verbose(False)
    (2, 0)
    """
    if verbose == "auto":  # a live bar on a terminal; silent in logs and pipes unless asked
        isatty = getattr(sys.stdout, "isatty", None)
        return 1 if isatty is not None and isatty() else 0
    if verbose in (0, 1, 2) and not isinstance(verbose, str):
        return int(verbose)
    raise EmberError(f"verbose must be 0, 1, 2 or 'auto', got {verbose!r}")


def format_logs(logs) -> str:
    """'loss: 0.1234 - accuracy: 0.9500' from the scalar entries of a logs dict."""
    parts = []
    for key, value in (logs or {}).items():
        if np.ndim(value) != 0:
            continue  # e.g. a confusion matrix: History keeps it, the display does not
        value = float(value)
        small = value != 0 and abs(value) < 1e-3
        parts.append(f"{key}: {value:.4e}" if small else f"{key}: {value:.4f}")
    return " - ".join(parts)


def _duration(seconds: float) -> str:
    return f"{seconds:.1f}s" if seconds >= 1 else f"{seconds * 1000:.0f}ms"


class ProgressBar(Callback):
    """Shows training progress; `fit(verbose=...)` adds one, so pass one yourself only to
    pick its stream (`file`) or mode.

    >>> ProgressBar(verbose=2).verbose
    2
    """

    def __init__(self, verbose=1, file=None):
        super().__init__()
        self.verbose = resolve_verbose(verbose)
        self.file = file
        self._bar = None
        self._in_fit = False

    def _stream(self):
        return self.file if self.file is not None else sys.stdout  # read now: capsys swaps it

    def _open(self, total, description):
        from tqdm.auto import tqdm

        self._close()
        self._bar = tqdm(total=total, desc=description, unit="step", file=self._stream(),
                         dynamic_ncols=True, leave=True)

    def _close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _epoch_title(self, epoch) -> str:
        return f"Epoch {epoch + 1}/{self.params.get('epochs', '?')}"

    # ---- fit --------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self._in_fit = True

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()
        if self.verbose == 1:
            self._open(self.params.get("steps"), self._epoch_title(epoch))

    def on_train_batch_end(self, batch, logs=None):
        if self._bar is not None:
            self._bar.set_postfix_str(format_logs(logs), refresh=False)
            self._bar.update(1)

    def on_epoch_end(self, epoch, logs=None):
        if self.verbose == 1 and self._bar is not None:
            self._bar.set_postfix_str(format_logs(logs), refresh=True)
            self._close()
        elif self.verbose == 2:
            seconds = time.perf_counter() - self._started
            line = f"{self._epoch_title(epoch)} - {_duration(seconds)} - {format_logs(logs)}"
            print(line, file=self._stream(), flush=True)

    def on_train_end(self, logs=None):
        self._close()
        self._in_fit = False

    # ---- evaluate (inside fit, validation shows on the epoch's line instead) -----------
    def on_test_begin(self, logs=None):
        if not self._in_fit:  # inside fit, the epoch's clock keeps running through validation
            self._started = time.perf_counter()
        if self.verbose == 1 and not self._in_fit:
            self._open(self.params.get("steps"), "Evaluate")

    def on_test_batch_end(self, batch, logs=None):
        if not self._in_fit:
            self.on_train_batch_end(batch, logs)

    def on_test_end(self, logs=None):
        if self._in_fit:
            return
        if self._bar is not None:
            self._bar.set_postfix_str(format_logs(logs), refresh=True)
            self._close()
        elif self.verbose == 2:
            seconds = time.perf_counter() - self._started
            print(f"Evaluate - {_duration(seconds)} - {format_logs(logs)}", file=self._stream(),
                  flush=True)
