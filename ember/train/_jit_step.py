"""`Model.compile(jit=True)`: the default train step (forward, loss, backward, optimizer step)
as one `ember.jit` graph; metrics are updated outside it from the returned loss and outputs.

One jitted function per batch structure (how many inputs and targets, with or without sample
weights), so the usual fit traces once and again only for a differently sized last batch.
The optimizer's group options (learning rate, ...) are a static argument: the traced update
bakes them in, so a changed learning rate (a scheduler) retraces instead of being ignored.
"""
from __future__ import annotations

from ember._core.errors import EmberError
from ember.jit.api import JitFunction


def check_traceable(optimizer_class: type, model_name: str):
    """Raise when the optimizer's step cannot be recorded by ember.jit."""
    if getattr(optimizer_class, "_traced_rule", None) is None:
        raise EmberError(f"{model_name}.compile(jit=True): {optimizer_class.__name__}.step() "
                         f"cannot run under ember.jit yet; use SGD, Adam or AdamW, or "
                         f"compile(jit=False)")


def _options(optimizer) -> tuple:
    """The group options as a hashable value (part of the jit signature)."""
    def hashable(value):
        return tuple(value) if isinstance(value, list) else value

    return tuple(tuple(sorted((key, hashable(value)) for key, value in group.items()
                              if key != "params")) for group in optimizer.param_groups)


def _parts(value) -> tuple:
    return () if value is None else value if isinstance(value, tuple) else (value,)


def compiled_train_step(model, batch) -> dict:
    """`Model.train_step` through ember.jit; returns the same logs."""
    x, y, sample_weight = batch
    optimizer = model._live_optimizer()
    check_traceable(type(optimizer), model.name)
    layout = (isinstance(x, tuple), len(_parts(x)), isinstance(y, tuple), len(_parts(y)),
              y is None, sample_weight is not None)
    steps = model.__dict__.setdefault("_jit_steps", {})
    key = (id(optimizer), layout)
    if key not in steps:
        steps[key] = JitFunction(_step_function(model, optimizer, layout))
    optimizer.zero_grad()
    tensors = (*_parts(x), *_parts(y), *(() if sample_weight is None else (sample_weight,)))
    loss, *outputs = steps[key](*tensors, _options(optimizer))
    y_pred = _restructure(model, outputs)
    return model.compute_metrics(x, y, y_pred, sample_weight, loss)


def _step_function(model, optimizer, layout):
    x_tuple, x_count, y_tuple, y_count, y_none, weighted = layout

    def train_step(*arguments):
        tensors = arguments[:-1]  # the last: the optimizer options (in the signature only)
        xs, ys = tensors[:x_count], tensors[x_count:x_count + y_count]
        x = tuple(xs) if x_tuple else xs[0]
        y = None if y_none else tuple(ys) if y_tuple else ys[0]
        sample_weight = tensors[-1] if weighted else None
        y_pred = model._call(x)
        loss = model.compute_loss(x, y, y_pred, sample_weight)
        loss.backward()
        optimizer.step()
        model.__dict__["_jit_output_structure"] = _structure(y_pred)
        return (loss, *_flat(y_pred))

    return train_step


def _structure(y_pred):
    if isinstance(y_pred, dict):
        return ("dict", tuple(y_pred))
    if isinstance(y_pred, (tuple, list)):
        return (type(y_pred), len(y_pred))
    return None


def _flat(y_pred) -> tuple:
    if isinstance(y_pred, dict):
        return tuple(y_pred.values())
    return tuple(y_pred) if isinstance(y_pred, (tuple, list)) else (y_pred,)


def _restructure(model, outputs):
    structure = model.__dict__.get("_jit_output_structure")
    if structure is None:
        return outputs[0]
    kind, shape = structure
    if kind == "dict":
        return dict(zip(shape, outputs))
    return kind(outputs)
