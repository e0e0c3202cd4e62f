"""The Adam family, as in `torch.optim`: Adam (and AMSGrad), AdamW, Adamax, NAdam, RAdam.

Each rule is one function over raw arrays (`xp` is numpy or cupy) updating parameter and
state in place. Adam/AdamW also have a Numba kernel for NumPy float32/float64 arrays that
does the same arithmetic in the same order in one pass over memory instead of about twelve
(on a 784-512-512-10 MLP it takes a fifth of the time of the NumPy version).
"""
from __future__ import annotations

import functools
import math

import numpy as np

from ember.optim._traced import adam_step
from ember.optim.optimizer import (
    Optimizer,
    advance,
    check_betas,
    check_range,
    fits_cpu_kernel,
    l2_gradient,
    new_state_array,
    new_step_count,
)


def _check_adam_group(optimizer: str, group: dict):
    check_range(optimizer, "learning rate", group["lr"], 0.0)
    check_range(optimizer, "epsilon value", group["eps"], 0.0)
    check_betas(optimizer, group["betas"])
    check_range(optimizer, "weight_decay value", group["weight_decay"], 0.0)


def _init_moments(state: dict, param, *names: str):
    state["step"] = new_step_count()
    for name in names:
        state[name] = new_state_array(param)


def _decay_weights(param, lr: float, weight_decay: float, decoupled: bool) -> float:
    """Apply decoupled weight decay (AdamW style) to `param`; return the L2 coefficient left
    for the gradient (0 when the decay was decoupled)."""
    if weight_decay != 0 and decoupled:
        param *= 1 - lr * weight_decay
        return 0.0
    return weight_decay


def _update_moments(xp, grad, exp_avg, exp_avg_sq, beta1: float, beta2: float):
    """Adam's moment updates in place: exp_avg.lerp_(grad, 1 - beta1) and
    exp_avg_sq = beta2 exp_avg_sq + (1 - beta2) grad^2; returns the scratch array it used
    (shaped like grad) for the caller to reuse instead of allocating another."""
    scratch = xp.subtract(grad, exp_avg)
    scratch *= 1 - beta1
    exp_avg += scratch
    xp.multiply(grad, grad, out=scratch)
    scratch *= 1 - beta2
    exp_avg_sq *= beta2
    exp_avg_sq += scratch
    return scratch


# ---- Adam / AdamW -------------------------------------------------------------------------------
def adam_update(xp, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, *, step: float,
                lr: float, beta1: float, beta2: float, eps: float, weight_decay: float,
                amsgrad: bool, maximize: bool, decoupled_weight_decay: bool):
    """One Adam step in place (AdamW when `decoupled_weight_decay`); `step` counts from 1.

    >>> import numpy as np
    >>> p, m, v = np.ones(2), np.zeros(2), np.zeros(2)
    >>> adam_update(np, p, np.array([3.0, -1.0]), m, v, None, step=1.0, lr=0.1, beta1=0.9,
    ...             beta2=0.999, eps=0.0, weight_decay=0.0, amsgrad=False, maximize=False,
    ...             decoupled_weight_decay=False)
    >>> p.round(6)  # the first step moves each weight by lr against the gradient's sign
    array([0.9, 1.1])
    """
    weight_decay = _decay_weights(param, lr, weight_decay, decoupled_weight_decay)
    grad = l2_gradient(xp, param, grad, weight_decay, maximize)
    scratch = _update_moments(xp, grad, exp_avg, exp_avg_sq, beta1, beta2)
    second_moment = exp_avg_sq
    if amsgrad:
        xp.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        second_moment = max_exp_avg_sq
    denom = xp.sqrt(second_moment, out=scratch)
    denom /= math.sqrt(1 - beta2 ** step)
    denom += eps
    xp.divide(exp_avg, denom, out=scratch)
    scratch *= lr / (1 - beta1 ** step)
    param -= scratch


