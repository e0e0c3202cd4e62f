"""Every row of the layer table (tests/nn/layertable.py), run under `ember.jit`, must match
eager: forward in float32 and float64 (in the row's train/eval mode), the float64 gradients
of the inputs and of every parameter with `loss.backward()` traced into the same graph, and
a second call with the same shapes must reuse the trace, give the same result and leave the
module state (BatchNorm running statistics) where two eager calls leave it.

Eager is the reference here, not NumPy: the layer table already checks eager against its
NumPy references and central differences, so agreement with eager is what jit must show.
"""
from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.jit import jit
from ember.nn.layers.dropout import _DropoutNd
from tests.nn.layertable import collect_rows, draw_inputs, draw_params
from tests.nn.test_layertable import _build, _call, _flatten

# Rows that cannot run under jit yet, each with its reason (keep this short). The rows of the
# table are deterministic already: dropout layers run in eval mode or with p=0, and the
# Transformer rows run in eval mode, so no row draws random numbers inside the trace.
NOT_TRACEABLE: dict[str, str] = {}


def _zero_dropout(module) -> bool:
    """Set every dropout probability inside `module` to 0; whether any was above 0."""
    found = False
    for sub in module.modules():
        if isinstance(sub, _DropoutNd):
            found, sub.p = found or sub.p > 0, 0.0
        elif isinstance(getattr(sub, "dropout", None), float):  # MultiheadAttention, RNNs
            found, sub.dropout = found or sub.dropout > 0, 0.0
    return found


ROWS = [spec for spec in collect_rows() if spec.name not in NOT_TRACEABLE]
# Rows the table runs in eval mode because their layers hold dropout > 0 (Transformer and
# Dropout layers). Train mode with those probabilities would draw random masks inside the trace;
# until random draws are graph nodes they also run in train mode with every p set to 0, so
# the train-mode code paths are traced too.
DROPOUT_ROWS = {spec.name for spec in ROWS
                if not spec.train and _zero_dropout(_build(spec, "float32"))}
VARIANTS = [(spec, False) for spec in ROWS] + [(spec, True) for spec in ROWS
                                               if spec.name in DROPOUT_ROWS]
DTYPE_CASES = [pytest.param(spec, p0, dtype, id=f"{spec.name}{'-train-p0' * p0}-{dtype}")
               for spec, p0 in VARIANTS for dtype in ("float32", "float64")]
CASES = [pytest.param(spec, p0, id=f"{spec.name}{'-train-p0' * p0}") for spec, p0 in VARIANTS]


def _loaded(spec, dtype, train_p0=False):
    """The row's layer in `dtype` with the table's random parameters loaded; `train_p0`:
    in training mode with every dropout probability 0."""
    module = _build(spec, dtype)
    module.load_state_dict(draw_params(spec, module, dtype))
    if train_p0:
        _zero_dropout(module)
        module.train()
    return module


def _forward_fn(spec, module):
    # a jitted function returns a Tensor or a flat tuple: flatten nested (LSTM) outputs
    return lambda *inputs: tuple(_flatten(_call(spec, module, *inputs)))


def _numpy_outputs(outputs):
    return [out.numpy().copy() for out in outputs]


def _state(module):
    return {name: tensor.numpy().copy() for name, tensor in module.state_dict().items()}


@pytest.mark.parametrize("spec, train_p0, dtype", DTYPE_CASES)
def test_forward_under_jit_matches_eager(spec, train_p0, dtype):
    eager_module, jit_module = _loaded(spec, dtype, train_p0), _loaded(spec, dtype, train_p0)
    inputs = draw_inputs(spec, dtype)
    eager = _forward_fn(spec, eager_module)
    compiled = jit(_forward_fn(spec, jit_module))
    tight = dtype == "float64"
    rtol, atol = (1e-9, 1e-11) if tight else (spec.rtol * 10, spec.atol * 10)
    for call in range(2):  # the second call reuses the trace and sees the updated state
        expected = _numpy_outputs(eager(*[ember.asarray(x.copy()) for x in inputs]))
        got = compiled(*[ember.asarray(x.copy()) for x in inputs])
        assert compiled.trace_count == 1, compiled.retrace_reasons
        assert len(got) == len(expected)
        for out, ref in zip(got, expected):
            assert out.shape == ref.shape and out.numpy().dtype == ref.dtype
            np.testing.assert_allclose(out.numpy(), ref, rtol=rtol, atol=atol,
                                       err_msg=f"call {call + 1}")
    eager_state = _state(eager_module)
    for name, value in _state(jit_module).items():
        assert value.dtype == eager_state[name].dtype, name
        np.testing.assert_allclose(value, eager_state[name], rtol=rtol, atol=atol, err_msg=name)


