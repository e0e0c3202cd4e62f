"""The BENCH.md yardstick: the four training workloads and batch-1 inference, ember vs PyTorch,
side by side in one run.

For each workload the rows (ember eager, ember jit, torch eager, torch.compile; see
`ember.benchmarks.runners`) train the same model on the same batch from the same seed; the
rows alternate (in a rotating order) inside each repeat, after two warm-up calls each, and
the median over repeats is reported: ms/step, samples/s, the ratio to the best PyTorch row,
the achieved GFLOP/s of the training step (model FLOPs x 3) and its share of this machine's
measured float32 GEMM peak, batch-1 inference latency and its ratio to the best PyTorch row,
the first call's time (jit trace / torch.compile, excluded from the timings) and the peak
memory a training step adds (fresh process per row; `ember.benchmarks.memory`).

    python bench/run.py                  # full table (~10 minutes on 2 cores); or `ember bench`
    python bench/run.py --quick          # CI smoke: tiny counts, no torch.compile, < 1 minute
    python bench/run.py --only mlp,gpt --no-torch-compile --no-memory
    python bench/run.py --ops            # the per-op microbench (ember.benchmarks.ops)
    python bench/run.py --threads        # thread pools and oversubscription check

A row whose step raises (say, an op jit cannot trace yet) prints "failed: <reason>" and the
run goes on. Below each workload: whether the ember jit losses equal the eager ones over
the steps both ran (same seed, same batch, same number of steps).
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from ember.benchmarks.memory import peak_memory
from ember.benchmarks.runners import RUNNERS, compare_losses
from ember.benchmarks.workloads import WORKLOADS

MEMORY_ROWS = ("ember eager", "ember jit", "torch eager")


def gemm_peak(size=2048, repeats=5) -> float:
    """float32 GEMM GFLOP/s of NumPy's BLAS on this machine (the physical yardstick)."""
    a = np.random.default_rng(0).standard_normal((size, size)).astype(np.float32)
    a @ a
    best = min(_seconds(lambda: a @ a) for _ in range(repeats))
    return 2 * size ** 3 / best / 1e9


def _seconds(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def _reason(error: BaseException, width: int = 120) -> str:
    text = f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error) else ''}"
    return text if len(text) <= width else text[:width - 3] + "..."


def measure(runners: dict, steps: int, repeats: int, what: str, failed: dict) -> dict:
    """Median seconds per call of each runner's `what` ('step' or 'infer'): two warm-up calls
    each (the first is recorded as `first_<what>` seconds), then `repeats` rounds in which
    every runner makes `steps` calls, the order rotating per round. A runner that raises is
    recorded in `failed[key][what]` and left out of the rest of the measurement."""
    first, times = {}, {}
    for key, runner in runners.items():
        try:
            first[key] = _seconds(getattr(runner, what))
            getattr(runner, what)()
            times[key] = []
        except Exception as error:  # noqa: BLE001 -- one failing row must not end the run
            failed.setdefault(key, {})[what] = _reason(error)
    keys = list(times)
    for round_ in range(repeats):
        for key in keys[round_ % max(len(keys), 1):] + keys[:round_ % max(len(keys), 1)]:
            call = getattr(runners[key], what)
            start = time.perf_counter()
            for _ in range(steps):
                call()
            times[key].append((time.perf_counter() - start) / steps)
    return {key: (statistics.median(values), first[key]) for key, values in times.items()}


def _header():
    return (f"{'workload':<9}{'framework':<15}{'ms/step':>9}{'samples/s':>10}{'vs torch':>9}"
            f"{'GFLOP/s':>8}{'%peak':>6}{'batch-1 µs':>11}{'vs torch':>9}{'1st call s':>11}"
            f"{'peak MiB':>9}")


def _rows(name, rows, runners, train, infer, failed, memory, peak):
    best_train = min((v[0] for k, v in train.items() if k.startswith("torch")), default=None)
    best_infer = min((v[0] for k, v in infer.items() if k.startswith("torch")), default=None)
    lines = []
    for key in rows:
        if key not in train:
            lines.append(f"{name:<9}{key:<15}failed: {failed.get(key, {}).get('step')}")
            continue
        seconds, first = train[key]
        gflops = 3 * runners[key].spec["flops"] / seconds / 1e9
        ratio = f"{seconds / best_train:.2f}x" if best_train else "-"
        line = (f"{name:<9}{key:<15}{seconds * 1e3:>9.1f}{runners[key].batch / seconds:>10.0f}"
                f"{ratio:>9}{gflops:>8.1f}{100 * gflops / peak:>5.0f}%")
        if key in infer:
            b1 = infer[key][0]
            b1_ratio = f"{b1 / best_infer:.2f}x" if best_infer else "-"
            line += f"{b1 * 1e6:>11.0f}{b1_ratio:>9}"
        else:
            line += f"{'failed':>11}{'-':>9}"
        line += f"{first:>11.1f}{memory.get(key, '-'):>9}"
        lines.append(line)
    for key, what in failed.items():
        if "infer" in what and key in train:
            lines.append(f"{'':<9}{key} batch-1 inference failed: {what['infer']}")
    return lines


