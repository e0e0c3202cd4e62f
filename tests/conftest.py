"""Test-wide settings (the data location is set by the repository's root conftest.py)."""
from __future__ import annotations

import importlib.util

# PyTorch is an optional reference: tests marked `torch_reference` compare against it. Without
# torch they are deselected (not reported as skips), and the summary says so.
_HAS_TORCH = importlib.util.find_spec("torch") is not None


def pytest_collection_modifyitems(config, items):
    if _HAS_TORCH:
        return
    dropped = [item for item in items if item.get_closest_marker("torch_reference")]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if not item.get_closest_marker("torch_reference")]


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _HAS_TORCH:
        terminalreporter.write_line("PyTorch cross-checks (marked torch_reference) were "
                                    "deselected: torch is not installed "
                                    "(pip install torch==2.13.0 to run them)")
