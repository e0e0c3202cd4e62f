"""The `ember` command."""
from __future__ import annotations

import subprocess
import sys

from ember import cli


def test_info_names_versions_blas_threads_and_gpu_status(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    for field in ("ember ", "numpy ", "numba ", "blas ", "cpu cores ", "gpu "):
        assert field in out, field
    gpu = [line for line in out.splitlines() if line.startswith("gpu")][0]
    assert "usable" in gpu  # either "usable (cuda:0)" or "not usable: <reason>"


def test_the_module_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "ember.cli", "info"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0 and "ember " in result.stdout


def test_quickstart_trains_and_reports_accuracy(capsys):
    # Two epochs keep this quick; the README's full run (20 epochs) reaches >= 97%.
    assert cli.main(["quickstart", "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert lines[1].startswith("Epoch 1/2") and lines[2].startswith("Epoch 2/2")
    accuracy = float(lines[-1].split(":")[1])
    assert lines[-1].startswith("test accuracy:") and accuracy > 0.8
