"""The BENCH.md yardstick: the four training workloads and batch-1 inference, ember vs PyTorch,
side by side in one run.

For each workload every framework trains the same model on the same batch; frameworks
alternate inside each repeat and the median over repeats is reported as ms/step, samples/s,
the ratio to the best PyTorch figure, and the achieved GFLOP/s of the training step (model
FLOPs x 3) as a share of this machine's measured float32 GEMM peak.

    python bench/run.py                  # full table (a few minutes on 2 cores); or `ember bench`
    python bench/run.py --quick          # smoke run: one short repeat
    python bench/run.py --only mlp,cnn --torch-compile --memory

Rows: ember eager (ember's compiled `jit` rows arrive with the compiler), PyTorch eager and,
with --torch-compile, torch.compile (its compile time is excluded, its warm-up is long).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import numpy as np

from ember.benchmarks.workloads import WORKLOADS


def gemm_peak(size=2048, repeats=3) -> float:
    """float32 GEMM GFLOP/s of NumPy's BLAS on this machine (the physical yardstick)."""
    a = np.random.default_rng(0).standard_normal((size, size)).astype(np.float32)
    a @ a
    best = min(_seconds(lambda: a @ a) for _ in range(repeats))
    return 2 * size ** 3 / best / 1e9


def _seconds(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def _runner(fw, name, to_tensor, wrap=None):
    """(spec, train step, batch-1 inference) of workload `name` in framework `fw` (ember and
    torch share these names: manual_seed, optim, nn.functional, no_grad)."""
    fw.manual_seed(0)
    spec = WORKLOADS[name](fw)
    model = spec["model"]
    optimizer_name, options = spec["optimizer"]
    optimizer = getattr(fw.optim, optimizer_name)(model.parameters(), **options)
    inputs = [to_tensor(x) for x in spec["inputs"]]
    infer_inputs = [to_tensor(x) for x in spec["infer_inputs"]]
    target = to_tensor(spec["target"])
    loss_fn = getattr(fw.nn.functional, spec["loss"])
    forward = wrap(model) if wrap is not None else model

    def step():
        model.train()
        loss = loss_fn(forward(*inputs), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    def infer():
        model.eval()
        with fw.no_grad():
            return forward(*infer_inputs)

    return spec, step, infer


def ember_runner(name):
    import ember

    return _runner(ember, name, ember.asarray)


def torch_runner(name, compiled=False):
    import torch

    return _runner(torch, name, lambda x: torch.from_numpy(np.ascontiguousarray(x)),
                   torch.compile if compiled else None)


def peak_memory(name: str, framework: str, steps: int = 3) -> float:
    """Peak resident memory (MiB) of a training step above the process's resident memory
    between steps, measured in a fresh process after a warm-up step (so compilers and caches
    are not counted)."""
    code = f"from ember.benchmarks.run import _memory_child; _memory_child({name!r}, " \
           f"{framework!r}, {steps})"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=600)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-1000:])
    return float(result.stdout.strip().splitlines()[-1])


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"/proc/self/status has no {field}")


def _memory_child(name: str, framework: str, steps: int):
    if framework == "torch":
        import torch

        torch.set_num_threads(2)
        _, step, _ = torch_runner(name)
    else:
        _, step, _ = ember_runner(name)
    step()  # warm-up: Numba/oneDNN compiles, optimizer state, allocator pools
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # reset the peak (VmHWM) to the current resident size
    baseline = _status_mib("VmRSS")
    for _ in range(steps):
        step()
    print(f"{max(_status_mib('VmHWM') - baseline, 0.0):.1f}")


def measure(runners: dict, steps: int, repeats: int, what: str) -> dict:
    """Median seconds per call of each runner's `what` ('step' or 'infer'), alternating."""
    for runner in runners.values():
        runner[what]()
        runner[what]()  # warm-up: caches, Numba compiles, allocator
    times = {key: [] for key in runners}
    for _ in range(repeats):
        for key, runner in runners.items():
            start = time.perf_counter()
            for _ in range(steps):
                runner[what]()
            times[key].append((time.perf_counter() - start) / steps)
    return {key: statistics.median(values) for key, values in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated workloads")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5, help="training steps per repeat")
    parser.add_argument("--torch-compile", action="store_true")
    parser.add_argument("--quick", action="store_true", help="one short repeat (smoke run)")
    parser.add_argument("--memory", action="store_true",
                        help="also measure each training step's peak memory (fresh processes)")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.steps = 1, 1
    names = [n for n in WORKLOADS if not args.only or n in args.only.split(",")]
    try:
        import torch

        torch.set_num_threads(2)
    except ImportError:
        torch = None
    peak = gemm_peak(1024 if args.quick else 2048)
    print(f"float32 GEMM peak of this machine: {peak:.0f} GFLOP/s")
    print(f"{'workload':<9}{'framework':<16}{'ms/step':>10}{'samples/s':>11}{'vs best torch':>15}"
          f"{'GFLOP/s':>9}{'% peak':>8}{'batch-1 µs':>12}")
    for name in names:
        runners = {"ember eager": dict(zip(("spec", "step", "infer"), ember_runner(name)))}
        if torch is not None:
            runners["torch eager"] = dict(zip(("spec", "step", "infer"), torch_runner(name)))
            if args.torch_compile:
                runners["torch.compile"] = dict(zip(("spec", "step", "infer"),
                                                    torch_runner(name, compiled=True)))
        train = measure(runners, args.steps, args.repeats, "step")
        infer = measure(runners, 3 * args.steps, args.repeats, "infer")
        spec = runners["ember eager"]["spec"]
        batch = len(spec["target"])
        best_torch = min((v for k, v in train.items() if k.startswith("torch")), default=None)
        for key, seconds in train.items():
            gflops = 3 * spec["flops"] / seconds / 1e9
            ratio = f"{seconds / best_torch:.2f}x" if best_torch else "-"
            print(f"{name:<9}{key:<16}{seconds * 1e3:>10.1f}{batch / seconds:>11.0f}"
                  f"{ratio:>15}{gflops:>9.1f}{100 * gflops / peak:>7.0f}%"
                  f"{infer[key] * 1e6:>12.0f}", flush=True)
        if args.memory:
            frameworks = ["ember"] + (["torch"] if torch is not None else [])
            peaks = {fw: peak_memory(name, fw, 1 if args.quick else 3) for fw in frameworks}
            print(f"{'':<9}peak step memory (MiB above resident memory between steps): "
                  + ", ".join(f"{fw} {value:.0f}" for fw, value in peaks.items()), flush=True)


if __name__ == "__main__":
    main()
