"""`loss.backward()` inside `ember.jit`: the backward pass is recorded into the same graph,
parameter gradients are written back to `.grad`, module modes are part of the signature."""
from __future__ import annotations

import numpy as np
import pytest

import ember
import ember.nn.functional as F
from ember import nn
from ember.jit import jit
from tests.ops.optable import collect_rows, draw_inputs


def _mlp():
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4))


def _cnn():
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(4 * 3 * 3, 5))


def _data(x_shape, classes, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(np.float32)
    return ember.asarray(x), ember.asarray(rng.integers(0, classes, x_shape[0]))


def _step_for(model):
    def step(x, y):
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss
    return step


@pytest.mark.parametrize("make, x_shape, classes", [(_mlp, (8, 6), 4),
                                                    (_cnn, (3, 2, 6, 6), 5)])
def test_training_step_matches_eager_and_traces_once(make, x_shape, classes):
    ember.manual_seed(0)
    model = make()
    step = _step_for(model)
    compiled = jit(step)
    for seed in range(3):
        x, y = _data(x_shape, classes, seed)
        model.zero_grad()
        eager_loss = step(x, y).numpy()
        eager_grads = [p.grad.numpy().copy() for p in model.parameters()]
        model.zero_grad()
        loss = compiled(x, y)
        np.testing.assert_allclose(loss.numpy(), eager_loss, rtol=1e-5)
        for p, ref in zip(model.parameters(), eager_grads):
            np.testing.assert_allclose(p.grad.numpy(), ref, rtol=1e-5, atol=1e-6)
    assert compiled.trace_count == 1
    graph = str(compiled.lower(x, y))
    assert "softmax_cross_entropy_grad" in graph or "softmax_cross_entropy" in graph
    assert any(name in graph for name in ("conv2d_grad", "matmul", "dense"))
    assert not any(p.grad is not None and type(p.grad) is not ember.Tensor
                   for p in model.parameters())


def test_gradients_accumulate_like_eager():
    ember.manual_seed(1)
    model = _mlp()
    x, y = _data((4, 6), 4, 0)
    compiled = jit(_step_for(model))
    model.zero_grad()
    compiled(x, y)
    once = [p.grad.numpy().copy() for p in model.parameters()]
    compiled(x, y)  # no zero_grad: .grad accumulates, as eager backward does
    for p, ref in zip(model.parameters(), once):
        np.testing.assert_allclose(p.grad.numpy(), 2 * ref, rtol=1e-5, atol=1e-6)


def test_graph_contains_the_backward_pass():
    ember.manual_seed(2)
    model = _mlp()
    graph = jit(_step_for(model)).lower(*_data((4, 6), 4, 0))
    names = [node.prim.name for node in graph.nodes]
    assert "softmax_cross_entropy" in names
    assert "softmax_cross_entropy_grad" in names  # a backward primitive
    # loss + one gradient per parameter
    assert len(graph.outputs) == 1 + len(list(model.parameters()))


def test_module_mode_is_part_of_the_signature():
    ember.manual_seed(3)
    model = _mlp()
    compiled = jit(_step_for(model))
    x, y = _data((4, 6), 4, 0)
    compiled(x, y)
    model.eval()
    compiled(x, y)
    assert compiled.trace_count == 2
    assert compiled.retrace_reasons == ["retracing step: module Sequential mode train -> eval"]
    model.train()
    compiled(x, y)  # the train-mode trace is still cached
    assert compiled.trace_count == 2


def test_jit_of_a_module_and_grad_mode_signature():
    ember.manual_seed(4)
    model = _mlp()
    compiled = jit(model)
    x, _ = _data((4, 6), 4, 0)
    with ember.no_grad():
        np.testing.assert_allclose(compiled(x).numpy(), model(x).numpy(), rtol=1e-6)
    compiled(x)
    assert compiled.retrace_reasons == ["retracing Sequential: grad mode off -> on"]


def test_autograd_grad_inside_jit_returns_gradients():
    weight = ember.asarray(np.arange(3.0)).requires_grad_(True)

    @jit
    def gradient(x):
        return ember.autograd.grad((weight * weight * x).sum(), weight)[0]

    np.testing.assert_allclose(gradient(ember.ones(3, dtype=ember.float64)).numpy(),
                               2 * np.arange(3.0))
    assert weight.grad is None


def test_backward_of_a_value_without_grad_raises_like_eager():
    def f(x):
        x.sum().backward()
        return x

    with pytest.raises(ember.EmberError, match="does not require grad"):
        jit(f)(ember.ones(3))


# ---- op table: first derivatives under jit match eager -------------------------------------
NOT_TRACEABLE = {"getitem-mask": "output shape depends on the values (static shapes only)"}
GRAD_ROWS = [spec for spec in collect_rows()
             if "float64" in spec.dtypes and spec.grad != () and spec.name not in NOT_TRACEABLE]


def _row_gradients(spec, jitted: bool):
    arrays = draw_inputs(spec, spec.shapes[0], "float64")
    leaves = [ember.asarray(array.copy()) for array in arrays]
    positions = spec.grad if spec.grad is not None else tuple(
        i for i, array in enumerate(arrays) if array.dtype.kind == "f")
    for position in positions:
        leaves[position].requires_grad_(True)
    rng = np.random.default_rng(0)

    def outputs():
        outs = spec.fn(*leaves)
        return [o for o in (outs if isinstance(outs, (tuple, list)) else [outs])
                if o.requires_grad]

    cotangents = [ember.asarray(rng.standard_normal(o.shape)) for o in outputs()]

    def step(*cotangents):
        loss = sum((out * c).sum() for out, c in zip(outputs(), cotangents))
        loss.backward()
        return loss

    loss = (jit(step) if jitted else step)(*cotangents)
    return loss.numpy(), [None if leaves[p].grad is None else leaves[p].grad.numpy()
                          for p in positions]


@pytest.mark.parametrize("spec", GRAD_ROWS, ids=[spec.name for spec in GRAD_ROWS])
def test_row_gradients_under_jit_match_eager(spec):
    try:
        eager_loss, eager_grads = _row_gradients(spec, jitted=False)
    except ember.EmberError:
        pytest.skip("no first derivative for this row in eager mode either")
    loss, grads = _row_gradients(spec, jitted=True)
    np.testing.assert_allclose(loss, eager_loss, rtol=1e-6, atol=1e-9)
    for got, ref in zip(grads, eager_grads):
        assert (got is None) == (ref is None)
        if ref is not None:
            np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-9)


