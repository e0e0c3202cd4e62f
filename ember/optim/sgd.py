"""Stochastic gradient descent with (Nesterov) momentum, as `torch.optim.SGD`."""
from __future__ import annotations

from ember._core.tensor import Tensor
from ember.optim._traced import sgd_step
from ember.optim.optimizer import Optimizer, OptimizerError, check_range, l2_gradient


def sgd_update(xp, param, grad, momentum_buffer, *, lr: float, momentum: float,
               dampening: float, weight_decay: float, nesterov: bool, maximize: bool):
    """One SGD step in place on raw arrays; returns the momentum buffer (created from the
    first gradient when `momentum_buffer` is None, as PyTorch does), or None without momentum.

    >>> import numpy as np
    >>> p = np.array([1.0]); sgd_update(np, p, np.array([2.0]), None, lr=0.1, momentum=0.0,
    ...     dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False); p
    array([0.8])
    """
    grad = l2_gradient(xp, param, grad, weight_decay, maximize)
    direction = grad
    if momentum != 0:
        if momentum_buffer is None:
            momentum_buffer = xp.array(grad, copy=True)
        else:
            momentum_buffer *= momentum
            if dampening == 0:
                momentum_buffer += grad
            else:
                momentum_buffer += xp.multiply(grad, 1 - dampening)
        if nesterov:
            direction = xp.multiply(momentum_buffer, momentum)
            direction += grad
        else:
            direction = momentum_buffer
    step = xp.multiply(direction, lr)
    param -= step
    return momentum_buffer


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with momentum, dampening, Nesterov momentum,
    L2 weight decay, and `maximize` (ascend instead).

    >>> import ember
    >>> w = ember.nn.Parameter(ember.tensor([1.0]))
    >>> opt = ember.optim.SGD([w], lr=0.1, momentum=0.9)
    >>> for _ in range(2):
    ...     opt.zero_grad()
    ...     (w * w).sum().backward()
    ...     opt.step()
    >>> round(w.item(), 4)
    0.46
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False):
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening,
                    "weight_decay": weight_decay, "nesterov": nesterov, "maximize": maximize}
        super().__init__(params, defaults)

    _traced_rule = staticmethod(sgd_step)

    def _check_group(self, group):
        check_range("SGD", "learning rate", group["lr"], 0.0)
        check_range("SGD", "momentum value", group["momentum"], 0.0)
        check_range("SGD", "weight_decay value", group["weight_decay"], 0.0)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise OptimizerError(f"SGD: Nesterov momentum needs momentum > 0 and dampening 0, "
                                 f"got momentum={group['momentum']}, "
                                 f"dampening={group['dampening']}")

    def _update(self, param, grad, state, group):
        buffer = state.get("momentum_buffer")
        updated = sgd_update(param._device.xp, param._data, grad,
                             None if buffer is None else buffer._data, lr=group["lr"],
                             momentum=group["momentum"], dampening=group["dampening"],
                             weight_decay=group["weight_decay"], nesterov=group["nesterov"],
                             maximize=group["maximize"])
        if updated is not None and buffer is None:
            state["momentum_buffer"] = Tensor(updated, param._device)
