"""Settings for every pytest run (tests and doctests): datasets come from ../shared/data,
never from the network."""
from __future__ import annotations

import os
from pathlib import Path

_SHARED_DATA = Path(__file__).resolve().parents[1] / "shared" / "data"
if "EMBER_DATA" not in os.environ and _SHARED_DATA.is_dir():
    os.environ["EMBER_DATA"] = str(_SHARED_DATA)
