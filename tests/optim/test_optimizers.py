"""Every optimizer against an independent NumPy reference (tests/optim/reference.py) and,
when PyTorch is installed, against torch.optim: 20 steps on a fixed float64 problem."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import pytest

import ember
from ember import optim
from tests.optim import reference

try:
    import torch
except ImportError:  # PyTorch is an optional reference
    torch = None

RNG = np.random.default_rng(0)
X, Y = RNG.standard_normal((6, 3)), RNG.standard_normal((6, 4))
W0, B0 = 0.5 * RNG.standard_normal((3, 4)), 0.5 * RNG.standard_normal(4)
STEPS = 20


def numpy_grads(w, b):
    """Gradient of 0.5/6 ||X w + b - Y||^2 + 0.3 sum(sin w), by hand."""
    residual = X @ w + b - Y
    return [X.T @ residual / 6 + 0.3 * np.cos(w), residual.sum(0) / 6]


def ember_loss(w, b):
    residual = ember.tensor(X) @ w + b - ember.tensor(Y)
    return (residual * residual).sum() * (0.5 / 6) + 0.3 * ember.sin(w).sum()


@dataclass
class Case:
    name: str
    options: dict = field(default_factory=dict)
    group_lrs: tuple | None = None  # one group per parameter, with these lrs
    in_torch: bool = True

    @property
    def id(self):
        return self.name + "".join(f"-{k}={v}" for k, v in self.options.items()) + (
            f"-groups{self.group_lrs}" if self.group_lrs else "")

    def make(self, params, module=optim):
        if self.group_lrs is None:
            return getattr(module, self.name)(params, **self.options)
        groups = [{"params": [p], "lr": lr} for p, lr in zip(params, self.group_lrs)]
        return getattr(module, self.name)(groups, **self.options)


CASES = [
    Case("SGD", {"lr": 0.1}),
    Case("SGD", {"lr": 0.1, "momentum": 0.9}),
    Case("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.5}),
    Case("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    Case("SGD", {"lr": 0.1, "momentum": 0.5, "weight_decay": 0.1}),
    Case("SGD", {"lr": 0.05, "weight_decay": 0.1, "maximize": True}),
    Case("SGD", {"momentum": 0.9}, group_lrs=(0.1, 0.01)),
    Case("Adam", {"lr": 0.05}),
    Case("Adam", {"lr": 0.05, "amsgrad": True}),
    Case("Adam", {"lr": 0.05, "weight_decay": 0.1}),
    Case("Adam", {"lr": 0.05, "weight_decay": 0.1, "amsgrad": True, "maximize": True}),
    Case("Adam", {"betas": (0.8, 0.9)}, group_lrs=(0.05, 0.2)),
    Case("AdamW", {"lr": 0.05}),
    Case("AdamW", {"lr": 0.05, "weight_decay": 0.2, "amsgrad": True}),
    Case("Adamax", {"lr": 0.05}),
    Case("Adamax", {"lr": 0.05, "weight_decay": 0.1, "maximize": True}),
    Case("NAdam", {"lr": 0.05}),
    Case("NAdam", {"lr": 0.05, "weight_decay": 0.1}),
    Case("NAdam", {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    Case("RAdam", {"lr": 0.05}),
    Case("RAdam", {"lr": 0.05, "weight_decay": 0.1}),
    Case("RAdam", {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    Case("Adagrad", {"lr": 0.1}),
    Case("Adagrad", {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.1,
                     "initial_accumulator_value": 0.1}),
    Case("RMSprop", {"lr": 0.01}),
    Case("RMSprop", {"lr": 0.01, "centered": True, "momentum": 0.9}),
    Case("RMSprop", {"lr": 0.01, "weight_decay": 0.1, "momentum": 0.5, "maximize": True}),
    Case("Adadelta", {}),
    Case("Adadelta", {"lr": 0.5, "rho": 0.8, "weight_decay": 0.1}),
    Case("Lion", {"lr": 0.01}, in_torch=False),
    Case("Lion", {"lr": 0.01, "weight_decay": 0.5, "betas": (0.8, 0.95)}, in_torch=False),
]
REFERENCE_CASES = [pytest.param(case, id=case.id) for case in CASES]
TORCH_CASES = [pytest.param(case, id=case.id) for case in CASES if case.in_torch and torch]


def reference_trajectory(case: Case):
    """Parameters after each step, from the NumPy reference rule."""
    rule = getattr(reference, case.name.lower())
    params, states, lrs = [W0.copy(), B0.copy()], [{}, {}], case.group_lrs or (None, None)
    trajectory = []
    for t in range(1, STEPS + 1):
        grads = numpy_grads(*params)
        for i in range(2):
            options = dict(case.options, **({"lr": lrs[i]} if lrs[i] is not None else {}))
            params[i] = rule(params[i], grads[i], states[i], t, **options)
        trajectory.append([p.copy() for p in params])
    return trajectory


def ember_trajectory(case: Case, dtype="float64", grad_layout=None):
    params = [ember.nn.Parameter(ember.tensor(a, dtype=dtype)) for a in (W0, B0)]
    opt = case.make(params)
    trajectory = []
    for _ in range(STEPS):
        opt.zero_grad()
        ember_loss(*params).backward()
        if grad_layout is not None:
            for p in params:
                p.grad = ember.Tensor(grad_layout(p.grad.numpy()))
        opt.step()
        trajectory.append([p.numpy().copy() for p in params])
    return trajectory, opt, params


@pytest.mark.parametrize("case", REFERENCE_CASES)
def test_matches_numpy_reference(case):
    for step, (ours, expected) in enumerate(zip(ember_trajectory(case)[0],
                                                reference_trajectory(case)), 1):
        for got, want in zip(ours, expected):
            np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9, err_msg=f"step {step}")


@pytest.mark.parametrize("case", [c for c in REFERENCE_CASES if c.values[0].name in
                                  ("Adam", "AdamW")])
def test_generic_rule_matches_reference_on_strided_grads(case):
    # Fortran-ordered (and broadcast) gradients take the xp rule instead of the Numba kernel
    layouts = (np.asfortranarray, lambda g: np.broadcast_to(g, (2, *g.shape))[1])
    for layout in layouts:
        ours = ember_trajectory(case, grad_layout=layout)[0]
        for got, want in zip(ours[-1], reference_trajectory(case)[-1]):
            np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9)


@pytest.mark.torch_reference
@pytest.mark.parametrize("case", TORCH_CASES)
def test_matches_torch(case):
    params = [torch.tensor(a, requires_grad=True) for a in (W0, B0)]
    opt = case.make(params, torch.optim)
    x, y = torch.tensor(X), torch.tensor(Y)
    ours = ember_trajectory(case)[0]
    for step in range(STEPS):
        opt.zero_grad()
        residual = x @ params[0] + params[1] - y
        ((residual * residual).sum() * (0.5 / 6) + 0.3 * torch.sin(params[0]).sum()).backward()
        opt.step()
        for got, want in zip(ours[step], params):
            np.testing.assert_allclose(got, want.detach().numpy(), rtol=1e-7, atol=1e-9,
                                       err_msg=f"step {step + 1}")


# per optimizer, the case with the most options (so every kind of state exists)
RICHEST = [pytest.param(max((c for c in CASES if c.name == name), key=lambda c: len(c.options)),
                        id=name) for name in dict.fromkeys(c.name for c in CASES)]


@pytest.mark.parametrize("case", RICHEST)
def test_float32_params_and_state_stay_float32(case):
    _, opt, params = ember_trajectory(case, dtype="float32")
    for p in params:
        assert p.dtype == ember.float32
        assert opt.state[p], "the optimizer kept no state"
        for key, value in opt.state[p].items():
            assert value.dtype == ember.float32, (key, value.dtype)
    trajectory = ember_trajectory(case, "float32")[0]
    for got, want in zip(trajectory[-1], reference_trajectory(case)[-1]):
        np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("case", RICHEST)
def test_state_dict_round_trip_is_bit_exact(case):
    def train(opt, params, steps):
        for _ in range(steps):
            opt.zero_grad()
            ember_loss(*params).backward()
            opt.step()

    full_params = [ember.nn.Parameter(ember.tensor(a)) for a in (W0, B0)]
    train(case.make(full_params), full_params, 10)

    first_params = [ember.nn.Parameter(ember.tensor(a)) for a in (W0, B0)]
    first = case.make(first_params)
    train(first, first_params, 5)
    live = first.state_dict()  # "save" it: NumPy copies of the state, as a checkpoint holds
    saved = {"param_groups": copy.deepcopy(live["param_groups"]),
             "state": {index: {key: value.numpy().copy() for key, value in entry.items()}
                       for index, entry in live["state"].items()}}
    resumed_params = [ember.nn.Parameter(ember.tensor(p.numpy())) for p in first_params]
    resumed = case.make(resumed_params)
    resumed.load_state_dict(saved)
    train(resumed, resumed_params, 5)
    for got, want in zip(resumed_params, full_params):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    for key, value in saved["state"][0].items():  # loading copied the arrays
        assert resumed.state[resumed_params[0]][key]._data is not value
