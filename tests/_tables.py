"""What the op table and the layer table share: gathering their rows from `table_*.py`."""
from __future__ import annotations

import importlib
import pkgutil


def collect_table_rows(package_name: str) -> list:
    """Every `ROWS` entry of every `table_*.py` module in `package_name`, modules in name
    order (imported on demand, so a table module can import its spec module without a
    cycle)."""
    package = importlib.import_module(package_name)
    rows = []
    for module in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if module.name.startswith("table_"):
            rows.extend(importlib.import_module(f"{package_name}.{module.name}").ROWS)
    return rows
