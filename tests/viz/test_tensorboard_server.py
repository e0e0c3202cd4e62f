"""The real TensorBoard server reads what SummaryWriter wrote and serves it over HTTP."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

pytest.importorskip("tensorboard")

from ember.viz import SummaryWriter  # noqa: E402

_STARTUP_SECONDS = 60


def _wait_for_address(process, log_path) -> str:
    """The server's base URL, read from its log ('TensorBoard 2.x at http://...')."""
    deadline = time.monotonic() + _STARTUP_SECONDS
    while time.monotonic() < deadline:
        match = re.search(r"http://127\.0\.0\.1:\d+", log_path.read_text(errors="replace"))
        if match:
            return match.group(0)
        if process.poll() is not None:
            pytest.fail(f"tensorboard exited with {process.returncode}:\n{log_path.read_text()}")
        time.sleep(0.2)
    pytest.fail(f"tensorboard did not start in {_STARTUP_SECONDS} s:\n{log_path.read_text()}")


def _get_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _poll(url: str, ready):
    """GET `url` until `ready(answer)` (the server loads event files in the background)."""
    deadline = time.monotonic() + _STARTUP_SECONDS
    answer = None
    while time.monotonic() < deadline:
        try:
            answer = _get_json(url)
            if ready(answer):
                return answer
        except (urllib.error.URLError, ConnectionError, json.JSONDecodeError):
            pass
        time.sleep(0.25)
    pytest.fail(f"{url} did not answer as expected in {_STARTUP_SECONDS} s; last: {answer}")


def test_server_returns_the_logged_scalars(tmp_path):
    logs = tmp_path / "logs"
    losses = [2.0, 1.25, 0.5, 0.375, 0.125]
    with SummaryWriter(logs / "run1") as writer:
        for step, loss in enumerate(losses):
            writer.add_scalar("loss", loss, step * 100)
    server_log = tmp_path / "tensorboard.log"
    with open(server_log, "wb") as log_file:
        # Port 0: the server picks a free port and prints it; --load_fast=false keeps the
        # pure-Python data path (no Rust data server binary).
        process = subprocess.Popen(
            [sys.executable, "-m", "tensorboard.main", "--logdir", str(logs), "--host",
             "127.0.0.1", "--port", "0", "--load_fast=false", "--reload_interval", "1"],
            stdout=log_file, stderr=subprocess.STDOUT)
    try:
        base = _wait_for_address(process, server_log)
        runs = _poll(f"{base}/data/runs", lambda runs: "run1" in runs)
        assert runs == ["run1"]
        tags = _poll(f"{base}/data/plugin/scalars/tags", lambda tags: "run1" in tags)
        assert list(tags["run1"]) == ["loss"]
        query = urllib.parse.urlencode({"run": "run1", "tag": "loss"})
        series = _poll(f"{base}/data/plugin/scalars/scalars?{query}",
                       lambda series: len(series) == len(losses))
        # Each point is [wall_time, step, value].
        assert [point[1] for point in series] == [0, 100, 200, 300, 400]
        assert [point[2] for point in series] == losses  # exact in float32
    finally:
        process.kill()
        process.wait(timeout=30)
