"""Thread pools of the process (BLAS, OpenMP, Numba, torch) and a check for oversubscription.

ember runs NumPy's BLAS (OpenBLAS) and Numba kernels in one process, and the benchmark puts
torch (its own OpenMP pool) beside them. On a 2-core machine each pool should have 2
threads, and one pool's threads still spinning after its work must not slow the next pool's
kernel. `python bench/run.py --threads` prints the pools and times small kernels of each
pool after an idle pause and right after another pool's work; a ratio well above 1 means
the pools fight over the cores.

>>> "BLAS" in summary()
True
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np


def pools() -> list[dict]:
    """threadpoolctl's view of the native thread pools loaded now ([] without threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return threadpool_info()


def _numba_threads() -> str:
    import numba

    layer = "not started"
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet
        pass
    return f"Numba {numba.config.NUMBA_NUM_THREADS} ({layer})"


def summary() -> str:
    """One line: threads per pool (BLAS, OpenMP, Numba, torch when imported), and cores."""
    import sys

    parts = [f"{p['user_api'].upper() if p['user_api'] == 'blas' else p['internal_api']} "
             f"{p['num_threads']} ({p['internal_api']}, {os.path.basename(p['filepath'])})"
             for p in pools()] or ["BLAS ? (threadpoolctl not installed)"]
    parts.append(_numba_threads())
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        parts.append(f"torch intra-op {torch.get_num_threads()}, "
                     f"inter-op {torch.get_num_interop_threads()}")
    return "; ".join(parts) + f"; {len(os.sched_getaffinity(0))} cores"


def _parallel_kernel():
    import numba

    @numba.njit(parallel=True, cache=False)
    def scale_sum(x):
        total = 0.0
        for i in numba.prange(x.shape[0]):
            total += x[i] * 1.0001
        return total

    return scale_sum


def _median_after(first, second, samples: int) -> float:
    """Median seconds of `second()` called right after `first()`."""
    times = []
    for _ in range(samples):
        first()
        start = time.perf_counter()
        second()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interference(samples: int = 15) -> list[tuple[str, float, float]]:
    """(case, µs after itself, µs after the other) for each pool's small kernel called right
    after another pool's kernel, against the same kernel called back to back (an idle pause
    is no baseline: on a VM, cores idle for a while wake up slowly)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((512, 512)).astype(np.float32)
    x = rng.standard_normal(1 << 20).astype(np.float32)
    kernel = _parallel_kernel()
    kernel(x)  # compile
    kernels = {"numpy GEMM 512": lambda: a @ a, "Numba prange 1M": lambda: kernel(x)}
    try:
        import torch

        torch.set_num_threads(2)
        t = torch.from_numpy(a)
        kernels["torch matmul 512"] = lambda: t @ t
    except ImportError:
        pass
    cases = []
    for name, second in kernels.items():
        idle = _median_after(second, second, samples)
        for other, first in kernels.items():
            if other != name:
                busy = _median_after(first, second, samples)
                cases.append((f"{name} after {other}", idle * 1e6, busy * 1e6))
    return cases


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few samples (smoke run)")
    args = parser.parse_args(argv)
    cases = interference(samples=3 if args.quick else 25)
    print(f"cores available: {len(os.sched_getaffinity(0))}; OS threads in this process: "
          f"{len(os.listdir('/proc/self/task'))}")
    for pool in pools():
        print(f"  {pool['user_api']:<7}{pool['internal_api']:<10}{pool['num_threads']:>3} threads"
              f"  {pool.get('threading_layer', '')}  {pool['filepath']}")
    print("  " + summary())
    print(f"{'kernel':<46}{'alone µs':>10}{'after µs':>10}{'ratio':>8}")
    for case, idle, busy in cases:
        print(f"{case:<46}{idle:>10.0f}{busy:>10.0f}{busy / idle:>7.2f}x")
    print("ratio: the kernel's time right after the other pool's kernel over its time called "
          "back to back (well above 1: the other pool's threads still hold the cores)")
    return 0


if __name__ == "__main__":
    main()
