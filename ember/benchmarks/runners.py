"""Runners of the BENCH.md workloads: one training step and one batch-1 inference per framework.

The rows of the table, each a `Runner` built fresh from the same seed, model, batch and
optimizer (so their losses can be compared step by step):

* ``ember eager``   the step as users write it: forward, loss, zero_grad, backward, step.
* ``ember jit``     the same step jitted whole: ``ember.jit(step)`` traces forward, loss,
  zero_grad, backward and the optimizer update into one graph; ``model.train()`` is called
  outside it. Batch-1 inference is the eval forward jitted and called under ``no_grad``.
* ``torch eager``   PyTorch's step, written the same way.
* ``torch.compile`` the model compiled (``torch.compile(model, dynamic=False)``, as PyTorch
  users usually do); the loss, backward and optimizer step stay eager. Its first call (the
  compile) is excluded from the timings, like ember jit's trace.

>>> runner = RUNNERS["ember eager"]("mlp")
>>> loss = runner.step()
>>> runner.losses[0] > 0 and runner.batch == 128
True
"""
from __future__ import annotations

import numpy as np

from ember.benchmarks.workloads import WORKLOADS


class Runner:
    """A workload in one framework: `step()` trains one batch (its loss is appended to
    `losses`), `infer()` runs batch-1 inference; `spec` is the workload's description."""

    def __init__(self, spec, step, infer):
        self.spec, self._step, self._infer = spec, step, infer
        self.batch = len(spec["target"])
        self.losses: list[float] = []

    def step(self):
        loss = self._step()
        self.losses.append(float(loss.detach()))
        return loss

    def infer(self):
        return self._infer()


def _parts(fw, name, to_tensor):
    """The workload built in framework `fw` (ember and torch share these names: manual_seed,
    optim, nn.functional, no_grad)."""
    fw.manual_seed(0)
    spec = WORKLOADS[name](fw)
    model = spec["model"]
    optimizer_name, options = spec["optimizer"]
    optimizer = getattr(fw.optim, optimizer_name)(model.parameters(), **options)
    inputs = [to_tensor(x) for x in spec["inputs"]]
    infer_inputs = [to_tensor(x) for x in spec["infer_inputs"]]
    target = to_tensor(spec["target"])
    loss_fn = getattr(fw.nn.functional, spec["loss"])
    return spec, model, optimizer, inputs, infer_inputs, target, loss_fn


def _eager(fw, name, to_tensor, compile_model=None):
    spec, model, optimizer, inputs, infer_inputs, target, loss_fn = _parts(fw, name, to_tensor)
    forward = compile_model(model) if compile_model is not None else model

    def step():
        model.train()
        loss = loss_fn(forward(*inputs), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    def infer():
        model.eval()
        with fw.no_grad():
            return forward(*infer_inputs)

    return Runner(spec, step, infer)


def ember_eager(name: str) -> Runner:
    import ember

    return _eager(ember, name, ember.asarray)


def ember_jit(name: str) -> Runner:
    import ember

    spec, model, optimizer, inputs, infer_inputs, target, loss_fn = _parts(
        ember, name, ember.asarray)

    def train_step(*batch):
        loss = loss_fn(model(*batch[:-1]), batch[-1])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    jitted_step = ember.jit(train_step)
    jitted_forward = ember.jit(lambda *batch: model(*batch))

    def step():
        model.train()  # outside the trace: the module modes are part of jit's signature
        return jitted_step(*inputs, target)

    def infer():
        model.eval()
        with ember.no_grad():
            return jitted_forward(*infer_inputs)

    return Runner(spec, step, infer)


def _torch_tensor(x):
    import torch

    return torch.from_numpy(np.ascontiguousarray(x))


def torch_eager(name: str) -> Runner:
    import torch

    return _eager(torch, name, _torch_tensor)


def torch_compiled(name: str) -> Runner:
    import torch

    # dynamic=False: batch 128 (training) and batch 1 (inference) each get a static graph,
    # instead of one dynamic-shape graph after the second shape is seen.
    return _eager(torch, name, _torch_tensor,
                  lambda model: torch.compile(model, dynamic=False))


RUNNERS = {"ember eager": ember_eager, "ember jit": ember_jit, "torch eager": torch_eager,
           "torch.compile": torch_compiled}


def compare_losses(a: list[float], b: list[float], rtol: float = 1e-3) -> str:
    """How two runners' loss sequences agree, as a phrase for the table's footnote.

    >>> compare_losses([2.0, 1.5], [2.0, 1.5000001])
    'match over 2 steps (max rel diff 7e-08)'
    """
    count = min(len(a), len(b))
    if count == 0:
        return "no steps to compare"
    x, y = np.asarray(a[:count]), np.asarray(b[:count])
    diff = float(np.max(np.abs(x - y) / np.maximum(np.abs(y), 1e-12)))
    verdict = "match" if diff <= rtol else f"DIFFER (rtol {rtol:g})"
    return f"{verdict} over {count} steps (max rel diff {diff:.0e})"
