"""The table `Model.summary()` prints: top-level layers, output shapes, parameter counts."""
from __future__ import annotations

from ember._core.autograd import no_grad
from ember._core.errors import EmberError
from ember.ops.creation import zeros

_WIDTHS = (34, 26, 12)


def _size(nbytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if nbytes < 1024 or unit == "GB":
            return f"{nbytes:.2f} {unit}"
        nbytes /= 1024


def _count(params) -> tuple[int, int]:
    """(number of values, bytes) of distinct parameters."""
    seen = {id(p): p for p in params}
    return (sum(p.size for p in seen.values()),
            sum(p.size * p._data.dtype.itemsize for p in seen.values()))


def _shape_text(output) -> str:
    if isinstance(output, (tuple, list)):
        return ", ".join(_shape_text(part) for part in output)
    shape = getattr(output, "shape", None)
    if shape is None:
        return "?"
    return str(("None",) + tuple(shape[1:])).replace("'None'", "None")


def _output_shapes(model, input_shape, dtype) -> dict:
    """id(child) -> output shape text, from one forward pass on a zero batch (eval mode, no
    gradients; every module's training flag is restored afterwards)."""
    shapes = {}
    children = [child for _, child in model.named_children()] or [model]
    handles = [child.register_forward_hook(
        lambda module, args, output: shapes.__setitem__(id(module), _shape_text(output)))
        for child in children]
    several = bool(input_shape) and isinstance(input_shape[0], tuple)
    inputs = [zeros((1, *shape), dtype=dtype, device=model._device())
              for shape in (input_shape if several else (input_shape,))]
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with no_grad():
            model(*inputs)
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes:
            object.__setattr__(module, "training", training)
    return shapes


def _row(*cells) -> str:
    return "".join(f" {str(cell):<{width - 1}}" for cell, width in zip(cells, _WIDTHS)).rstrip()


def summary_lines(model, input_shape, dtype=None) -> list[str]:
    """The lines of the summary table of `model`."""
    if input_shape is not None:
        shapes = _output_shapes(model, input_shape, dtype)
    elif model._has_unbuilt_layers():
        raise EmberError(f"{model.name}.summary(): lazy layers have no weights yet; pass "
                         f"input_shape (without the batch axis), e.g. summary((1, 28, 28)), "
                         f"or give the model an input_shape")
    else:
        shapes = {}
    children = list(model.named_children()) or [(model.name, model)]
    return table_lines(model, [(f"{name} ({type(child).__name__})", shapes.get(id(child), "?"),
                                _count(child.parameters())[0]) for name, child in children])


def table_lines(model, rows) -> list[str]:
    """The summary table: a header, one line per (layer text, output shape, parameter
    count) row, and the model's total, trainable and non-trainable parameter counts."""
    width = sum(_WIDTHS)
    lines = [f'Model: "{model.name}"', "_" * width,
             _row("Layer (type)", "Output Shape", "Param #"), "=" * width]
    lines += [_row(layer, shape, f"{count:,}") for layer, shape, count in rows]
    lines.append("=" * width)
    params = list(model.parameters())
    total = _count(params)
    trainable = _count(p for p in params if p.requires_grad)
    frozen = (total[0] - trainable[0], total[1] - trainable[1])
    for label, (count, nbytes) in (("Total", total), ("Trainable", trainable),
                                   ("Non-trainable", frozen)):
        lines.append(f"{label} params: {count:,} ({_size(nbytes)})")
    return lines
