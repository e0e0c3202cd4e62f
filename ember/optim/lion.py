"""Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms").

Not in `torch.optim`; the rule and state names follow the paper's Program 1 and the
reference PyTorch port (lucidrains/lion-pytorch): one momentum buffer `exp_avg`, decoupled
weight decay, and a step of constant size `lr` per coordinate (the sign of an interpolation).
"""
from __future__ import annotations

from ember.optim.optimizer import Optimizer, check_betas, check_range, new_state_array


def lion_update(xp, param, grad, exp_avg, *, lr: float, beta1: float, beta2: float,
                weight_decay: float, maximize: bool):
    """One Lion step in place:
    p <- p (1 - lr wd) - lr sign(beta1 m + (1 - beta1) g);  m <- beta2 m + (1 - beta2) g.

    >>> import numpy as np
    >>> p, m = np.zeros(3), np.zeros(3)
    >>> lion_update(np, p, np.array([2.0, -0.5, 0.0]), m, lr=0.1, beta1=0.9, beta2=0.99,
    ...             weight_decay=0.0, maximize=False)
    >>> p
    array([-0.1,  0.1,  0. ])
    """
    if maximize:
        grad = xp.negative(grad)
    if weight_decay != 0:
        param *= 1 - lr * weight_decay
    direction = xp.subtract(grad, exp_avg)
    direction *= 1 - beta1
    direction += exp_avg  # exp_avg.lerp(grad, 1 - beta1), without touching exp_avg
    xp.sign(direction, out=direction)
    direction *= lr
    param -= direction
    xp.subtract(grad, exp_avg, out=direction)
    direction *= 1 - beta2
    exp_avg += direction


class Lion(Optimizer):
    """Lion: sign-of-momentum updates with decoupled weight decay. Use a learning rate
    3-10x smaller than AdamW's and a weight decay 3-10x larger (the paper's advice).

    >>> import ember
    >>> w = ember.nn.Parameter(ember.tensor([1.0, -1.0]))
    >>> opt = ember.optim.Lion([w], lr=0.1)
    >>> (w * w).sum().backward(); opt.step()
    >>> w
    Parameter containing:
    tensor([ 0.9, -0.9], requires_grad=True)
    """

    def __init__(self, params, lr: float = 1e-4, betas: tuple = (0.9, 0.99),
                 weight_decay: float = 0, *, maximize: bool = False):
        defaults = {"lr": lr, "betas": betas, "weight_decay": weight_decay,
                    "maximize": maximize}
        super().__init__(params, defaults)

    def _check_group(self, group):
        check_range("Lion", "learning rate", group["lr"], 0.0)
        check_betas("Lion", group["betas"])
        check_range("Lion", "weight_decay value", group["weight_decay"], 0.0)

    def _update(self, param, grad, state, group):
        if not state:
            state["exp_avg"] = new_state_array(param)
        beta1, beta2 = group["betas"]
        lion_update(param._device.xp, param._data, grad, state["exp_avg"]._data,
                    lr=group["lr"], beta1=beta1, beta2=beta2,
                    weight_decay=group["weight_decay"], maximize=group["maximize"])
