"""Each schedule over 100 steps against its formula written here, and against
torch.optim.lr_scheduler when PyTorch is installed."""
from __future__ import annotations

import math
from bisect import bisect_right

import numpy as np
import pytest

import ember
from ember import optim
from ember.optim import lr_scheduler
from ember.optim.optimizer import OptimizerError

try:
    import torch
except ImportError:  # PyTorch is an optional reference
    torch = None

STEPS = 100
LR = 0.5


def cosine(start, end, fraction):
    return end + (start - end) * (1 + math.cos(math.pi * fraction)) / 2


def warm_restarts(t, T_0, T_mult, eta_min):
    period = T_0
    while t >= period:
        t, period = t - period, period * T_mult
    return cosine(LR, eta_min, t / period)


def one_cycle(t, total, pct, strategy, three_phase, low=LR / 25, top=LR, bottom=LR / 25 / 1e4):
    anneal = cosine if strategy == "cos" else (lambda a, b, f: a + (b - a) * f)
    rise = pct * total - 1
    if three_phase:
        phases = [(0, rise, low, top), (rise, 2 * rise, top, low), (2 * rise, total - 1, low,
                                                                    bottom)]
    else:
        phases = [(0, rise, low, top), (rise, total - 1, top, bottom)]
    for start, end, lr_from, lr_to in phases:
        if t <= end or end == total - 1:
            return anneal(lr_from, lr_to, (t - start) / (end - start))


def plateau(metrics, factor, patience, threshold, cooldown, min_lr, mode="min"):
    """ReduceLROnPlateau's rule (relative threshold), simulated epoch by epoch."""
    lr, best, bad, cooling, lrs = LR, math.inf if mode == "min" else -math.inf, 0, 0, []
    for metric in metrics:
        better = (metric < best * (1 - threshold) if mode == "min"
                  else metric > best * (1 + threshold))
        best, bad = (metric, 0) if better else (best, bad + 1)
        if cooling > 0:
            cooling, bad = cooling - 1, 0
        if bad > patience:
            new_lr = max(lr * factor, min_lr)
            lr = new_lr if lr - new_lr > 1e-8 else lr
            cooling, bad = cooldown, 0
        lrs.append(lr)
    return lrs


