"""The benchmark scripts run (smoke settings; timings are printed, never asserted)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ember.benchmarks import ops, runners
from ember.benchmarks.run import measure

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _run(script, *args):
    result = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_workload_table_prints_every_row_and_the_loss_check():
    out = _run("run.py", "--quick", "--only", "mlp")
    rows = {" ".join(line.split()[1:3]): line.split() for line in out.splitlines()
            if line.startswith("mlp")}
    assert float(rows["ember eager"][3]) > 0  # ms/step
    assert float(rows["ember jit"][3]) > 0
    assert "ember jit vs eager losses: match" in out


def test_jit_losses_equal_eager_losses_step_by_step():
    eager, jitted = runners.ember_eager("mlp"), runners.ember_jit("mlp")
    for _ in range(3):
        eager.step()
        jitted.step()
    assert eager.losses[0] > eager.losses[-1]  # Adam is training
    assert runners.compare_losses(jitted.losses, eager.losses).startswith("match")


def test_a_failing_row_is_reported_and_the_others_still_run():
    class Broken:
        def step(self):
            raise ValueError("cannot trace this")

    class Fine:
        calls = 0

        def step(self):
            self.calls += 1

    failed = {}
    times = measure({"broken": Broken(), "fine": Fine()}, steps=2, repeats=2, what="step",
                    failed=failed)
    assert failed == {"broken": {"step": "ValueError: cannot trace this"}}
    assert set(times) == {"fine"}


def test_compare_losses_flags_a_difference():
    assert runners.compare_losses([1.0, 2.0], [1.0, 2.5]).startswith("DIFFER")


@pytest.mark.parametrize("case", ["dispatch add", "adam update", "layernorm"])
def test_op_microbench_measures_ember(case):
    result = ops.bench_case(case, repeats=1, budget=1e-4)
    forward, backward = result["ember"]
    assert forward > 0
    assert (backward is None) == (case in ("dispatch add", "adam update"))


def test_op_microbench_script_runs():
    out = _run("ops.py", "--quick", "--only", "matmul")
    assert any(line.startswith("matmul") for line in out.splitlines())


def test_layer_bench_runs():
    out = _run("layers.py", "--quick", "--only", "layernorm")
    assert any(line.startswith("layernorm") for line in out.splitlines())


def test_ember_bench_command_and_memory_column(capsys):
    from ember import cli

    assert cli.main(["bench", "--quick", "--only", "mlp", "--memory"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("mlp      ember eager"))
    assert float(row.split()[-1]) >= 0  # peak MiB


def test_thread_summary_names_the_pools():
    from ember.benchmarks.threads import summary

    assert "Numba" in summary()
