"""Public autograd API: backward/grad, grad-mode switches, custom Functions, gradcheck."""
from __future__ import annotations

import numpy as np

from ember._core.autograd import (
    Function,
    FunctionCtx,
    RemovableHandle,
    backward,
    enable_grad,
    grad,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from ember._core.errors import EmberError
from ember._core.tensor import Tensor

__all__ = ["Function", "FunctionCtx", "RemovableHandle", "backward", "enable_grad", "grad",
           "gradcheck", "is_grad_enabled", "no_grad", "numerical_jacobian", "set_grad_enabled"]


def numerical_jacobian(function, inputs, index: int, eps: float = 1e-6) -> np.ndarray:
    """Central-difference Jacobian of sum-flattened outputs w.r.t. inputs[index] (float64)."""
    base = [x.detach() if isinstance(x, Tensor) else x for x in inputs]
    target = base[index].numpy().copy()
    columns = []
    for position in range(target.size):
        flat = target.reshape(-1)
        original = flat[position]
        values = []
        for shifted in (original + eps, original - eps):
            flat[position] = shifted
            args = list(base)
            args[index] = Tensor(target.copy())
            outputs = function(*args)
            outputs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
            values.append(np.concatenate([np.asarray(o.numpy(), np.float64).reshape(-1)
                                          for o in outputs if o is not None]))
        flat[position] = original
        columns.append((values[0] - values[1]) / (2 * eps))
    return np.stack(columns, axis=1) if columns else np.zeros((0, 0))


def gradcheck(function, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True) -> bool:
    """Compare autograd's vector-Jacobian products with central differences (float64).

    Every floating input that requires grad is checked against a random cotangent.

    >>> import ember
    >>> x = ember.tensor([0.3, 1.2], dtype=ember.float64, requires_grad=True)
    >>> ember.autograd.gradcheck(ember.sin, (x,))
    True
    """
    inputs = tuple(inputs)
    outputs = function(*inputs)
    outputs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
    outputs = [o for o in outputs if isinstance(o, Tensor) and o.requires_grad]
    rng = np.random.default_rng(0)
    cotangents = [Tensor(rng.standard_normal(o.shape).astype(o.numpy().dtype))
                  for o in outputs]
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not outputs:
        raise EmberError("gradcheck: no output requires grad")
    analytic = grad(outputs, [inputs[i] for i in checked], cotangents, allow_unused=True)
    flat_cotangent = np.concatenate([c.numpy().reshape(-1).astype(np.float64)
                                     for c in cotangents])
    for position, index in enumerate(checked):
        jacobian = numerical_jacobian(lambda *a: [o for o in _as_tuple(function(*a))
                                                  if isinstance(o, Tensor) and
                                                  o.dtype.is_floating_point],
                                      inputs, index, eps)
        numeric = flat_cotangent @ jacobian if jacobian.size else np.zeros(inputs[index].shape)
        got = analytic[position]
        got = np.zeros(inputs[index].shape) if got is None else got.numpy().astype(np.float64)
        if not np.allclose(got.reshape(-1), numeric.reshape(-1), atol=atol, rtol=rtol):
            if raise_exception:
                worst = np.max(np.abs(got.reshape(-1) - numeric.reshape(-1)))
                raise EmberError(f"gradcheck failed for input {index}: max abs difference "
                                 f"{worst:.3g}\nanalytic: {got.reshape(-1)[:8]}\n"
                                 f"numeric:  {numeric.reshape(-1)[:8]}")
            return False
    return True


def _as_tuple(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)