METRICS = [1.0 / (1 + t // 12) + 0.01 * math.sin(t) for t in range(STEPS)]

# name -> (builder over a module (ember's or torch's lr_scheduler), lr at epoch t)
SCHEDULES = {
    "StepLR": (lambda s, o: s.StepLR(o, step_size=7, gamma=0.5),
               lambda t: LR * 0.5 ** (t // 7)),
    "MultiStepLR": (lambda s, o: s.MultiStepLR(o, milestones=[10, 30, 30, 60], gamma=0.5),
                    lambda t: LR * 0.5 ** bisect_right([10, 30, 30, 60], t)),
    "ExponentialLR": (lambda s, o: s.ExponentialLR(o, gamma=0.95), lambda t: LR * 0.95 ** t),
    "CosineAnnealingLR": (lambda s, o: s.CosineAnnealingLR(o, T_max=30, eta_min=0.01),
                          lambda t: cosine(LR, 0.01, t / 30)),
    "CosineAnnealingWarmRestarts": (
        lambda s, o: s.CosineAnnealingWarmRestarts(o, T_0=10, T_mult=2, eta_min=0.001),
        lambda t: warm_restarts(t, 10, 2, 0.001)),
    "OneCycleLR-cos": (lambda s, o: s.OneCycleLR(o, max_lr=LR, total_steps=STEPS + 1),
                       lambda t: one_cycle(t, STEPS + 1, 0.3, "cos", False)),
    "OneCycleLR-linear-3phase": (
        lambda s, o: s.OneCycleLR(o, max_lr=LR, epochs=10, steps_per_epoch=11,
                                  anneal_strategy="linear", three_phase=True, pct_start=0.25),
        lambda t: one_cycle(t, 110, 0.25, "linear", True)),
    "LinearLR": (lambda s, o: s.LinearLR(o, start_factor=0.25, end_factor=0.75, total_iters=40),
                 lambda t: LR * (0.25 + 0.5 * min(t, 40) / 40)),
    "ConstantLR": (lambda s, o: s.ConstantLR(o, factor=0.5, total_iters=20),
                   lambda t: LR * (0.5 if t < 20 else 1.0)),
    "LambdaLR": (lambda s, o: s.LambdaLR(o, lambda epoch: 1 / (1 + 0.1 * epoch)),
                 lambda t: LR / (1 + 0.1 * t)),
    "MultiplicativeLR": (lambda s, o: s.MultiplicativeLR(o, lambda epoch: 0.98),
                         lambda t: LR * 0.98 ** t),
    "PolynomialLR": (lambda s, o: s.PolynomialLR(o, total_iters=50, power=2.0),
                     lambda t: LR * (1 - min(t, 50) / 50) ** 2),
    "SequentialLR": (
        lambda s, o: s.SequentialLR(o, [s.LinearLR(o, start_factor=0.2, total_iters=5),
                                        s.CosineAnnealingLR(o, T_max=95)], milestones=[5]),
        lambda t: LR * (0.2 + 0.8 * t / 5) if t < 5 else cosine(LR, 0.0, (t - 5) / 95)),
    "ChainedScheduler": (
        lambda s, o: s.ChainedScheduler([s.ExponentialLR(o, gamma=0.99),
                                         s.StepLR(o, step_size=10, gamma=0.5)]),
        lambda t: LR * 0.99 ** t * 0.5 ** (t // 10)),
}
CASES = [pytest.param(name, id=name) for name in SCHEDULES]
TORCH_CASES = [case for case in CASES if torch]


def ember_optimizer(lr=LR, cls=optim.SGD, **options):
    return cls([ember.nn.Parameter(ember.zeros(1))], lr=lr, **options)


def lrs_over(schedule, module, optimizer, steps=STEPS):
    """The lr of the first group at epochs 0..steps, stepping as a training loop does."""
    scheduler = schedule(module, optimizer)
    lrs = [scheduler.get_last_lr()[0]]
    for _ in range(steps):
        optimizer.step()
        scheduler.step()
        lrs.append(scheduler.get_last_lr()[0])
        assert optimizer.param_groups[0]["lr"] == lrs[-1]
    return lrs


@pytest.mark.parametrize("name", CASES)
def test_matches_formula(name):
    schedule, formula = SCHEDULES[name]
    lrs = lrs_over(schedule, lr_scheduler, ember_optimizer())
    np.testing.assert_allclose(lrs, [formula(t) for t in range(STEPS + 1)], rtol=1e-10,
                               atol=1e-15)


@pytest.mark.torch_reference
@pytest.mark.parametrize("name", TORCH_CASES)
def test_matches_torch(name):
    schedule, _ = SCHEDULES[name]
    ours = lrs_over(schedule, lr_scheduler, ember_optimizer())
    weight = torch.zeros(1, requires_grad=True)
    theirs = lrs_over(schedule, torch.optim.lr_scheduler, torch.optim.SGD([weight], lr=LR))
    np.testing.assert_allclose(ours, theirs, rtol=1e-13, atol=1e-16)


@pytest.mark.parametrize("mode, threshold_mode, cooldown, min_lr", [
    ("min", "rel", 0, 0.0), ("min", "abs", 3, 0.01), ("max", "rel", 2, 0.0),
    ("max", "abs", 0, 0.1)])
def test_reduce_on_plateau_matches_rule_and_torch(mode, threshold_mode, cooldown, min_lr):
    metrics = METRICS if mode == "min" else [-m for m in METRICS]
    options = dict(mode=mode, factor=0.5, patience=3, threshold=0.01,
                   threshold_mode=threshold_mode, cooldown=cooldown, min_lr=min_lr)
    opt = ember_optimizer()
    scheduler = lr_scheduler.ReduceLROnPlateau(opt, **options)
    ours = []
    for metric in metrics:
        scheduler.step(ember.tensor(metric))
        ours.append(scheduler.get_last_lr()[0])
    assert ours[-1] < LR
    if threshold_mode == "rel":
        expected = plateau(metrics, 0.5, 3, 0.01, cooldown, min_lr, mode)
        np.testing.assert_allclose(ours, expected, rtol=1e-15)
    if torch:
        theirs_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LR)
        theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(theirs_opt, **options)
        expected = []
        for metric in metrics:
            theirs.step(metric)
            expected.append(theirs.get_last_lr()[0])
        assert ours == expected


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam, optim.AdamW, optim.Adamax, optim.NAdam,
                                 optim.RAdam, optim.Adagrad, optim.RMSprop, optim.Adadelta,
                                 optim.Lion])
def test_works_with_every_optimizer(cls):
    # a zero learning rate from epoch 1 on must freeze the parameters of any optimizer
    weight = ember.nn.Parameter(ember.ones(3))
    opt = cls([weight], lr=0.1, weight_decay=0.1)
    scheduler = lr_scheduler.LambdaLR(opt, lambda epoch: 1.0 if epoch == 0 else 0.0)
    for step in range(3):
        opt.zero_grad()
        (weight * weight).sum().backward()
        before = weight.numpy().copy()
        opt.step()
        scheduler.step()
        moved = not np.array_equal(weight.numpy(), before)
        assert moved == (step == 0), step
    assert opt.param_groups[0]["initial_lr"] == 0.1


@pytest.mark.parametrize("cls, key", [(optim.SGD, "momentum"), (optim.Adam, "betas")])
def test_one_cycle_cycles_momentum_or_beta1(cls, key):
    opt = ember_optimizer(cls=cls, **({"momentum": 0.9} if key == "momentum" else {}))
    scheduler = lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=20, pct_start=0.5,
                                        anneal_strategy="linear", base_momentum=0.8,
                                        max_momentum=0.9)
    momenta = []
    for _ in range(19):
        group = opt.param_groups[0]
        momenta.append(group[key][0] if key == "betas" else group[key])
        opt.step()
        scheduler.step()
    np.testing.assert_allclose(momenta[0], 0.9)
    np.testing.assert_allclose(min(momenta), 0.8)  # lowest where lr peaks
    assert int(np.argmin(momenta)) == 9
    if key == "betas":
        assert opt.param_groups[0]["betas"][1] == 0.999


@pytest.mark.parametrize("name", ["CosineAnnealingWarmRestarts", "SequentialLR", "LambdaLR",
                                  "OneCycleLR-cos", "MultiStepLR"])
def test_state_dict_resume_continues_the_schedule(name):
    schedule, _ = SCHEDULES[name]
    expected = lrs_over(schedule, lr_scheduler, ember_optimizer())
    first_opt = ember_optimizer()
    first = schedule(lr_scheduler, first_opt)
    for _ in range(30):
        first_opt.step()
        first.step()
    opt = ember_optimizer()
    resumed = schedule(lr_scheduler, opt)
    opt.load_state_dict(first_opt.state_dict())
    resumed.load_state_dict(first.state_dict())
    lrs = []
    for _ in range(STEPS - 30):
        opt.step()
        resumed.step()
        lrs.append(resumed.get_last_lr()[0])
    assert lrs == expected[31:]


def test_step_with_an_epoch_uses_the_closed_form():
    opt = ember_optimizer()
    scheduler = lr_scheduler.CosineAnnealingLR(opt, T_max=10)
    scheduler.step(5)
    assert math.isclose(scheduler.get_last_lr()[0], cosine(LR, 0.0, 0.5))


def test_bad_arguments_raise():
    opt = ember_optimizer()
    with pytest.raises(OptimizerError, match="total_steps"):
        lr_scheduler.OneCycleLR(opt, max_lr=1.0)
    with pytest.raises(OptimizerError, match="'cos' or 'linear'"):
        lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=5, anneal_strategy="step")
    with pytest.raises(OptimizerError, match="initial_lr"):
        lr_scheduler.StepLR(ember_optimizer(), step_size=2, last_epoch=3)
    with pytest.raises(OptimizerError, match="factor"):
        lr_scheduler.ReduceLROnPlateau(opt, factor=1.5)
    with pytest.raises(OptimizerError, match="Optimizer"):
        lr_scheduler.StepLR(object(), step_size=2)
    with pytest.raises(OptimizerError, match="milestone"):
        lr_scheduler.SequentialLR(opt, [lr_scheduler.ExponentialLR(opt, 0.9)], milestones=[3])
    scheduler = lr_scheduler.OneCycleLR(ember_optimizer(), max_lr=1.0, total_steps=2)
    scheduler.step()
    scheduler.step()
    with pytest.raises(OptimizerError, match="total_steps is 2"):
        scheduler.step()
