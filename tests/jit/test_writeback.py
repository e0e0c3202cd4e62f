"""In-place updates of captured tensors inside `ember.jit` (BatchNorm running statistics,
optimizer steps) become graph outputs written back into their storage after each run."""
from __future__ import annotations

import numpy as np
import pytest

import ember
import ember.nn.functional as F
from ember import nn, optim
from ember.jit import jit


def _batches(count, seed=1):
    rng = np.random.default_rng(seed)
    return [(ember.asarray(rng.standard_normal((8, 5)).astype(np.float32)),
             ember.asarray(rng.integers(0, 3, 8))) for _ in range(count)]


def _model():
    ember.manual_seed(0)
    # no bias before BatchNorm: its gradient is rounding noise, which Adam would amplify
    return nn.Sequential(nn.Linear(5, 6, bias=False), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))


def _run(make_optimizer, compiled: bool, steps: int):
    model = _model()
    opt = None if make_optimizer is None else make_optimizer(model.parameters())

    def step(x, y):
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        if opt is not None:
            opt.step()
        return loss

    fn = jit(step) if compiled else step
    losses = []
    for x, y in _batches(steps):
        model.zero_grad()
        losses.append(fn(x, y).numpy())
    return model, np.array(losses), fn


def test_batchnorm_running_stats_match_eager():
    eager, eager_losses, _ = _run(None, False, 3)
    model, losses, fn = _run(None, True, 3)
    np.testing.assert_allclose(losses, eager_losses, rtol=1e-5)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        np.testing.assert_allclose(getattr(model[1], name).numpy(),
                                   getattr(eager[1], name).numpy(), rtol=1e-5, atol=1e-7)
    assert int(model[1].num_batches_tracked.item()) == 3
    assert fn.trace_count == 1


@pytest.mark.parametrize("make", [
    lambda p: optim.SGD(p, lr=0.1, momentum=0.9),
    lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda p: optim.Adam(p, lr=0.01),
    lambda p: optim.Adam(p, lr=0.01, amsgrad=True, weight_decay=0.01),
    lambda p: optim.AdamW(p, lr=0.01, weight_decay=0.1),
], ids=["sgd-momentum", "sgd-nesterov-wd", "adam", "adam-amsgrad-l2", "adamw"])
def test_full_training_step_matches_eager(make):
    eager, eager_losses, _ = _run(make, False, 5)
    model, losses, fn = _run(make, True, 5)
    assert fn.trace_count == 1
    np.testing.assert_allclose(losses, eager_losses, rtol=1e-5)
    for (name, p), ref in zip(model.named_parameters(), eager.parameters()):
        np.testing.assert_allclose(p.numpy(), ref.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)
    np.testing.assert_allclose(model[1].running_var.numpy(), eager[1].running_var.numpy(),
                               rtol=1e-5)


def test_captured_update_is_seen_by_later_reads_and_written_back():
    counter = ember.zeros(3)

    def bump(x):
        counter[...] = counter + x
        return counter * 2

    fn = jit(bump)
    for _ in range(2):
        out = fn(ember.ones(3))
    np.testing.assert_array_equal(counter.numpy(), [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(out.numpy(), [4.0, 4.0, 4.0])
    assert fn.trace_count == 1


@pytest.mark.parametrize("make", [lambda p: optim.RMSprop(p, lr=0.01),
                                  lambda p: optim.NAdam(p, lr=0.01)])
def test_unsupported_optimizer_raises_clear_error(make):
    with pytest.raises(ember.EmberError, match="not supported under ember.jit"):
        _run(make, True, 1)


def test_a_tensor_made_and_updated_inside_the_trace_starts_fresh_each_call():
    # A local accumulator is an SSA value, not state: eager starts from zeros on every call.
    def accumulate(x):
        total = ember.zeros(3)
        total += x
        total += x
        return total

    compiled = ember.jit(accumulate)
    for _ in range(3):
        np.testing.assert_array_equal(compiled(ember.ones(3)).numpy(), [2.0, 2.0, 2.0])
    assert compiled.trace_count == 1


@pytest.mark.parametrize("order", ["zero_first", "zero_last"])
def test_grad_after_each_run_matches_eager_wherever_zero_grad_is_called(order):
    """zero_grad() inside the jitted step is replayed: .grad after a run is what eager
    code leaves (this step's gradient, None, or the running sum)."""
    import copy

    ember.manual_seed(0)
    model = ember.nn.Linear(3, 2)
    twin = copy.deepcopy(model)
    x = ember.asarray(np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32))

    def make_step(net):
        optimizer = ember.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)

        def step(x):
            loss = (net(x) ** 2).sum()
            if order == "zero_first":
                optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if order == "zero_last":
                optimizer.zero_grad()
            return loss
        return step

    compiled, eager = ember.jit(make_step(model)), make_step(twin)
    for _ in range(3):
        np.testing.assert_allclose(compiled(x).numpy(), eager(x).numpy(), rtol=1e-6)
        for got, ref in zip(model.parameters(), twin.parameters()):
            assert (got.grad is None) == (ref.grad is None)
            if ref.grad is not None:
                np.testing.assert_allclose(got.grad.numpy(), ref.grad.numpy(), rtol=1e-5)
    assert compiled.trace_count == 1


def test_gradients_a_step_replaces_are_released_before_it_runs(monkeypatch):
    """With zero_grad() first in the step, the previous call's gradients are dropped before
    the graph runs (as eager zero_grad() drops them), so old and new gradients are never
    resident together; a step that accumulates keeps them until it adds to them."""
    import weakref

    from ember.jit.execute import Executable

    seen, watched = [], []
    run = Executable.__call__

    def spy(self, *arrays):
        seen.append([old() for old in watched])
        return run(self, *arrays)

    monkeypatch.setattr(Executable, "__call__", spy)
    model = ember.nn.Linear(3, 2)
    optimizer = ember.optim.SGD(model.parameters(), lr=0.1)
    x = ember.ones((4, 3))

    def step(x):
        optimizer.zero_grad()
        loss = model(x).sum()
        loss.backward()
        optimizer.step()
        return loss

    compiled = ember.jit(step)
    compiled(x)
    watched = [weakref.ref(p.grad._data) for p in model.parameters()]
    compiled(x)
    assert seen[-1] == [None, None]  # the old arrays were gone as the graph started
    assert all(p.grad is not None for p in model.parameters())

    def accumulate(x):
        model(x).sum().backward()
        return x

    summed = ember.jit(accumulate)
    before = [p.grad.numpy().copy() for p in model.parameters()]
    watched = [weakref.ref(p.grad._data) for p in model.parameters()]
    summed(x)
    assert all(array is not None for array in seen[-1])  # kept: the run adds to them
    for p, old in zip(model.parameters(), before):
        np.testing.assert_allclose(p.grad.numpy(), 2 * old, rtol=1e-6)


def test_an_optimizer_step_on_gradients_accumulated_over_calls_is_refused():
    model = ember.nn.Linear(3, 2)
    optimizer = ember.optim.SGD(model.parameters(), lr=0.1)

    def step(x):
        loss = model(x).sum()
        loss.backward()  # no zero_grad: eager would add to the previous call's .grad
        optimizer.step()
        return loss

    compiled = ember.jit(step)
    compiled(ember.ones((2, 3)))  # .grad was None: this call's gradient is the sum
    with pytest.raises(ember.EmberError, match=r"zero_grad\(\) before loss.backward\(\)"):
        compiled(ember.ones((2, 3)))  # now eager would add to the previous .grad
