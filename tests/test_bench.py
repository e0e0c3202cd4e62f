"""The benchmark scripts run (smoke settings; timings are printed, never asserted)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _run(script, *args):
    result = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_workload_table_prints_every_requested_row():
    out = _run("run.py", "--quick", "--only", "mlp")
    rows = [line for line in out.splitlines() if line.startswith("mlp")]
    assert rows and rows[0].split()[1:3] == ["ember", "eager"]
    assert float(rows[0].split()[3]) > 0  # ms/step


def test_layer_bench_runs():
    out = _run("layers.py", "--quick", "--only", "layernorm")
    assert any(line.startswith("layernorm") for line in out.splitlines())


def test_ember_bench_command_and_memory_column(capsys):
    from ember import cli

    assert cli.main(["bench", "--quick", "--only", "mlp", "--memory"]) == 0
    out = capsys.readouterr().out
    memory = [line for line in out.splitlines() if "peak step memory" in line]
    assert memory and "ember" in memory[0]
