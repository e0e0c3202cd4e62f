"""Independent NumPy references of the published update rules (the algorithm boxes of the
PyTorch documentation; Lion from its paper), written out of place, formula by formula.

Each takes (param, grad, state, t, **options) with t counting from 1, keeps its own state in
the `state` dict and returns the new parameter. `maximize` negates the gradient first, as
PyTorch's implementation does (the SGD box in the docs applies it after weight decay, but the
code, which we match, negates first).
"""
from __future__ import annotations

import numpy as np


def _decay(p, g, lr, weight_decay, decoupled, maximize):
    """The Adam family's start: negate for `maximize`, then decay the weights (decoupled,
    AdamW style) or add the L2 term to the gradient; returns the new (p, g)."""
    g = -g if maximize else g
    if decoupled:
        return p * (1 - lr * weight_decay), g
    return p, g + weight_decay * p


def _moments(s, g, beta1, beta2):
    """The first and second moment estimates m and v, updated in `s`."""
    s["m"] = beta1 * s.get("m", 0.0) + (1 - beta1) * g
    s["v"] = beta2 * s.get("v", 0.0) + (1 - beta2) * g * g


def sgd(p, g, s, t, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
        maximize=False):
    g = (-g if maximize else g) + weight_decay * p
    if momentum != 0:
        s["b"] = g.copy() if t == 1 else momentum * s["b"] + (1 - dampening) * g
        g = g + momentum * s["b"] if nesterov else s["b"]
    return p - lr * g


def adam(p, g, s, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
         maximize=False, decoupled_weight_decay=False):
    beta1, beta2 = betas
    p, g = _decay(p, g, lr, weight_decay, decoupled_weight_decay, maximize)
    _moments(s, g, beta1, beta2)
    v = s["v"]
    if amsgrad:
        s["v_max"] = np.maximum(s.get("v_max", 0.0), s["v"])
        v = s["v_max"]
    m_hat = s["m"] / (1 - beta1 ** t)
    v_hat = v / (1 - beta2 ** t)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps)


def adamw(p, g, s, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False,
          maximize=False):
    return adam(p, g, s, t, lr, betas, eps, weight_decay, amsgrad, maximize,
                decoupled_weight_decay=True)


def adamax(p, g, s, t, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
           maximize=False):
    beta1, beta2 = betas
    g = (-g if maximize else g) + weight_decay * p
    s["m"] = beta1 * s.get("m", 0.0) + (1 - beta1) * g
    s["u"] = np.maximum(beta2 * s.get("u", 0.0), np.abs(g) + eps)
    return p - lr / (1 - beta1 ** t) * s["m"] / s["u"]


def nadam(p, g, s, t, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
          momentum_decay=4e-3, decoupled_weight_decay=False, maximize=False):
    beta1, beta2 = betas
    p, g = _decay(p, g, lr, weight_decay, decoupled_weight_decay, maximize)
    mu = beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
    mu_next = beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
    s["prod"] = s.get("prod", 1.0) * mu  # prod_{i <= t} mu_i
    _moments(s, g, beta1, beta2)
    m_hat = (mu_next * s["m"] / (1 - s["prod"] * mu_next)
             + (1 - mu) * g / (1 - s["prod"]))
    v_hat = s["v"] / (1 - beta2 ** t)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps)


def radam(p, g, s, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
          decoupled_weight_decay=False, maximize=False):
    beta1, beta2 = betas
    p, g = _decay(p, g, lr, weight_decay, decoupled_weight_decay, maximize)
    _moments(s, g, beta1, beta2)
    m_hat = s["m"] / (1 - beta1 ** t)
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * t * beta2 ** t / (1 - beta2 ** t)
    if rho_t <= 5:
        return p - lr * m_hat
    adaptive = np.sqrt(1 - beta2 ** t) / (np.sqrt(s["v"]) + eps)
    rect = np.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
    return p - lr * m_hat * rect * adaptive


def adagrad(p, g, s, t, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0,
            eps=1e-10, maximize=False):
    g = (-g if maximize else g) + weight_decay * p
    s["sum"] = s.get("sum", initial_accumulator_value) + g * g
    return p - lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(s["sum"]) + eps)


def rmsprop(p, g, s, t, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
            centered=False, maximize=False):
    g = (-g if maximize else g) + weight_decay * p
    s["v"] = alpha * s.get("v", 0.0) + (1 - alpha) * g * g
    v = s["v"]
    if centered:
        s["g_avg"] = alpha * s.get("g_avg", 0.0) + (1 - alpha) * g
        v = v - s["g_avg"] ** 2
    step = g / (np.sqrt(v) + eps)
    if momentum > 0:
        s["b"] = momentum * s.get("b", 0.0) + step
        step = s["b"]
    return p - lr * step


def adadelta(p, g, s, t, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, maximize=False):
    g = (-g if maximize else g) + weight_decay * p
    s["v"] = rho * s.get("v", 0.0) + (1 - rho) * g * g
    delta = np.sqrt(s.get("u", 0.0) + eps) / np.sqrt(s["v"] + eps) * g
    s["u"] = rho * s.get("u", 0.0) + (1 - rho) * delta * delta
    return p - lr * delta


def lion(p, g, s, t, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, maximize=False):
    beta1, beta2 = betas
    g = -g if maximize else g
    m = s.get("m", 0.0)
    p = p * (1 - lr * weight_decay) - lr * np.sign(beta1 * m + (1 - beta1) * g)
    s["m"] = beta2 * m + (1 - beta2) * g
    return p
