"""The `ember` command: `ember quickstart` trains a small CNN on Digits, `ember info` describes
the machine (versions, BLAS, threads, GPU) in plain words."""
from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys


def _version(module_name: str) -> str:
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return "not installed"
    return getattr(module, "__version__", "installed")


def _blas() -> str:
    import numpy as np

    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except Exception:  # older NumPy or an unusual build: say so rather than fail
        return "unknown"
    detail = blas.get("openblas configuration") or blas.get("version", "")
    return f"{blas.get('name', 'unknown')} ({detail})".strip()


def info_lines() -> list[str]:
    """What `ember info` prints: one fact per line."""
    import numba

    import ember
    from ember._core.device import _cuda_problem

    threads = {name: os.environ[name] for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                   "MKL_NUM_THREADS") if name in os.environ}
    problem = _cuda_problem()
    lines = [
        f"ember       {ember.__version__}",
        f"python      {platform.python_version()} ({platform.platform()})",
        *(f"{name:<11} {_version(name)}" for name in ("numpy", "numba", "ml_dtypes",
                                                       "safetensors", "tqdm", "cupy")),
        f"blas        {_blas()}",
        f"cpu cores   {os.cpu_count()}; numba threads {numba.get_num_threads()}"
        + (f"; {', '.join(f'{k}={v}' for k, v in threads.items())}" if threads else ""),
        "gpu         usable (cuda:0)" if problem is None else f"gpu         not usable: {problem}",
    ]
    return lines


def quickstart(epochs: int = 20, seed: int = 0, verbose="auto") -> float:
    """Train a small CNN on the 8x8 Digits (they ship with scikit-learn, so this works offline)
    and return its test accuracy."""
    import ember
    from ember import nn
    from ember.datasets import Digits

    ember.manual_seed(seed)
    train, test = Digits(train=True), Digits(train=False)
    model = ember.Sequential([
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.25), nn.Linear(32 * 4 * 4, 64), nn.ReLU(),
        nn.Linear(64, 10)])
    model.compile(optimizer=ember.optim.Adam(model.parameters(), lr=2e-3),
                  loss="cross_entropy", metrics=["accuracy"])
    model.fit(train, batch_size=32, epochs=epochs, verbose=verbose)
    logs = model.evaluate(test, batch_size=256, verbose=0, return_dict=True)
    return float(logs["accuracy"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="ember", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("quickstart", help="train a small CNN on Digits and report "
                                                   "its test accuracy")
    start.add_argument("--epochs", type=int, default=20)
    start.add_argument("--seed", type=int, default=0)
    start.add_argument("--verbose", type=int, default=None,
                       help="0 silent, 1 progress bar, 2 one line per epoch (default: auto)")
    commands.add_parser("info", help="versions, BLAS, threads and whether a GPU is usable")
    commands.add_parser("bench", help="the BENCH.md workloads vs PyTorch (options: ember bench "
                                      "--help)", add_help=False)
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:
        from ember.benchmarks.run import main as bench

        bench(argv[1:])
        return 0
    args = parser.parse_args(argv)
    if args.command == "info":
        print("\n".join(info_lines()))
        return 0
    # The quickstart always shows progress: a bar on a terminal, one line per epoch otherwise.
    verbose = (1 if sys.stdout.isatty() else 2) if args.verbose is None else args.verbose
    print(f"ember quickstart: a small CNN on the 8x8 Digits, {args.epochs} epochs")
    accuracy = quickstart(args.epochs, args.seed, verbose)
    print(f"test accuracy: {accuracy:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