def test_dropout_under_jit_draws_afresh_each_call_like_eager():
    layer = ember.nn.Sequential(ember.nn.Linear(4, 64), ember.nn.Dropout(0.5))
    step = ember.jit(lambda x: layer(x))
    ember.manual_seed(3)
    compiled = [step(ember.ones((2, 4))).numpy() for _ in range(3)]
    ember.manual_seed(3)
    eager = [layer(ember.ones((2, 4))).numpy() for _ in range(3)]
    for got, ref in zip(compiled, eager):  # the same numbers: one stream, drawn in order
        np.testing.assert_allclose(got, ref, rtol=1e-6)
    assert not np.array_equal(compiled[0], compiled[1])  # a new mask every call
    assert step.trace_count == 1
    assert [node.prim.name for node in step.lower(ember.ones((2, 4))).nodes].count("random") == 1
    layer.eval()
    np.testing.assert_allclose(step(ember.ones((2, 4))).numpy(),
                               layer(ember.ones((2, 4))).numpy(), rtol=1e-6)


class _Recurrent(nn.Module):
    """LSTM, GRU and their cells, layer norm and cross-entropy: every primitive whose
    forward saves residuals for its vjp."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 4, batch_first=True, bidirectional=True)
        self.gru = nn.GRU(8, 4)
        self.lstm_cell = nn.LSTMCell(4, 4)
        self.gru_cell = nn.GRUCell(4, 4)
        self.norm = nn.LayerNorm(4)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        h, _ = self.lstm(x)
        h, _ = self.gru(h.permute(1, 0, 2))
        last = h[-1]
        hx, _ = self.lstm_cell(last)
        return self.head(self.norm(self.gru_cell(hx, last)))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_saved_residuals_under_jit_match_eager_gradients(dtype):
    """The fast vjps read the forward's saved arrays from the graph, typed exactly."""
    from ember.jit.execute import Executable

    ember.manual_seed(0)
    model = _Recurrent().to(dtype)
    rng = np.random.default_rng(0)
    x = ember.asarray(rng.standard_normal((2, 5, 3)).astype(dtype))
    y = ember.asarray(rng.integers(0, 3, 2))
    step = _step_for(model)
    eager_loss = step(x, y).numpy()
    eager = [p.grad.numpy().copy() for p in model.parameters()]
    model.zero_grad()
    compiled = jit(step)
    np.testing.assert_allclose(compiled(x, y).numpy(), eager_loss, rtol=1e-6)
    tolerance = 1e-5 if dtype == "float32" else 1e-12
    for parameter, ref in zip(model.parameters(), eager):
        np.testing.assert_allclose(parameter.grad.numpy(), ref, rtol=tolerance, atol=tolerance)
    graph = compiled.lower(x, y)
    saving = {node.prim.name for node in graph.nodes if node.residuals}
    assert saving == {"lstm_sequence", "gru_sequence", "lstm_cell", "gru_cell", "normalize",
                      "softmax_cross_entropy"}
    # the composite (create_graph) backward is not used: no per-step sigmoid/tanh ops
    assert not {"sigmoid", "tanh"} & {node.prim.name for node in graph.nodes}
    graph.verify()
    captured = [tensor._data for _, tensor in graph.captures]
    Executable(graph, check_types=True)(x.numpy(), y.numpy())  # residual avals are exact
    assert all(a is b for a, b in zip(captured, [t._data for _, t in graph.captures]))
