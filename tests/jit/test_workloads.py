"""The four BENCH.md workloads train 20 steps eagerly and under `ember.jit` from one seed:
the loss trajectories match (rtol 1e-4), and fusion cuts the number of kernels launched."""
from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.benchmarks.workloads import WORKLOADS

STEPS = 20


def _trainer(name: str, compiled: bool):
    ember.manual_seed(0)
    spec = WORKLOADS[name](ember)
    model = spec["model"]
    optimizer_name, options = spec["optimizer"]
    optimizer = getattr(ember.optim, optimizer_name)(model.parameters(), **options)
    inputs = [ember.asarray(x) for x in spec["inputs"]]
    target = ember.asarray(spec["target"])
    loss_fn = getattr(ember.nn.functional, spec["loss"])

    def step(*inputs):
        loss = loss_fn(model(*inputs), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    run = ember.jit(step) if compiled else step
    model.train()
    return model, run, inputs


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_eager_and_jit_loss_trajectories_match(name):
    trajectories, parameters = [], []
    for compiled in (False, True):
        model, run, inputs = _trainer(name, compiled)
        trajectories.append([float(run(*inputs).numpy()) for _ in range(STEPS)])
        parameters.append([p.numpy().copy() for p in model.parameters()])
        if compiled:
            assert run.trace_count == 1
    eager, jitted = trajectories
    print(f"{name}: loss {eager[0]:.4f} -> {eager[-1]:.4f} eager, "
          f"{jitted[0]:.4f} -> {jitted[-1]:.4f} jit")
    assert eager[-1] < eager[0]  # it trains
    np.testing.assert_allclose(jitted, eager, rtol=1e-4)
    for got, ref in zip(parameters[1], parameters[0]):
        np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_fusion_reduces_the_kernel_count(name):
    _, run, inputs = _trainer(name, True)
    before = len(run.lower(*inputs).nodes)
    after = run.lower(*inputs, fused=True)
    fused = sum(node.prim.name.startswith("fused{") for node in after.nodes)
    print(f"{name}: {before} kernels before fusion, {len(after.nodes)} after "
          f"({fused} fused kernels)")
    assert fused > 0 and len(after.nodes) < before
