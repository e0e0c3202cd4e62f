"""Acceptance: a process saving a large checkpoint in a loop is SIGKILLed at random moments;
after every kill the file at the target name loads and holds exactly one complete save."""
from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time

import numpy as np
import pytest

import ember.io

KILLS = 25
TENSORS = {"conv.weight": (1000, 1000), "fc.weight": (2000, 1500), "fc.bias": (1000,)}  # 20 MB


def _save_forever(path: str, iteration: int):
    """The child: every tensor filled with the iteration number, saved again and again."""
    arrays = {name: np.empty(shape, np.float32) for name, shape in TENSORS.items()}
    while True:
        iteration += 1
        for array in arrays.values():
            array.fill(iteration)
        ember.io.save(arrays, path, metadata={"iteration": iteration})


def _check_complete(path: str) -> int:
    """The iteration the file holds; every tensor must be entirely from that iteration."""
    iteration = ember.io.load_metadata(path)["iteration"]
    loaded = ember.io.load(path)
    assert sorted(loaded) == sorted(TENSORS)
    for name, tensor in loaded.items():
        assert tensor.shape == TENSORS[name]
        assert np.all(tensor.numpy() == iteration), f"{name} mixes iterations"
    return iteration


@pytest.mark.skipif(not hasattr(signal, "SIGKILL") or "fork" not in
                    multiprocessing.get_all_start_methods(), reason="needs SIGKILL and fork")
def test_sigkill_mid_save_leaves_a_complete_checkpoint(tmp_path):
    # A forked child starts in milliseconds (a fresh interpreter importing ember takes about a
    # second), so 25 kills fit in a few seconds; it is still a separate process that dies
    # by SIGKILL, with no chance to clean up.
    context = multiprocessing.get_context("fork")
    path = str(tmp_path / "checkpoint.safetensors")
    chooser = random.Random(5)
    last, kills_mid_write, iterations = 0, 0, []
    deadline = time.monotonic() + 60
    for _ in range(KILLS):
        child = context.Process(target=_save_forever, args=(path, last), daemon=True)
        child.start()
        time.sleep(chooser.uniform(0.05, 0.5))
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        assert child.exitcode == -signal.SIGKILL
        leftovers = [name for name in os.listdir(tmp_path) if name != "checkpoint.safetensors"]
        # A kill during a write leaves only a hidden temporary file, never the target name.
        assert all(name.startswith(".checkpoint.safetensors.") and name.endswith(".tmp")
                   for name in leftovers)
        kills_mid_write += bool(leftovers)
        for name in leftovers:
            os.remove(tmp_path / name)
        if os.path.exists(path):
            iteration = _check_complete(path)
            assert iteration >= last  # never an older checkpoint than one already seen
            last = iteration
            iterations.append(iteration)
        assert time.monotonic() < deadline
    assert len(iterations) >= KILLS // 2 and last > KILLS // 2  # the saves made progress
    assert kills_mid_write >= 1  # and kills did land in the middle of writes
