"""Peak memory of a training step, measured in a fresh process per (workload, framework row).

The figure is the resident memory (RSS) a training step adds above the process's resident
memory between steps: the child builds the workload, runs one warm-up step (jit traces,
Numba and oneDNN compiles, optimizer state, allocator pools are then resident and not
counted), resets the kernel's high-water mark, runs a few steps and reports VmHWM minus
the RSS before them. Imports (torch alone is hundreds of MiB) do not enter the figure. The
child runs with glibc's malloc defaults (`EMBER_MALLOC=system`), so the figure is the memory
the step's arrays need, not what the allocator keeps mapped between steps.
"""
from __future__ import annotations

import os
import subprocess
import sys


def peak_memory(name: str, row: str, steps: int = 3, threads: int = 2) -> float:
    """Peak MiB a training step of workload `name` adds in runner `row` ("ember eager",
    "ember jit", "torch eager"); raises RuntimeError with the child's last error line."""
    code = ("from ember.benchmarks.memory import _child; "
            f"_child({name!r}, {row!r}, {steps}, {threads})")
    # glibc's defaults: ember keeps freed heap mapped (ember/_core/allocator.py), which would
    # fold the step's temporaries into the between-steps level and hide them.
    env = dict(os.environ, EMBER_MALLOC="system")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=600, env=env)
    if result.returncode != 0:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        raise RuntimeError(lines[-1] if lines else f"exit status {result.returncode}")
    return float(result.stdout.strip().splitlines()[-1])


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"/proc/self/status has no {field}")


def _child(name: str, row: str, steps: int, threads: int):
    from ember.benchmarks.runners import RUNNERS

    if row.startswith("torch"):
        import torch

        torch.set_num_threads(threads)
    runner = RUNNERS[row](name)
    runner.step()  # warm-up (see the module docstring)
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # reset the peak (VmHWM) to the current resident size
    baseline = _status_mib("VmRSS")
    for _ in range(steps):
        runner.step()
    print(f"{max(_status_mib('VmHWM') - baseline, 0.0):.1f}")
