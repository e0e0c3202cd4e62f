"""ember/_core/allocator.py: glibc keeps freed array memory mapped, so a step that frees and
reallocates the same arrays does not page-fault them in again."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ember._core import allocator

pytestmark = pytest.mark.skipif(allocator._glibc() is None, reason="glibc's malloc only")

# Ten 4 MiB arrays (a step's temporaries) written, then freed together, five times over;
# prints the minor page faults of the last four rounds.
_ROUNDS = """
import resource, numpy as np, ember
def round_():
    arrays = [np.empty(1 << 20, np.float32) for _ in range(10)]
    for a in arrays:
        a[:] = 1.0
for _ in range(1):
    round_()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    round_()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before,
      ember._core.allocator.TUNED)
"""


def _faults(**env) -> tuple[int, str]:
    result = subprocess.run([sys.executable, "-c", _ROUNDS], capture_output=True, text=True,
                            env=dict(os.environ, **env), timeout=120, check=True)
    faults, tuned = result.stdout.split()
    return int(faults), tuned


def test_freed_arrays_are_reused_without_page_faults():
    tuned, flag = _faults()
    system, system_flag = _faults(EMBER_MALLOC="system")
    assert (flag, system_flag) == ("True", "False")
    pages = 4 * 10 * (4 << 20) // 4096  # the pages of four rounds
    assert tuned < pages // 10  # memory from the earlier rounds, already mapped
    assert system > pages // 4  # glibc's defaults trim the freed 40 MiB and fault it back


def test_a_bad_setting_is_an_ember_error(monkeypatch):
    monkeypatch.setenv("EMBER_MALLOC_KEEP_MB", "lots")
    with pytest.raises(allocator.EmberError, match="EMBER_MALLOC_KEEP_MB.*'lots'"):
        allocator.tune()
