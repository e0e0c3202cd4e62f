"""Functional transforms on the same autograd tape: grad, value_and_grad, vjp, jvp.

They nest (`grad(grad(f))`) because an argument that already requires grad (from an outer
transform) is used as is and the inner gradient is built with `create_graph=True`.
"""
from __future__ import annotations

import functools

from ember._core.autograd import _GradMode
from ember._core.autograd import grad as autograd_grad
from ember._core.errors import EmberError
from ember._core.tensor import Tensor
from ember.ops._util import as_tensor


def _prepare(value):
    """A differentiable stand-in for an argument; says whether an outer graph needs it."""
    tensor = value if isinstance(value, Tensor) else as_tensor(value)
    if tensor.dtype.kind != "f":
        raise EmberError(f"can only differentiate with respect to floating-point arguments, "
                         f"got {tensor.dtype.name}")
    if tensor.requires_grad:
        return tensor, True
    return tensor.detach().requires_grad_(True), False


def _split_output(output, has_aux):
    if not has_aux:
        return output, None
    if not (isinstance(output, tuple) and len(output) == 2):
        raise EmberError("with has_aux=True the function must return (output, aux)")
    return output


def value_and_grad(function, argnums=0, has_aux: bool = False):
    """`f -> (x -> (f(x), df/dx))` for a scalar-valued f.

    >>> import ember
    >>> value, gradient = ember.value_and_grad(lambda x: (x ** 2).sum())(ember.tensor([3.0]))
    >>> value.item(), gradient.tolist()
    (9.0, [6.0])
    """
    single = isinstance(argnums, int)
    positions = (argnums,) if single else tuple(argnums)

    @functools.wraps(function)
    def wrapped(*args, **kwargs):
        args = list(args)
        nested = False
        for position in positions:
            args[position], outer = _prepare(args[position])
            nested = nested or outer
        with _GradMode(True):
            output, aux = _split_output(function(*args, **kwargs), has_aux)
        if not isinstance(output, Tensor) or output.size != 1:
            raise EmberError(f"grad needs a function returning a scalar tensor, got "
                             f"{getattr(output, 'shape', type(output).__name__)}")
        gradients = autograd_grad(output, [args[p] for p in positions], create_graph=nested,
                                  allow_unused=True)
        gradients = tuple(g if g is not None else args[p] * 0
                          for g, p in zip(gradients, positions))
        result = gradients[0] if single else gradients
        value = output if nested else output.detach()
        return ((value, aux), result) if has_aux else (value, result)

    return wrapped


def grad(function, argnums=0, has_aux: bool = False):
    """`f -> df/dx` for a scalar-valued f; nests for higher derivatives.

    >>> import ember
    >>> d2 = ember.grad(ember.grad(lambda x: x ** 3))
    >>> d2(ember.tensor(2.0)).item()
    12.0
    """
    value_and_gradient = value_and_grad(function, argnums, has_aux)

    @functools.wraps(function)
    def wrapped(*args, **kwargs):
        (value, aux), gradient = _unpack(value_and_gradient(*args, **kwargs), has_aux)
        return (gradient, aux) if has_aux else gradient

    return wrapped


def _unpack(result, has_aux):
    if has_aux:
        return result
    value, gradient = result
    return (value, None), gradient


def vjp(function, *primals, has_aux: bool = False):
    """Returns `(f(primals), vjp_fn)`; `vjp_fn(cotangent)` gives one gradient per primal."""
    prepared = [_prepare(p) for p in primals]
    inputs = [p for p, _ in prepared]
    nested = any(outer for _, outer in prepared)
    with _GradMode(True):
        output, aux = _split_output(function(*inputs), has_aux)
    outputs = output if isinstance(output, (tuple, list)) else (output,)

    def vjp_fn(*cotangents):
        if len(cotangents) == 1 and isinstance(cotangents[0], (tuple, list)):
            cotangents = tuple(cotangents[0])
        cotangents = [c if isinstance(c, Tensor) else as_tensor(c, dtype=o.dtype)
                      for c, o in zip(cotangents, outputs)]
        gradients = autograd_grad(list(outputs), inputs, cotangents, retain_graph=True,
                                  create_graph=nested or _any_requires_grad(cotangents),
                                  allow_unused=True)
        return tuple(g if g is not None else i.detach() * 0 for g, i in zip(gradients, inputs))

    shown = output if nested else _detach_all(output)
    return (shown, vjp_fn, aux) if has_aux else (shown, vjp_fn)


def _any_requires_grad(cotangents) -> bool:
    return any(isinstance(c, Tensor) and c.requires_grad for c in cotangents)


def _detach_all(output):
    if isinstance(output, (tuple, list)):
        return type(output)(o.detach() for o in output)
    return output.detach()


def jvp(function, primals, tangents):
    """Forward-mode product `J @ tangents`, returned as `(f(primals), J @ tangents)`.

    Computed with the double-vjp identity: u -> vjp(u) is linear, so the vjp of that map
    applied to the tangent gives J t. Works for every op with a double-backward rule.
    """
    primals = tuple(primals)
    tangents = tuple(t if isinstance(t, Tensor) else as_tensor(t) for t in tangents)
    if len(primals) != len(tangents):
        raise EmberError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    inputs = [_prepare(p)[0] for p in primals]
    with _GradMode(True):
        output = function(*inputs)
        outputs = output if isinstance(output, (tuple, list)) else (output,)
        dummies = [Tensor(o._device.xp.zeros_like(o._data), o._device).requires_grad_(True)
                   for o in outputs]
        cotangent_grads = autograd_grad(list(outputs), inputs, dummies, create_graph=True,
                                        allow_unused=True)
        used = [(g, t) for g, t in zip(cotangent_grads, tangents) if g is not None]
        if not used:
            results = [o.detach() * 0 for o in outputs]
        else:
            results = autograd_grad([g for g, _ in used], dummies, [t for _, t in used],
                                    allow_unused=True)
            results = [r if r is not None else o.detach() * 0 for r, o in zip(results, outputs)]
    if isinstance(output, (tuple, list)):
        return _detach_all(output), tuple(r.detach() for r in results)
    return output.detach(), results[0].detach()
