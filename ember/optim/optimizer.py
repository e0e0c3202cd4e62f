"""`Optimizer`: parameter groups, per-parameter state, `step`, `zero_grad` and state dicts.

Subclasses hold one update rule each, written as a function over raw backend arrays
(`rule(xp, param, grad, *state, **hyper_parameters)`) that updates in place: the step runs
outside the autograd graph on `param._data`, with Python-float hyper-parameters so float32
parameters and state never upcast to float64. The layout of `state_dict()` is PyTorch's.
"""
from __future__ import annotations

import contextlib
import copy
import itertools
import numbers
from collections import defaultdict

import numpy as np

from ember._core.autograd import enable_grad
from ember._core.device import CPU
from ember._core.errors import DTypeError, EmberError
from ember._core.primitive import STATE
from ember._core.tensor import Tensor
from ember.optim._traced import jit_tracing, unsupported


class OptimizerError(EmberError, ValueError):
    """A bad optimizer argument, parameter list or state dict (a ValueError)."""


# ---- helpers shared by the optimizers ---------------------------------------------------------
def check_range(optimizer: str, name: str, value, low: float, high: float | None = None,
                include_high: bool = False):
    """Raise OptimizerError unless low <= value (< or <=) high (NaN fails too)."""
    in_range = isinstance(value, numbers.Real) and value >= low and (
        high is None or (value <= high if include_high else value < high))
    if not in_range:
        upper = "" if high is None else f" and {'<=' if include_high else '<'} {high}"
        raise OptimizerError(f"{optimizer}: invalid {name} {value!r}; expected a number "
                             f">= {low}{upper}")


def check_betas(optimizer: str, betas):
    """Both betas must lie in [0, 1)."""
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise OptimizerError(f"{optimizer}: betas must be a pair (beta1, beta2), got {betas!r}")
    for index, beta in enumerate(betas):
        check_range(optimizer, f"beta parameter at index {index}", beta, 0.0, 1.0)


def l2_gradient(xp, param, grad, weight_decay: float, maximize: bool):
    """The gradient a rule follows: negated when maximizing, plus `weight_decay * param`
    (L2 penalty). Returns `grad` itself when nothing changes; never writes into it."""
    if weight_decay == 0:
        return xp.negative(grad) if maximize else grad
    decayed = xp.multiply(param, weight_decay)
    if maximize:
        decayed -= grad
    else:
        decayed += grad
    return decayed


def fits_cpu_kernel(*arrays) -> bool:
    """True when a Numba CPU kernel can take these raw arrays: all NumPy, C-contiguous and of
    one dtype, float32 or float64 (anything else takes the generic `xp` rule)."""
    dtype = getattr(arrays[0], "dtype", None)
    if dtype not in (np.float32, np.float64):
        return False
    return all(isinstance(array, np.ndarray) and array.dtype == dtype
               and array.flags.c_contiguous for array in arrays)


def new_state_array(param: Tensor, fill: float = 0.0) -> Tensor:
    """A state tensor shaped, typed and placed like `param`, filled with `fill`."""
    xp = param._device.xp
    with _on_device(param):
        data = xp.full_like(param._data, fill) if fill else xp.zeros_like(param._data)
    return Tensor(data, param._device)


def new_step_count() -> Tensor:
    """The per-parameter step counter: a float32 scalar on the CPU, as PyTorch keeps it."""
    return Tensor(np.zeros((), np.float32), CPU)


def advance(state: dict) -> float:
    """Add one to `state['step']` in place and return the new count."""
    counter = state["step"]._data
    counter += 1
    return float(counter)


def _on_device(param: Tensor):
    if param._device is CPU:
        return contextlib.nullcontext()
    return param._device.xp.cuda.Device(param._device.index)