def _grad_positions(spec, inputs):
    if spec.grad is not None:
        return tuple(spec.grad)
    return tuple(i for i, x in enumerate(inputs) if x.dtype.kind == "f")


def _gradient_step(spec, module, positions, count):
    """step(*inputs, *weights) -> (loss, *input gradients); parameter gradients go to .grad."""

    def step(*args):
        inputs, weights = list(args[:count]), args[count:]
        for position in positions:
            inputs[position] = inputs[position].requires_grad_(True)
        outputs = _flatten(_call(spec, module, *inputs))
        loss = sum((out * w).sum() for out, w in zip(outputs, weights) if w is not None)
        loss.backward()
        return (loss, *[inputs[position].grad for position in positions])

    return step


def _gradients(spec, module, step, inputs, weights):
    module.zero_grad()
    outs = step(*[ember.asarray(x.copy()) for x in inputs], *weights)
    params = {name: None if p.grad is None else p.grad.numpy().copy()
              for name, p in module.named_parameters()}
    return _numpy_outputs(outs), params


@pytest.mark.parametrize("spec, train_p0", CASES)
def test_gradients_under_jit_match_eager(spec, train_p0):
    eager_module = _loaded(spec, "float64", train_p0)
    jit_module = _loaded(spec, "float64", train_p0)
    if not spec.param_grad:  # the row checks no parameter gradients: nor do we
        for module in (eager_module, jit_module):
            for p in module.parameters():
                p.requires_grad_(False)
    # seed 0, not the layer table's seed 2: with seed 2 every unit of the ReLU RNN cell row
    # is dead, so all its gradients are zero and the comparison would prove nothing
    inputs = draw_inputs(spec, "float64", seed=0)
    positions = _grad_positions(spec, inputs)
    # fixed random weights: loss = sum(outputs * weights) reaches every output element
    with ember.no_grad():
        shapes = [out.shape for out in _flatten(_call(spec, _loaded(spec, "float64", train_p0),
                                                      *[ember.asarray(x) for x in inputs]))]
    rng = np.random.default_rng(3)
    weights = [ember.asarray(rng.standard_normal(shape)) for shape in shapes]
    eager = _gradient_step(spec, eager_module, positions, len(inputs))
    compiled = jit(_gradient_step(spec, jit_module, positions, len(inputs)))
    for call in range(2):  # .grad is zeroed before each call, so both calls give the same
        expected, expected_params = _gradients(spec, eager_module, eager, inputs, weights)
        got, got_params = _gradients(spec, jit_module, compiled, inputs, weights)
        assert any(np.any(g) for g in [*expected[1:], *expected_params.values()]
                   if g is not None), "every gradient is zero: the comparison proves nothing"
        assert compiled.trace_count == 1, compiled.retrace_reasons
        for index, (out, ref) in enumerate(zip(got, expected)):
            what = "loss" if index == 0 else f"input {positions[index - 1]} gradient"
            np.testing.assert_allclose(out, ref, rtol=1e-9, atol=1e-11,
                                       err_msg=f"{what}, call {call + 1}")
        assert got_params.keys() == expected_params.keys()
        for name, ref in expected_params.items():
            assert (got_params[name] is None) == (ref is None), name
            if ref is not None:
                np.testing.assert_allclose(got_params[name], ref, rtol=1e-9, atol=1e-11,
                                           err_msg=f"{name}.grad, call {call + 1}")
    eager_state = _state(eager_module)
    for name, value in _state(jit_module).items():
        np.testing.assert_allclose(value, eager_state[name], rtol=1e-9, atol=1e-11,
                                   err_msg=name)


def test_every_row_runs_under_jit():
    every = collect_rows()
    print(f"layer table under jit: {len(ROWS)} of {len(every)} rows; also in train mode with "
          f"dropout 0: {sorted(DROPOUT_ROWS)}")
    assert {spec.name for spec in every} - {spec.name for spec in ROWS} == set(NOT_TRACEABLE)