def _adam_loop(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps,
               weight_decay, amsgrad, maximize, decoupled):
    """`adam_update` as one loop (compiled by Numba): the same operations in the same order,
    with the constants rounded to the array dtype first, as NumPy does with Python floats."""
    cast = param.dtype.type
    shrink = cast(1 - lr * weight_decay)
    l2 = cast(0.0 if decoupled else weight_decay)
    mean_weight, square_weight = cast(1 - beta1), cast(1 - beta2)
    beta2_ = cast(beta2)
    bias_root = cast(math.sqrt(1 - beta2 ** step))
    step_size = cast(lr / (1 - beta1 ** step))
    eps_ = cast(eps)
    for i in range(param.size):
        weight = param[i]
        if decoupled and weight_decay != 0:
            weight = weight * shrink
        gradient = -grad[i] if maximize else grad[i]
        if l2 != 0:
            gradient = weight * l2 - grad[i] if maximize else weight * l2 + grad[i]
        mean = exp_avg[i] + (gradient - exp_avg[i]) * mean_weight
        square = exp_avg_sq[i] * beta2_ + (gradient * gradient) * square_weight
        exp_avg[i] = mean
        exp_avg_sq[i] = square
        if amsgrad:
            square = np.maximum(max_exp_avg_sq[i], square)
            max_exp_avg_sq[i] = square
        param[i] = weight - (mean / (np.sqrt(square) / bias_root + eps_)) * step_size


@functools.cache
def _adam_kernel():
    import numba  # imported on first use: `import ember` stays fast

    # error_model="numpy": no Python zero-division checks, so the loop vectorizes
    return numba.njit(cache=True, error_model="numpy")(_adam_loop)


@functools.cache
def _placeholder(dtype):
    """Stands in for max_exp_avg_sq without amsgrad (never read), so the kernel keeps one
    signature. It must not be one of the other arrays: LLVM then sees possible aliasing
    with an array the loop writes and gives up vectorizing (measured 7x slower)."""
    return np.zeros(1, dtype)


def adam_update_numba(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step: float, lr: float,
                      beta1: float, beta2: float, eps: float, weight_decay: float,
                      amsgrad: bool, maximize: bool, decoupled_weight_decay: bool):
    """`adam_update` on C-contiguous NumPy arrays of one float dtype, through the compiled
    loop; without amsgrad `max_exp_avg_sq` is never touched (pass `_placeholder(dtype)`).
    Flat views and float/bool arguments keep it to one compiled version per dtype."""
    arrays = [array.reshape(-1) for array in (param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq)]
    numbers = [float(value) for value in (step, lr, beta1, beta2, eps, weight_decay)]
    flags = [bool(value) for value in (amsgrad, maximize, decoupled_weight_decay)]
    _adam_kernel()(*arrays, *numbers, *flags)