def _sequential_losses(name: str, steps: int = 3) -> str:
    """Eager and jit losses compared over `steps` steps, each row run alone from seed 0."""
    losses = []
    for key in ("ember eager", "ember jit"):
        runner = RUNNERS[key](name)  # seeds the random stream
        for _ in range(steps):
            runner.step()
        losses.append(runner.losses)
    return compare_losses(losses[1], losses[0])


def run_workload(name, rows, steps, repeats, memory_steps, peak):
    """Measure one workload in every row and return the table lines for it."""
    runners, failed = {}, {}
    for key in rows:
        try:
            runners[key] = RUNNERS[key](name)
        except Exception as error:  # noqa: BLE001
            failed[key] = {"step": _reason(error)}
    train = measure(runners, steps, repeats, "step", failed)
    infer = measure(runners, 3 * steps, repeats, "infer", failed)
    memory = {}
    for key in (k for k in MEMORY_ROWS if k in rows and k in train and memory_steps):
        try:
            memory[key] = f"{peak_memory(name, key, memory_steps):.0f}"
        except RuntimeError as error:
            memory[key] = "failed"
            failed.setdefault(key, {})["memory"] = _reason(error)
    lines = _rows(name, rows, runners, train, infer, failed, memory, peak)
    if "ember eager" in train and "ember jit" in train:
        verdict = compare_losses(runners["ember jit"].losses, runners["ember eager"].losses)
        if not verdict.startswith("match"):
            # Alternating rows share one random stream, so dropout masks differ between
            # them; rerun both from the same seed, one after the other, to tell.
            verdict += "; reseeded, sequential: " + _sequential_losses(name)
        lines.append(f"{'':<9}ember jit vs eager losses: {verdict}")
    for key, what in failed.items():
        if "memory" in what:
            lines.append(f"{'':<9}{key} peak memory failed: {what['memory']}")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated workloads")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5, help="training steps per repeat")
    parser.add_argument("--quick", action="store_true",
                        help="CI smoke run: 1 repeat of 1 step, no torch.compile, no memory")
    parser.add_argument("--torch-compile", action=argparse.BooleanOptionalAction, default=None,
                        help="torch.compile rows (default: on, off with --quick)")
    parser.add_argument("--memory", action=argparse.BooleanOptionalAction, default=None,
                        help="peak step memory in fresh processes (default: on, off with "
                             "--quick)")
    parser.add_argument("--ops", action="store_true", help="run the per-op microbench instead")
    parser.add_argument("--threads", action="store_true",
                        help="report thread pools and check oversubscription instead")
    args, rest = parser.parse_known_args(argv)
    if args.ops or args.threads:
        from ember.benchmarks import ops, threads

        return (ops if args.ops else threads).main(rest + (["--quick"] if args.quick else []))
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.quick:
        args.repeats, args.steps = 1, 1
    torch_compile = not args.quick if args.torch_compile is None else args.torch_compile
    memory = not args.quick if args.memory is None else args.memory
    names = [n for n in WORKLOADS if not args.only or n in args.only.split(",")]
    rows = ["ember eager", "ember jit"]
    try:
        import torch

        torch.set_num_threads(2)
        rows += ["torch eager"] + (["torch.compile"] if torch_compile else [])
    except ImportError:
        torch = None
    from ember.benchmarks.threads import summary

    peak = gemm_peak(1024 if args.quick else 2048)
    print(f"float32 GEMM peak of this machine: {peak:.0f} GFLOP/s (at the start; % peak uses "
          f"it); threads: {summary()}")
    print(f"medians of {args.repeats} repeats of {args.steps} steps (batch-1: {3 * args.steps} "
          "calls), rows alternating; torch.compile compiles the model (step eager); "
          "peak MiB: RSS a step adds (fresh process)")
    print(_header(), flush=True)
    for name in names:
        lines = run_workload(name, rows, args.steps, args.repeats,
                             (1 if args.quick else 3) if memory else 0, peak)
        print("\n".join(lines), flush=True)
    end_peak = gemm_peak(1024 if args.quick else 2048)
    print(f"float32 GEMM peak at the end of the run: {end_peak:.0f} GFLOP/s (a shared machine: "
          "if it differs much from the start, the run was disturbed)")
    if torch is None:
        print("(PyTorch not installed: no torch rows)")
    return 0


if __name__ == "__main__":
    main()
