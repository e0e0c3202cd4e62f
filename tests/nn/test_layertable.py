"""Checks derived from the layer table (see layertable.py)."""
from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.autograd import gradcheck
from ember.nn.utils import functional_call
from tests.nn.layertable import collect_rows, draw_inputs, draw_params

try:
    import torch
except ImportError:  # PyTorch is an optional reference
    torch = None

ROWS = collect_rows()

CASES = [pytest.param(spec, id=spec.name) for spec in ROWS]
DTYPE_CASES = [pytest.param(spec, dtype, id=f"{spec.name}-{dtype}")
               for spec in ROWS for dtype in ("float32", "float64")]
TORCH_CASES = [case for case in CASES if case.values[0].torch is not None and torch]


def _as_list(value):
    return list(value) if isinstance(value, (tuple, list)) else [value]


def _flatten(values):
    """Outputs may nest (LSTM: out, (h, c)); compare them leaf by leaf."""
    out = []
    for value in _as_list(values):
        if isinstance(value, (tuple, list)):
            out.extend(_flatten(value))
        elif value is not None:
            out.append(value)
    return out


def _build(spec, dtype):
    ember.manual_seed(0)
    module = spec.build().to(dtype)
    return module.train(spec.train)


def _call(spec, module, *inputs):
    return spec.call(module, *inputs) if spec.call is not None else module(*inputs)


class _Caller(ember.nn.Module):
    """Wraps a row's layer so `functional_call` goes through the row's `call`."""

    def __init__(self, spec, layer):
        super().__init__()
        self.spec = spec
        self.layer = layer

    def forward(self, *inputs):
        return _call(self.spec, self.layer, *inputs)


@pytest.mark.parametrize("spec", CASES)
def test_state_dict_names_and_shapes_match_pytorch(spec):
    module = _build(spec, "float32")
    got = {name: tuple(t.shape) for name, t in module.state_dict().items()}
    assert got == {name: tuple(shape) for name, shape in spec.params.items()}


@pytest.mark.parametrize("spec, dtype", DTYPE_CASES)
def test_forward_matches_reference(spec, dtype):
    module = _build(spec, dtype)
    params = draw_params(spec, module, dtype)
    module.load_state_dict(params)
    inputs = draw_inputs(spec, dtype)
    got = _flatten(_call(spec, module, *[ember.asarray(x) for x in inputs]))
    as64 = {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in params.items()}
    expected = _flatten(spec.ref(as64, *[x.astype(np.float64) if x.dtype.kind == "f" else x
                                         for x in inputs]))
    assert len(got) == len(expected)
    scale = 1.0 if dtype == "float64" else 100.0
    for out, ref in zip(got, expected):
        ref = np.asarray(ref)
        assert out.shape == ref.shape, f"shape {out.shape} != reference {ref.shape}"
        if ref.dtype.kind == "f":
            assert out.numpy().dtype == np.dtype(dtype), f"{out.dtype} is not {dtype}"
        np.testing.assert_allclose(out.numpy(), ref, rtol=spec.rtol * scale,
                                   atol=spec.atol * scale)


@pytest.mark.parametrize("spec", CASES)
def test_gradients_of_inputs_and_parameters(spec):
    module = _build(spec, "float64")
    module.load_state_dict(draw_params(spec, module, "float64"))
    inputs = [ember.asarray(x) for x in draw_inputs(spec, "float64", seed=2)]
    positions = spec.grad if spec.grad is not None else tuple(
        i for i, x in enumerate(inputs) if x.dtype.kind == "f")
    for position in positions:
        inputs[position].requires_grad_(True)
    caller = _Caller(spec, module)
    names = [name for name, p in caller.named_parameters() if spec.param_grad]
    params = [p.detach().requires_grad_(True) for name, p in caller.named_parameters()
              if spec.param_grad]
    assert positions or params, "a row needs something to gradient-check"

    def run(*tensors):
        swapped = dict(zip(names, tensors[len(inputs):]))
        return _flatten(functional_call(caller, swapped, *tensors[:len(inputs)]))

    assert gradcheck(run, [*inputs, *params], atol=spec.grad_atol, rtol=spec.grad_rtol)


@pytest.mark.parametrize("spec", CASES)
def test_state_dict_round_trips_bit_exactly(spec):
    source = _build(spec, "float32")
    source.load_state_dict(draw_params(spec, source, "float32"))
    saved = {name: t.numpy().copy() for name, t in source.state_dict().items()}
    target = _build(spec, "float32")
    target.load_state_dict(saved)
    for name, tensor in target.state_dict().items():
        assert tensor.numpy().dtype == saved[name].dtype
        assert tensor.numpy().tobytes() == saved[name].tobytes(), name
    inputs = [ember.asarray(x) for x in draw_inputs(spec, "float32")]
    for a, b in zip(_flatten(_call(spec, source, *inputs)),
                    _flatten(_call(spec, target, *inputs))):
        assert a.numpy().tobytes() == b.numpy().tobytes()


@pytest.mark.torch_reference
@pytest.mark.parametrize("spec", TORCH_CASES)
def test_agrees_with_pytorch(spec):
    module = _build(spec, "float64")
    params = draw_params(spec, module, "float64")
    module.load_state_dict(params)
    torch.manual_seed(0)
    reference = spec.torch().double().train(spec.train)
    reference.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in params.items()})
    inputs = draw_inputs(spec, "float64")
    got = _flatten(_call(spec, module, *[ember.asarray(x) for x in inputs]))
    call = spec.torch_call or spec.call or (lambda m, *x: m(*x))
    with torch.no_grad():
        expected = _flatten(call(reference, *[torch.from_numpy(x.copy()) for x in inputs]))
    for out, ref in zip(got, expected):
        np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-6, atol=1e-8)
