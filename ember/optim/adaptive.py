"""Per-coordinate adaptive learning rates, as in `torch.optim`: Adagrad, RMSprop, Adadelta.

Each rule is one function over raw arrays (`xp` is numpy or cupy) that updates the
parameter and its state in place, with one scratch array per call.
"""
from __future__ import annotations

from ember.optim.optimizer import (
    Optimizer,
    advance,
    check_range,
    l2_gradient,
    new_state_array,
    new_step_count,
)


# ---- Adagrad ------------------------------------------------------------------------------------
def adagrad_update(xp, param, grad, state_sum, *, step: float, lr: float, lr_decay: float,
                   weight_decay: float, eps: float, maximize: bool):
    """One Adagrad step in place: divide by the root of the summed squared gradients.

    >>> import numpy as np
    >>> p, total = np.ones(1), np.zeros(1)
    >>> adagrad_update(np, p, np.array([2.0]), total, step=1.0, lr=0.1, lr_decay=0.0,
    ...                weight_decay=0.0, eps=0.0, maximize=False)
    >>> p, total
    (array([0.9]), array([4.]))
    """
    grad = l2_gradient(xp, param, grad, weight_decay, maximize)
    scratch = xp.multiply(grad, grad)
    state_sum += scratch
    xp.sqrt(state_sum, out=scratch)
    scratch += eps
    xp.divide(grad, scratch, out=scratch)
    scratch *= lr / (1 + (step - 1) * lr_decay)
    param -= scratch


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.), with `lr_decay`, L2 `weight_decay` and
    `initial_accumulator_value`, as `torch.optim.Adagrad`.

    >>> import ember
    >>> w = ember.nn.Parameter(ember.tensor([1.0]))
    >>> opt = ember.optim.Adagrad([w], lr=0.1)
    >>> (w * w).sum().backward(); opt.step()
    >>> round(w.item(), 6)
    0.9
    """

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10, *,
                 maximize: bool = False):
        defaults = {"lr": lr, "lr_decay": lr_decay, "weight_decay": weight_decay,
                    "initial_accumulator_value": initial_accumulator_value, "eps": eps,
                    "maximize": maximize}
        super().__init__(params, defaults)
        # PyTorch creates Adagrad's state up front, so a fresh state dict already holds it
        for group in self.param_groups:
            for param in group["params"]:
                self._init_state(self.state[param], param, group)

    def _check_group(self, group):
        check_range("Adagrad", "learning rate", group["lr"], 0.0)
        check_range("Adagrad", "lr_decay value", group["lr_decay"], 0.0)
        check_range("Adagrad", "weight_decay value", group["weight_decay"], 0.0)
        check_range("Adagrad", "initial_accumulator_value", group["initial_accumulator_value"],
                    0.0)
        check_range("Adagrad", "epsilon value", group["eps"], 0.0)

    @staticmethod
    def _init_state(state, param, group):
        state["step"] = new_step_count()
        state["sum"] = new_state_array(param, group["initial_accumulator_value"])

    def _update(self, param, grad, state, group):
        if not state:
            self._init_state(state, param, group)
        step = advance(state)
        adagrad_update(param._device.xp, param._data, grad, state["sum"]._data, step=step,
                       lr=group["lr"], lr_decay=group["lr_decay"],
                       weight_decay=group["weight_decay"], eps=group["eps"],
                       maximize=group["maximize"])


# ---- RMSprop ------------------------------------------------------------------------------------
def rmsprop_update(xp, param, grad, square_avg, grad_avg, momentum_buffer, *, lr: float,
                   alpha: float, eps: float, weight_decay: float, momentum: float,
                   centered: bool, maximize: bool):
    """One RMSprop step in place. `grad_avg` is used only when `centered` (the variance
    estimate subtracts the squared mean gradient), `momentum_buffer` only when momentum > 0.

    >>> import numpy as np
    >>> p, square = np.ones(1), np.zeros(1)
    >>> rmsprop_update(np, p, np.array([2.0]), square, None, None, lr=0.01, alpha=0.75,
    ...                eps=0.0, weight_decay=0.0, momentum=0.0, centered=False, maximize=False)
    >>> p, square  # divides by sqrt(0.25 * 2**2) = 1
    (array([0.98]), array([1.]))
    """
    grad = l2_gradient(xp, param, grad, weight_decay, maximize)
    scratch = xp.multiply(grad, grad)
    scratch *= 1 - alpha
    square_avg *= alpha
    square_avg += scratch
    if centered:
        xp.subtract(grad, grad_avg, out=scratch)
        scratch *= 1 - alpha
        grad_avg += scratch  # grad_avg.lerp_(grad, 1 - alpha)
        xp.multiply(grad_avg, grad_avg, out=scratch)
        xp.subtract(square_avg, scratch, out=scratch)
        xp.sqrt(scratch, out=scratch)
    else:
        xp.sqrt(square_avg, out=scratch)
    scratch += eps
    xp.divide(grad, scratch, out=scratch)
    if momentum > 0:
        momentum_buffer *= momentum
        momentum_buffer += scratch
        xp.multiply(momentum_buffer, lr, out=scratch)
    else:
        scratch *= lr
    param -= scratch


class RMSprop(Optimizer):
    """RMSprop (Hinton), optionally `centered` and with momentum, as `torch.optim.RMSprop`.

    >>> import ember
    >>> w = ember.nn.Parameter(ember.tensor([1.0]))
    >>> opt = ember.optim.RMSprop([w], lr=0.01, alpha=0.75)
    >>> (w * w).sum().backward(); opt.step()
    >>> round(w.item(), 6)
    0.98
    """

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False, *,
                 maximize: bool = False):
        defaults = {"lr": lr, "alpha": alpha, "eps": eps, "weight_decay": weight_decay,
                    "momentum": momentum, "centered": centered, "maximize": maximize}
        super().__init__(params, defaults)

    def _check_group(self, group):
        check_range("RMSprop", "learning rate", group["lr"], 0.0)
        check_range("RMSprop", "epsilon value", group["eps"], 0.0)
        check_range("RMSprop", "momentum value", group["momentum"], 0.0)
        check_range("RMSprop", "weight_decay value", group["weight_decay"], 0.0)
        check_range("RMSprop", "alpha value", group["alpha"], 0.0)

    def _update(self, param, grad, state, group):
        if not state:
            state["step"] = new_step_count()
            state["square_avg"] = new_state_array(param)
        if group["momentum"] > 0 and "momentum_buffer" not in state:
            state["momentum_buffer"] = new_state_array(param)
        if group["centered"] and "grad_avg" not in state:
            state["grad_avg"] = new_state_array(param)
        advance(state)
        grad_avg, buffer = state.get("grad_avg"), state.get("momentum_buffer")
        rmsprop_update(param._device.xp, param._data, grad, state["square_avg"]._data,
                       grad_avg._data if group["centered"] else None,
                       buffer._data if group["momentum"] > 0 else None, lr=group["lr"],
                       alpha=group["alpha"], eps=group["eps"],
                       weight_decay=group["weight_decay"], momentum=group["momentum"],
                       centered=group["centered"], maximize=group["maximize"])


# ---- Adadelta -----------------------------------------------------------------------------------
def adadelta_update(xp, param, grad, square_avg, acc_delta, *, lr: float, rho: float,
                    eps: float, weight_decay: float, maximize: bool):
    """One Adadelta step in place (Zeiler): the step is the gradient scaled by
    RMS[previous steps] / RMS[gradients], times `lr`.

    >>> import numpy as np
    >>> p, square, delta = np.ones(1), np.zeros(1), np.zeros(1)
    >>> adadelta_update(np, p, np.array([2.0]), square, delta, lr=1.0, rho=0.75, eps=1.0,
    ...                 weight_decay=0.0, maximize=False)
    >>> p  # step = sqrt(0 + 1) / sqrt(0.25 * 4 + 1) * 2
    array([-0.41421356])
    """
    grad = l2_gradient(xp, param, grad, weight_decay, maximize)
    scratch = xp.multiply(grad, grad)
    scratch *= 1 - rho
    square_avg *= rho
    square_avg += scratch
    std = xp.add(square_avg, eps)
    xp.sqrt(std, out=std)
    delta = xp.add(acc_delta, eps, out=scratch)
    xp.sqrt(delta, out=delta)
    delta /= std
    delta *= grad
    xp.multiply(delta, delta, out=std)  # std is spent: reuse it for delta squared
    std *= 1 - rho
    acc_delta *= rho
    acc_delta += std
    delta *= lr
    param -= delta


class Adadelta(Optimizer):
    """Adadelta, as `torch.optim.Adadelta` (`lr` scales the step; 1.0 is the paper's rule).

    >>> import ember
    >>> w = ember.nn.Parameter(ember.tensor([1.0]))
    >>> opt = ember.optim.Adadelta([w], rho=0.75, eps=1.0)
    >>> (w * w).sum().backward(); opt.step()
    >>> round(w.item(), 6)
    -0.414214
    """

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0, *, maximize: bool = False):
        defaults = {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay,
                    "maximize": maximize}
        super().__init__(params, defaults)

    def _check_group(self, group):
        check_range("Adadelta", "learning rate", group["lr"], 0.0)
        check_range("Adadelta", "rho value", group["rho"], 0.0, 1.0, include_high=True)
        check_range("Adadelta", "epsilon value", group["eps"], 0.0)
        check_range("Adadelta", "weight_decay value", group["weight_decay"], 0.0)

    def _update(self, param, grad, state, group):
        if not state:
            state["step"] = new_step_count()
            state["square_avg"] = new_state_array(param)
            state["acc_delta"] = new_state_array(param)
        advance(state)
        adadelta_update(param._device.xp, param._data, grad, state["square_avg"]._data,
                        state["acc_delta"]._data, lr=group["lr"], rho=group["rho"],
                        eps=group["eps"], weight_decay=group["weight_decay"],
                        maximize=group["maximize"])
