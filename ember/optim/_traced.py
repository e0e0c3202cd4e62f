"""Optimizer update rules written in ember ops, for steps recorded by `ember.jit`.

The eager rules update raw arrays in place (NumPy, Numba), which a trace cannot see. Under
a jit tracer `Optimizer.step` runs these instead: the same arithmetic in the same order, each
in-place update an `assign`, so parameters and state (momentum buffers, moments, the step
count) become graph outputs written back after every run. Anything a rule would decide in
Python from a value that changes between runs (Adam's bias correction from the step count)
is computed in the graph from a state tensor, never baked into the trace.
"""
from __future__ import annotations

from ember._core import dtypes
from ember._core.autograd import no_grad
from ember._core.errors import EmberError, user_frame
from ember._core.primitive import STATE
from ember._core.tensor import Tensor


def jit_tracing() -> bool:
    """True while `ember.jit` records (its tracer records random draws; others do not)."""
    tracer = STATE.tracer
    return tracer is not None and getattr(tracer, "records_random_draws", False)


def unsupported(optimizer) -> EmberError:
    return EmberError(f"{type(optimizer).__name__}.step() is not supported under ember.jit "
                      f"yet (at {user_frame()}); call step() outside the jitted function, or "
                      f"use SGD, Adam or AdamW")


def _gradient(param: Tensor, grad: Tensor, weight_decay: float, maximize: bool) -> Tensor:
    """`l2_gradient` in ops: (-)grad, plus weight_decay * param."""
    if weight_decay == 0:
        return -grad if maximize else grad
    decayed = param * weight_decay
    return decayed - grad if maximize else decayed + grad


def sgd_step(param: Tensor, grad: Tensor, state: dict, group: dict):
    """`sgd_update` in ops. A momentum buffer made here starts at zeros: with dampening 0,
    `0 * momentum + grad` is exactly PyTorch's first buffer (grad)."""
    from ember._methods import assign
    from ember.optim.optimizer import new_state_array

    momentum, dampening = group["momentum"], group["dampening"]
    with no_grad():
        grad = _gradient(param, grad, group["weight_decay"], group["maximize"])
        direction = grad
        if momentum != 0:
            buffer = state.get("momentum_buffer")
            if buffer is None:
                if dampening != 0:
                    raise EmberError(f"SGD with dampening={dampening} must take one step "
                                     f"outside ember.jit first (its first momentum buffer is "
                                     f"the gradient, undamped) at {user_frame()}")
                buffer = state["momentum_buffer"] = new_state_array(param)
            new = buffer * momentum
            new = new + grad if dampening == 0 else new + grad * (1 - dampening)
            assign(buffer, new)
            direction = new * momentum + grad if group["nesterov"] else new
        assign(param, param - direction * group["lr"])


def adam_step(param: Tensor, grad: Tensor, state: dict, group: dict):
    """`adam_update` (and its Numba loop) in ops, AdamW when `decoupled_weight_decay`. The
    step count is the captured `state['step']` tensor; the bias corrections are computed
    from it in float64, as the eager rule does in Python, then rounded to the param dtype."""
    from ember._methods import assign
    from ember.ops.elementwise import maximum, sqrt
    from ember.optim.adam import _init_moments
    from ember.optim.optimizer import new_state_array

    if not state:
        _init_moments(state, param, "exp_avg", "exp_avg_sq")
    amsgrad = group["amsgrad"]
    if amsgrad and "max_exp_avg_sq" not in state:
        state["max_exp_avg_sq"] = new_state_array(param)
    lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
    weight_decay = group["weight_decay"]
    decoupled = group["decoupled_weight_decay"]
    with no_grad():
        counter = state["step"]
        count = counter + 1
        assign(counter, count)
        count = count.astype(dtypes.float64)
        bias_root = sqrt(1 - beta2 ** count).astype(param.dtype)
        step_size = (lr / (1 - beta1 ** count)).astype(param.dtype)
        if param._device is not counter._device:
            bias_root, step_size = bias_root.to(param._device), step_size.to(param._device)
        weight = param
        if weight_decay != 0 and decoupled:
            weight = param * (1 - lr * weight_decay)
        grad = _gradient(weight, grad, 0.0 if decoupled else weight_decay, group["maximize"])
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        mean = exp_avg + (grad - exp_avg) * (1 - beta1)
        square = exp_avg_sq * beta2 + (grad * grad) * (1 - beta2)
        assign(exp_avg, mean)
        assign(exp_avg_sq, square)
        if amsgrad:
            square = maximum(state["max_exp_avg_sq"], square)
            assign(state["max_exp_avg_sq"], square)
        assign(param, weight - (mean / (sqrt(square) / bias_root + eps)) * step_size)