# ---- the base class -----------------------------------------------------------------------------
class Optimizer:
    """Base class of the optimizers: `params` is an iterable of tensors, of `(name, tensor)`
    pairs, or of dicts (parameter groups with their own options; missing options come from
    `defaults`).

    >>> import ember
    >>> w = ember.nn.Parameter(ember.ones(2))
    >>> opt = ember.optim.SGD([{'params': [w], 'lr': 0.5}], lr=0.1)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> w
    Parameter containing:
    tensor([0., 0.], requires_grad=True)
    """

    # the update in ember ops, `rule(param, grad, state, group)`, used under ember.jit
    _traced_rule = None

    def __init__(self, params, defaults: dict):
        self.defaults = defaults
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict] = []
        if isinstance(params, Tensor):
            raise OptimizerError(f"{type(self).__name__}: params must be an iterable of "
                                 f"tensors or dicts, got a single Tensor; wrap it in a list")
        groups = params if isinstance(params, (set, frozenset)) else list(params)
        if not groups:
            raise OptimizerError(f"{type(self).__name__} got an empty parameter list")
        if isinstance(groups, (set, frozenset)) or not isinstance(groups[0], dict):
            groups = [{"params": groups}]  # add_param_group rejects a set
        for group in groups:
            self.add_param_group(group)

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for index, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {index}")
            lines += [f"    {key}: {value}" for key, value in sorted(group.items())
                      if key not in ("params", "param_names")]
        return "\n".join(lines) + "\n)"

    # ---- groups -------------------------------------------------------------------------
    def add_param_group(self, param_group: dict):
        """Add a group of parameters with its own options (e.g. when unfreezing layers)."""
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise OptimizerError(f"{name}.add_param_group: expected a dict, got "
                                 f"{type(param_group).__name__}")
        if "params" not in param_group:
            raise OptimizerError(f"{name}: a parameter group needs a 'params' entry")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise OptimizerError(f"{name}: parameters must come in an ordered collection "
                                 f"(a list), not a set, so their order is the same every run")
        params = list(params)
        if params and all(isinstance(p, tuple) and len(p) == 2 for p in params):
            group["param_names"] = [p[0] for p in params]
            params = [p[1] for p in params]
        for index, param in enumerate(params):
            _check_param(name, index, param)
        group["params"] = params
        for key, default in self.defaults.items():
            group.setdefault(key, default)
        self._check_group(group)

        seen = {id(p) for g in self.param_groups for p in g["params"]}
        ids = [id(p) for p in params]
        if len(set(ids)) != len(ids):
            raise OptimizerError(f"{name}: a parameter appears twice in one parameter group")
        if seen.intersection(ids):
            raise OptimizerError(f"{name}: some parameters appear in more than one "
                                 f"parameter group")
        if any(("param_names" in g) != ("param_names" in group) for g in self.param_groups):
            raise OptimizerError(f"{name}: either every parameter group has names or none does")
        self.param_groups.append(group)

    def _check_group(self, group: dict):
        """Validate one group's hyper-parameters (subclasses raise OptimizerError)."""

    # ---- the update ---------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True):
        """Forget the gradients: set `.grad` to None (default) or fill it with zeros."""
        tracer = STATE.tracer
        if tracer is not None and hasattr(tracer, "reset_grads"):  # inside ember.jit
            tracer.reset_grads([param for group in self.param_groups
                                for param in group["params"]])
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                if set_to_none:
                    param.grad = None
                else:  # new zeros behind the same Tensor: the old array may be shared
                    param.grad.detach_()
                    param.grad._data = param._device.xp.zeros_like(param.grad._data)

    def step(self, closure=None):
        """Update every parameter that has a gradient. `closure`, if given, re-evaluates the
        model and returns the loss (it runs with gradients enabled); `step` returns it."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        traced = jit_tracing()  # under ember.jit: the rule in ember ops (see _traced.py)
        for group in self.param_groups:
            for param in group["params"]:
                grad = param.grad
                if grad is None:
                    continue
                if grad.shape != param.shape:
                    raise OptimizerError(f"{type(self).__name__}: a gradient of shape "
                                         f"{grad.shape} for a parameter of shape {param.shape}")
                if traced:
                    if self._traced_rule is None:
                        raise unsupported(self)
                    STATE.tracer.check_fresh_grad(param, self)
                    self._traced_rule(param, grad, self.state[param], group)
                    for value in self.state[param].values():  # state made in this trace
                        if isinstance(value, Tensor):          # persists across calls
                            STATE.tracer.keep(value)
                    continue
                self._update(param, grad._data, self.state[param], group)
        return loss

    def _update(self, param: Tensor, grad, state: dict, group: dict):
        """Apply the rule to one parameter in place (grad is the raw backend array)."""
        raise NotImplementedError(f"{type(self).__name__} does not define _update()")

    # ---- state dicts --------------------------------------------------------------------
    def state_dict(self) -> dict:
        """{'state': {index: {name: Tensor}}, 'param_groups': [{options, 'params': [index]}]}:
        parameters are numbered in group order, as in PyTorch. The state tensors are the live
        ones (not copies); `load_state_dict` copies them."""
        index_of: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {key: value for key, value in group.items() if key != "params"}
            for param in group["params"]:
                index_of.setdefault(id(param), len(index_of))
            packed["params"] = [index_of[id(param)] for param in group["params"]]
            groups.append(packed)
        state = {index_of[id(param)]: dict(values) for param, values in self.state.items()
                 if isinstance(param, Tensor) and id(param) in index_of}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict):
        """Load a `state_dict()` (this optimizer's, or a PyTorch one converted to arrays):
        state is copied, cast to each parameter's dtype and moved to its device."""
        name = type(self).__name__
        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= state_dict.keys():
            raise OptimizerError(f"{name}.load_state_dict: expected a dict with 'state' and "
                                 f"'param_groups' entries")
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise OptimizerError(f"{name}.load_state_dict: the state dict has "
                                 f"{len(saved_groups)} parameter group(s), this optimizer has "
                                 f"{len(self.param_groups)}")
        for index, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(group["params"]) != len(saved["params"]):
                raise OptimizerError(f"{name}.load_state_dict: parameter group {index} holds "
                                     f"{len(saved['params'])} parameter(s) in the state dict "
                                     f"but {len(group['params'])} in this optimizer")
        param_of = dict(zip(itertools.chain.from_iterable(g["params"] for g in saved_groups),
                            itertools.chain.from_iterable(g["params"] for g in self.param_groups)))
        state: defaultdict = defaultdict(dict)
        for index, values in state_dict["state"].items():
            if index not in param_of:
                raise OptimizerError(f"{name}.load_state_dict: state for parameter {index}, "
                                     f"which no parameter group lists")
            param = param_of[index]
            state[param] = {key: _state_value(name, index, key, value, param)
                            for key, value in values.items()}
        for group, saved in zip(self.param_groups, saved_groups):
            saved["params"] = group["params"]
            for key, default in self.defaults.items():  # e.g. an older PyTorch state dict
                saved.setdefault(key, default)
            if "param_names" in group and "param_names" not in saved:
                saved["param_names"] = group["param_names"]
        self.state = state
        self.param_groups = saved_groups


def _check_param(optimizer: str, index: int, param):
    if not isinstance(param, Tensor):
        raise OptimizerError(f"{optimizer} can only optimize Tensors, but parameter {index} "
                             f"is a {type(param).__name__}")
    if not param.is_leaf:
        raise OptimizerError(f"{optimizer}: parameter {index} is not a leaf tensor (it was "
                             f"computed from others); optimize the leaves, or detach() it")
    if param._data.dtype.kind not in "fV":
        raise DTypeError(f"{optimizer}: parameter {index} has dtype {param.dtype.name}; only "
                         f"floating-point tensors can be optimized")


_SCALAR_STATE = ("step", "mu_product")  # counters PyTorch also keeps as float32 scalars


def _state_value(optimizer: str, index: int, key, value, param: Tensor):
    """A copy of one saved state entry: arrays go to the parameter's device and dtype, scalars
    (the step count, NAdam's mu_product) stay float32 CPU scalars; other values pass through."""
    if isinstance(value, Tensor):
        value = value._data
    if not hasattr(value, "shape") or not hasattr(value, "dtype"):
        return value
    if key in _SCALAR_STATE:
        return Tensor(np.array(_host_array(value), dtype=np.float32).reshape(()), CPU)
    if tuple(value.shape) != tuple(param.shape):
        raise OptimizerError(f"{optimizer}.load_state_dict: state '{key}' of parameter {index} "
                             f"has shape {tuple(value.shape)}, the parameter has shape "
                             f"{tuple(param.shape)}")
    dtype = param._data.dtype if param._data.dtype.kind in "fV" else None
    if param._device is CPU:
        return Tensor(np.array(_host_array(value), dtype=dtype), CPU)
    with _on_device(param):
        return Tensor(param._device.xp.array(value, dtype=dtype), param._device)


def _host_array(value):
    """A NumPy view of a CPU array, a CuPy array (copied to host) or a torch tensor."""
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "get") and not hasattr(value, "detach"):  # CuPy
        return value.get()
    if hasattr(value, "detach"):  # a PyTorch tensor in a converted checkpoint
        return value.detach().cpu().numpy()
    return np.asarray(value)