class Adam(Optimizer):
    """Adam (Kingma & Ba), with `amsgrad`, L2 `weight_decay` (or decoupled, as AdamW), and
    `maximize`; the update rule of `torch.optim.Adam`.

    >>> import ember
    >>> w = ember.nn.Parameter(ember.tensor([1.0, -2.0]))
    >>> opt = ember.optim.Adam([w], lr=0.1)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> [round(value, 4) for value in w.tolist()]  # the first step is lr * sign(grad)
    [0.9, -1.9]
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *, maximize: bool = False,
                 decoupled_weight_decay: bool = False):
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "amsgrad": amsgrad, "maximize": maximize,
                    "decoupled_weight_decay": decoupled_weight_decay}
        super().__init__(params, defaults)

    _traced_rule = staticmethod(adam_step)

    def _check_group(self, group):
        _check_adam_group(type(self).__name__, group)

    def _update(self, param, grad, state, group):
        if not state:
            _init_moments(state, param, "exp_avg", "exp_avg_sq")
        if group["amsgrad"] and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = new_state_array(param)
        step = advance(state)
        beta1, beta2 = group["betas"]
        arrays = (param._data, grad, state["exp_avg"]._data, state["exp_avg_sq"]._data,
                  state["max_exp_avg_sq"]._data if group["amsgrad"] else None)
        options = (group["lr"], beta1, beta2, group["eps"], group["weight_decay"],
                   group["amsgrad"], group["maximize"], group["decoupled_weight_decay"])
        if fits_cpu_kernel(*[array for array in arrays if array is not None]):
            adam_update_numba(*arrays[:4], arrays[4] if group["amsgrad"] else
                              _placeholder(arrays[0].dtype), step, *options)
            return
        lr, beta1, beta2, eps, weight_decay, amsgrad, maximize, decoupled = options
        adam_update(param._device.xp, *arrays, step=step, lr=lr, beta1=beta1, beta2=beta2,
                    eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize,
                    decoupled_weight_decay=decoupled)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): `param *= 1 - lr *
    weight_decay` before the Adam step, as `torch.optim.AdamW`.

    >>> import ember
    >>> w = ember.nn.Parameter(ember.tensor([1.0]))
    >>> opt = ember.optim.AdamW([w], lr=0.1, weight_decay=0.5)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> round(w.item(), 6)  # 1 * (1 - 0.1 * 0.5) - 0.1
    0.85
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)


# ---- Adamax -------------------------------------------------------------------------------------
def adamax_update(xp, param, grad, exp_avg, exp_inf, *, step: float, lr: float, beta1: float,
                  beta2: float, eps: float, weight_decay: float, maximize: bool):
    """One Adamax step in place: the second moment is an exponentially weighted infinity norm.

    >>> import numpy as np
    >>> p, m, u = np.ones(1), np.zeros(1), np.zeros(1)
    >>> adamax_update(np, p, np.array([2.0]), m, u, step=1.0, lr=0.1, beta1=0.9, beta2=0.999,
    ...               eps=0.0, weight_decay=0.0, maximize=False)
    >>> p.round(6)
    array([0.9])
    """
    grad = l2_gradient(xp, param, grad, weight_decay, maximize)
    scratch = xp.subtract(grad, exp_avg)
    scratch *= 1 - beta1
    exp_avg += scratch
    exp_inf *= beta2
    xp.abs(grad, out=scratch)
    scratch += eps
    xp.maximum(exp_inf, scratch, out=exp_inf)
    xp.divide(exp_avg, exp_inf, out=scratch)
    scratch *= lr / (1 - beta1 ** step)
    param -= scratch


class Adamax(Optimizer):
    """Adamax (Adam with an infinity-norm second moment), as `torch.optim.Adamax`.

    >>> import ember
    >>> w = ember.nn.Parameter(ember.tensor([1.0]))
    >>> opt = ember.optim.Adamax([w], lr=0.1)
    >>> (w * w).sum().backward(); opt.step()
    >>> round(w.item(), 6)
    0.9
    """

    def __init__(self, params, lr: float = 2e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, *, maximize: bool = False):
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "maximize": maximize}
        super().__init__(params, defaults)

    def _check_group(self, group):
        _check_adam_group("Adamax", group)

    def _update(self, param, grad, state, group):
        if not state:
            _init_moments(state, param, "exp_avg", "exp_inf")
        step = advance(state)
        beta1, beta2 = group["betas"]
        adamax_update(param._device.xp, param._data, grad, state["exp_avg"]._data,
                      state["exp_inf"]._data, step=step, lr=group["lr"], beta1=beta1,
                      beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"],
                      maximize=group["maximize"])


# ---- NAdam --------------------------------------------------------------------------------------
def nadam_update(xp, param, grad, exp_avg, exp_avg_sq, *, step: float, mu_product: float,
                 lr: float, beta1: float, beta2: float, eps: float, weight_decay: float,
                 momentum_decay: float, decoupled_weight_decay: bool, maximize: bool) -> float:
    """One NAdam step in place (Dozat's Nesterov Adam with the momentum schedule
    mu_t = beta1 (1 - 0.96^(t psi) / 2)); `mu_product` is the running product of mu up to
    the previous step; returns it updated.

    >>> import numpy as np
    >>> p, m, v = np.ones(1), np.zeros(1), np.zeros(1)
    >>> round(nadam_update(np, p, np.array([2.0]), m, v, step=1.0, mu_product=1.0, lr=0.1,
    ...       beta1=0.9, beta2=0.999, eps=0.0, weight_decay=0.0, momentum_decay=4e-3,
    ...       decoupled_weight_decay=False, maximize=False), 4)
    0.4501
    """
    weight_decay = _decay_weights(param, lr, weight_decay, decoupled_weight_decay)
    grad = l2_gradient(xp, param, grad, weight_decay, maximize)
    mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * momentum_decay))
    mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * momentum_decay))
    mu_product = mu_product * mu
    scratch = _update_moments(xp, grad, exp_avg, exp_avg_sq, beta1, beta2)
    denom = xp.divide(exp_avg_sq, 1 - beta2 ** step)
    xp.sqrt(denom, out=denom)
    denom += eps
    xp.divide(grad, denom, out=scratch)
    scratch *= lr * (1.0 - mu) / (1.0 - mu_product)
    param -= scratch
    xp.divide(exp_avg, denom, out=scratch)
    scratch *= lr * mu_next / (1.0 - mu_product * mu_next)
    param -= scratch
    return mu_product


class NAdam(Optimizer):
    """NAdam (Adam with Nesterov momentum), optionally with decoupled weight decay, as
    `torch.optim.NAdam`.

    >>> import ember
    >>> w = ember.nn.Parameter(ember.tensor([1.0]))
    >>> opt = ember.optim.NAdam([w], lr=0.1)
    >>> (w * w).sum().backward(); opt.step()
    >>> round(w.item(), 4)
    0.8944
    """

    def __init__(self, params, lr: float = 2e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, maximize: bool = False):
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "momentum_decay": momentum_decay,
                    "decoupled_weight_decay": decoupled_weight_decay, "maximize": maximize}
        super().__init__(params, defaults)

    def _check_group(self, group):
        _check_adam_group("NAdam", group)
        check_range("NAdam", "momentum_decay value", group["momentum_decay"], 0.0)

    def _update(self, param, grad, state, group):
        if not state:
            _init_moments(state, param, "exp_avg", "exp_avg_sq")
            state["mu_product"] = new_step_count()
            state["mu_product"]._data += 1
        step = advance(state)
        beta1, beta2 = group["betas"]
        mu_product = nadam_update(
            param._device.xp, param._data, grad, state["exp_avg"]._data,
            state["exp_avg_sq"]._data, step=step, mu_product=float(state["mu_product"]._data),
            lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
            weight_decay=group["weight_decay"], momentum_decay=group["momentum_decay"],
            decoupled_weight_decay=group["decoupled_weight_decay"], maximize=group["maximize"])
        # PyTorch keeps the product as a float32 scalar; so do we, for identical state dicts
        state["mu_product"]._data[...] = mu_product


# ---- RAdam --------------------------------------------------------------------------------------
def radam_update(xp, param, grad, exp_avg, exp_avg_sq, *, step: float, lr: float, beta1: float,
                 beta2: float, eps: float, weight_decay: float, decoupled_weight_decay: bool,
                 maximize: bool):
    """One RAdam step in place (Liu et al.): plain momentum SGD while the variance of the
    adaptive learning rate is intractable (rho_t <= 5), rectified Adam afterwards.

    >>> import numpy as np
    >>> p, m, v = np.ones(1), np.zeros(1), np.zeros(1)
    >>> radam_update(np, p, np.array([2.0]), m, v, step=1.0, lr=0.1, beta1=0.9, beta2=0.999,
    ...              eps=1e-8, weight_decay=0.0, decoupled_weight_decay=False, maximize=False)
    >>> p.round(6)  # the first steps are SGD with momentum: 1 - 0.1 * 2
    array([0.8])
    """
    weight_decay = _decay_weights(param, lr, weight_decay, decoupled_weight_decay)
    grad = l2_gradient(xp, param, grad, weight_decay, maximize)
    scratch = _update_moments(xp, grad, exp_avg, exp_avg_sq, beta1, beta2)
    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * beta2 ** step / bias_correction2
    if rho_t > 5.0:
        rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                         / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
        xp.sqrt(exp_avg_sq, out=scratch)
        scratch += eps
        xp.divide(exp_avg, scratch, out=scratch)
        scratch *= lr * rect * math.sqrt(bias_correction2) / bias_correction1
    else:
        xp.multiply(exp_avg, lr / bias_correction1, out=scratch)
    param -= scratch


class RAdam(Optimizer):
    """Rectified Adam, optionally with decoupled weight decay, as `torch.optim.RAdam`.

    >>> import ember
    >>> w = ember.nn.Parameter(ember.tensor([1.0]))
    >>> opt = ember.optim.RAdam([w], lr=0.1)
    >>> (w * w).sum().backward(); opt.step()
    >>> round(w.item(), 6)
    0.8
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, decoupled_weight_decay: bool = False, *,
                 maximize: bool = False):
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "decoupled_weight_decay": decoupled_weight_decay, "maximize": maximize}
        super().__init__(params, defaults)

    def _check_group(self, group):
        _check_adam_group("RAdam", group)

    def _update(self, param, grad, state, group):
        if not state:
            _init_moments(state, param, "exp_avg", "exp_avg_sq")
        step = advance(state)
        beta1, beta2 = group["betas"]
        radam_update(param._device.xp, param._data, grad, state["exp_avg"]._data,
                     state["exp_avg_sq"]._data, step=step, lr=group["lr"], beta1=beta1,
                     beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"],
                     decoupled_weight_decay=group["decoupled_weight_decay"],
                     maximize=group["maximize"])
