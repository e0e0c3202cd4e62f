"""The Optimizer base class: groups, zero_grad, closures, state dicts, errors; and the Numba
Adam kernel against the generic rule it stands in for."""
from __future__ import annotations

import numpy as np
import pytest

import ember
from ember import optim
from ember.optim.adam import adam_update, adam_update_numba
from ember.optim.optimizer import OptimizerError

try:
    import torch
except ImportError:  # PyTorch is an optional reference
    torch = None


def params(*shapes):
    return [ember.nn.Parameter(ember.ones(shape)) for shape in shapes]


def backward_sum_of_squares(tensors):
    sum(((p * p).sum() for p in tensors), ember.zeros(())).backward()


@pytest.mark.parametrize("amsgrad, maximize, weight_decay, decoupled", [
    (False, False, 0.0, False), (True, True, 0.0, False), (False, False, 0.1, False),
    (True, False, 0.1, True)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numba_adam_kernel_is_bit_identical_to_generic_rule(amsgrad, maximize, weight_decay,
                                                            decoupled, dtype):
    rng = np.random.default_rng(1)
    start = rng.standard_normal((4, 33)).astype(dtype)
    generic = [start.copy()] + [np.zeros_like(start) for _ in range(3)]
    kernel = [start.copy()] + [np.zeros_like(start) for _ in range(3)]
    hyper = dict(lr=0.01, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=weight_decay)
    for step in range(1, 6):
        grad = rng.standard_normal(start.shape).astype(dtype)
        param, exp_avg, exp_avg_sq, max_exp_avg_sq = generic
        adam_update(np, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step=float(step),
                    amsgrad=amsgrad, maximize=maximize, decoupled_weight_decay=decoupled,
                    **hyper)
        adam_update_numba(*kernel[:1], grad, *kernel[1:], float(step), *hyper.values(),
                          amsgrad, maximize, decoupled)
    for ours, expected in zip(kernel, generic):
        assert ours.dtype == dtype
        np.testing.assert_array_equal(ours, expected)


def test_zero_grad_sets_none_or_zeros():
    w, b = params(3, 2)
    opt = optim.SGD([w, b], lr=0.1)
    backward_sum_of_squares([w, b])
    grad = w.grad
    opt.zero_grad(set_to_none=False)
    assert w.grad is grad and not w.grad.numpy().any() and not b.grad.numpy().any()
    opt.zero_grad()
    assert w.grad is None and b.grad is None


def test_parameters_without_grad_are_skipped_and_get_no_state():
    w, frozen = params(3, 3)
    opt = optim.Adam([w, frozen], lr=0.1)
    backward_sum_of_squares([w])
    opt.step()
    assert not np.allclose(w.numpy(), 1.0)
    np.testing.assert_array_equal(frozen.numpy(), np.ones(3))
    assert frozen not in opt.state and set(opt.state[w]) == {"step", "exp_avg", "exp_avg_sq"}


def test_closure_runs_with_grad_enabled_and_its_loss_is_returned():
    (w,) = params(2)
    opt = optim.SGD([w], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    with ember.no_grad():
        loss = opt.step(closure)
    assert loss.item() == 2.0
    np.testing.assert_allclose(w.numpy(), [0.5, 0.5])


def test_groups_take_missing_options_from_defaults():
    w, b, extra = params(2, 2, 2)
    opt = optim.SGD([{"params": [w]}, {"params": b, "lr": 0.5}], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": [extra], "momentum": 0.0})
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5, 0.1]
    assert [g["momentum"] for g in opt.param_groups] == [0.9, 0.9, 0.0]
    assert opt.param_groups[1]["params"][0] is b


def test_named_parameters_are_accepted_and_saved():
    layer = ember.nn.Linear(2, 1)
    opt = optim.Adam(layer.named_parameters())
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["weight", "bias"]


def test_adagrad_state_exists_before_the_first_step():
    (w,) = params(2)
    opt = optim.Adagrad([w], initial_accumulator_value=0.5)
    state = opt.state_dict()["state"][0]
    np.testing.assert_array_equal(state["sum"].numpy(), [0.5, 0.5])
    assert state["step"].item() == 0


def test_state_dict_layout_is_pytorchs():
    w, b = params(2, 3)
    opt = optim.SGD([{"params": [w]}, {"params": [b], "lr": 0.5}], lr=0.1, momentum=0.9)
    backward_sum_of_squares([w, b])
    opt.step()
    saved = opt.state_dict()
    assert [g["params"] for g in saved["param_groups"]] == [[0], [1]]
    assert saved["param_groups"][1]["lr"] == 0.5
    assert set(saved["state"]) == {0, 1}
    assert isinstance(saved["state"][1]["momentum_buffer"], ember.Tensor)
    assert saved["state"][1]["momentum_buffer"].shape == (3,)


def test_load_state_dict_casts_to_the_parameter_dtype():
    (w,) = params(2)
    source = optim.Adam([ember.nn.Parameter(ember.ones(2, dtype=ember.float64))])
    backward_sum_of_squares(source.param_groups[0]["params"])
    source.step()
    opt = optim.Adam([w])
    opt.load_state_dict(source.state_dict())
    assert opt.state[w]["exp_avg"].dtype == ember.float32
    assert opt.state[w]["step"].item() == 1


@pytest.mark.parametrize("make, message", [
    (lambda p: optim.SGD(p, lr=-0.1), "-0.1"),
    (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "Nesterov"),
    (lambda p: optim.Adam(p, betas=(1.0, 0.999)), "beta parameter at index 0"),
    (lambda p: optim.Adam(p, betas=(0.9, -0.5)), "-0.5"),
    (lambda p: optim.AdamW(p, eps=-1e-8), "epsilon"),
    (lambda p: optim.RMSprop(p, alpha=-1.0), "alpha"),
    (lambda p: optim.Adadelta(p, rho=1.5), "rho"),
    (lambda p: optim.Adagrad(p, lr_decay=-1.0), "lr_decay"),
    (lambda p: optim.NAdam(p, momentum_decay=-1.0), "momentum_decay"),
    (lambda p: optim.Lion(p, weight_decay=-1.0), "weight_decay"),
    (lambda p: optim.SGD([{"params": p, "lr": -2.0}]), "-2.0"),
])
def test_bad_hyper_parameters_raise_naming_the_value(make, message):
    with pytest.raises(OptimizerError, match=message.replace("(", r"\(")):
        make(params(2))


def test_bad_parameter_lists_raise():
    w, b = params(2, 2)
    with pytest.raises(OptimizerError, match="twice"):
        optim.SGD([w, w])
    with pytest.raises(OptimizerError, match="more than one parameter group"):
        optim.SGD([{"params": [w]}, {"params": [w, b]}])
    with pytest.raises(OptimizerError, match="empty"):
        optim.Adam([])
    with pytest.raises(OptimizerError, match="set"):
        optim.Adam({w, b})
    with pytest.raises(OptimizerError, match="leaf"):
        optim.Adam([w * 2])
    with pytest.raises(OptimizerError, match="Tensors"):
        optim.Adam([np.ones(2)])
    with pytest.raises(ember.DTypeError, match="int64"):
        optim.Adam([ember.tensor([1, 2])])


def test_load_state_dict_mismatch_raises():
    w, b = params(2, 3)
    opt = optim.Adam([w, b])
    backward_sum_of_squares([w, b])
    opt.step()
    saved = opt.state_dict()
    with pytest.raises(OptimizerError, match=r"has 1 parameter group\(s\), this optimizer has 2"):
        optim.Adam([{"params": [w]}, {"params": [b]}]).load_state_dict(saved)
    with pytest.raises(OptimizerError, match="group 0 holds 2"):
        optim.Adam([w]).load_state_dict(saved)
    with pytest.raises(OptimizerError, match=r"shape \(3,\), the parameter has shape \(2,\)"):
        optim.Adam(params(2, 2)).load_state_dict(saved)
    with pytest.raises(OptimizerError, match="'state' and 'param_groups'"):
        optim.Adam([w, b]).load_state_dict({"state": {}})


@pytest.mark.torch_reference
def test_loads_a_pytorch_state_dict_and_continues_like_pytorch():
    start = np.linspace(-1, 1, 6)
    reference = torch.tensor(start, requires_grad=True)
    torch_opt = torch.optim.Adam([reference], lr=0.1, amsgrad=True)
    for _ in range(3):
        torch_opt.zero_grad()
        (reference ** 4).sum().backward()
        torch_opt.step()
    w = ember.nn.Parameter(ember.tensor(reference.detach().numpy().copy()))
    opt = optim.Adam([w], lr=0.1, amsgrad=True)
    opt.load_state_dict(torch_opt.state_dict())
    for _ in range(3):
        torch_opt.zero_grad()
        (reference ** 4).sum().backward()
        torch_opt.step()
        opt.zero_grad()
        (w ** 4).sum().backward()
        opt.step()
    np.testing.assert_allclose(w.numpy(), reference.detach().numpy(), rtol=1e-12)
