"""Functional models: `ember.Input`, layers called on symbols, `ember.Model(inputs, outputs)`,
and `compile(jit=True)`."""
from __future__ import annotations

import numpy as np
import pytest

import ember
from ember import nn, optim
from ember._functional import Input
from ember.models import Model


def _mlp():
    ember.manual_seed(0)
    x = Input((6,))
    h = nn.Linear(6, 16)(x)
    h = nn.ReLU()(h)
    y = nn.Linear(16, 3)(h)
    return Model(inputs=x, outputs=y)


def _classification(count, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((count, 6)).astype(np.float32)
    return x, (x[:, 0] + x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1)


class Concat(nn.Module):
    def forward(self, a, b):
        return ember.concat([a, b], axis=1)


def test_issue_snippet_verbatim():
    x = ember.Input((784,))
    h = ember.nn.Linear(784, 64)(x); h = ember.nn.ReLU()(h); y = ember.nn.Linear(64, 10)(h)  # noqa: E702
    model = ember.Model(inputs=x, outputs=y)
    assert y._data._shape == (None, 10)
    batch = np.random.default_rng(0).standard_normal((5, 784)).astype(np.float32)
    reference = nn.functional.linear(nn.functional.relu(nn.functional.linear(
        ember.asarray(batch), model.linear.weight, model.linear.bias)),
        model.linear_1.weight, model.linear_1.bias)
    np.testing.assert_allclose(model(batch).numpy(), reference.numpy(), rtol=1e-6)


def test_layers_are_submodules_in_call_order_and_state_dict_round_trips(tmp_path):
    model = _mlp()
    assert list(model.state_dict()) == ["linear.weight", "linear.bias", "linear_1.weight",
                                        "linear_1.bias"]
    assert len(list(model.parameters())) == 4
    path = tmp_path / "weights.safetensors"
    ember.io.save_weights(model, path)
    other = _mlp()
    for p in other.parameters():
        p._data[...] = 0
    ember.io.load_weights(other, path)
    x = np.ones((2, 6), np.float32)
    np.testing.assert_array_equal(other(x).numpy(), model(x).numpy())


def test_summary_lists_inputs_and_layers_with_output_shapes():
    lines = []
    _mlp().summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "input" in text and "(None, 6)" in text
    rows = [line.split()[0] for line in lines if "(Linear)" in line or "(ReLU)" in line]
    assert rows == ["linear", "relu", "linear_1"]
    assert "(None, 16)" in text and "(None, 3)" in text
    assert "Total params: 163" in text


def test_shared_layer_accumulates_gradients_like_a_subclassed_module():
    ember.manual_seed(0)
    shared, head = nn.Linear(4, 4), nn.Linear(8, 1)
    a, b = Input((4,), name="a"), Input((4,), name="b")
    y = head(Concat()(nn.Tanh()(shared(a)), shared(b)))
    model = Model(inputs=[a, b], outputs=y)
    assert len(list(model.parameters())) == 4  # the shared layer counts once

    class Twin(nn.Module):
        def __init__(self):
            super().__init__()
            self.shared, self.head = nn.Linear(4, 4), nn.Linear(8, 1)

        def forward(self, a, b):
            return self.head(ember.concat([self.shared(a).tanh(), self.shared(b)], axis=1))

    twin = Twin()
    twin.load_state_dict({"shared." + k.split(".", 1)[1] if k.startswith("linear.") else
                          "head." + k.split(".", 1)[1]: v
                          for k, v in model.state_dict().items()})
    rng = np.random.default_rng(1)
    xa, xb = (rng.standard_normal((5, 4)).astype(np.float32) for _ in range(2))
    for net in (model, twin):
        net(xa, xb).sum().backward()
    np.testing.assert_allclose(model.linear.weight.grad.numpy(),
                               twin.shared.weight.grad.numpy(), rtol=1e-5)
    np.testing.assert_allclose(model.linear_1.weight.grad.numpy(),
                               twin.head.weight.grad.numpy(), rtol=1e-5)


def test_two_input_model_learns_with_fit():
    ember.manual_seed(0)
    left, right = Input((3,), name="left"), Input((3,), name="right")
    h = Concat()(nn.Linear(3, 8)(left), nn.Linear(3, 8)(right))
    y = nn.Linear(16, 2)(nn.ReLU()(h))
    model = Model(inputs=[left, right], outputs=y)
    rng = np.random.default_rng(0)
    xl, xr = (rng.standard_normal((600, 3)).astype(np.float32) for _ in range(2))
    labels = (xl[:, 0] - xr[:, 1] > 0).astype(np.int64)
    model.compile(optimizer=lambda params: optim.Adam(params, lr=0.01), loss="cross_entropy",
                  metrics=["accuracy"])
    model.fit((xl[:500], xr[:500]), labels[:500], batch_size=32, epochs=10, verbose=0)
    _, accuracy = model.evaluate((xl[500:], xr[500:]), labels[500:], verbose=0)
    assert accuracy > 0.95
    assert model.predict((xl[:3], xr[:3])).shape == (3, 2)


def test_multiple_outputs_train_with_weighted_losses_and_dict_calls():
    ember.manual_seed(0)
    x = Input((6,), name="features")
    body = nn.ReLU()(nn.Linear(6, 8)(x))
    classes, value = nn.Linear(8, 3)(body), nn.Linear(8, 1)(body)
    model = Model(inputs={"features": x}, outputs=[classes, value])
    data, labels = _classification(64)
    targets = data[:, :1] * 2
    out = model({"features": data})
    assert isinstance(out, list) and out[0].shape == (64, 3) and out[1].shape == (64, 1)
    model.compile(optimizer="adam", loss=["cross_entropy", "mse"], loss_weights=[1.0, 0.5])
    history = model.fit(data, (labels, targets), batch_size=16, epochs=3, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < losses[0]
    ce = nn.functional.cross_entropy(out[0], ember.asarray(labels)).item()
    mse = nn.functional.mse_loss(out[1], ember.asarray(targets)).item()
    total = model.compute_loss(data, (ember.asarray(labels), ember.asarray(targets)), out)
    np.testing.assert_allclose(total.item(), ce + 0.5 * mse, rtol=1e-5)


def test_errors_name_what_is_wrong():
    a, b = Input((2,), name="a"), Input((2,), name="b")
    y = nn.Linear(2, 1)(a)
    with pytest.raises(ember.EmberError, match=r"inputs \['b'\] are not used"):
        Model(inputs=[a, b], outputs=y)
    with pytest.raises(ember.EmberError, match="symbol 'a', which is not among the inputs"):
        Model(inputs=b, outputs=y)
    with pytest.raises(ember.EmberError, match="an expression"):
        Model(inputs=y, outputs=y)
    model = Model(inputs=a, outputs=y)
    with pytest.raises(ember.EmberError, match=r"takes 1 input\(s\) \['a'\], got 2"):
        model(np.ones((1, 2)), np.ones((1, 2)))
    with pytest.raises(ember.ShapeError, match="input 'a' has shape"):
        model(np.ones((1, 3), np.float32))
    with pytest.raises(ember.ShapeError):
        nn.Linear(3, 1)(a)


def test_ops_between_layers_and_nested_models():
    ember.manual_seed(0)
    x = Input((4,))
    inner = Model(inputs=x, outputs=nn.Linear(4, 4)(x) * 2 + 1)
    z = Input((4,))
    outer = Model(inputs=z, outputs=nn.Linear(4, 2)(inner(z).exp()))
    assert list(outer.state_dict()) == ["model.linear.weight", "model.linear.bias",
                                        "linear.weight", "linear.bias"]
    data = np.ones((3, 4), np.float32)
    expected = outer.linear((inner.linear(ember.asarray(data)) * 2 + 1).exp())
    np.testing.assert_allclose(outer(data).numpy(), expected.numpy(), rtol=1e-6)


def _fit_losses(jit: bool):
    model = _mlp()
    model.compile(optimizer=optim.Adam(model.parameters(), lr=0.01), loss="cross_entropy",
                  metrics=["accuracy"], jit=jit)
    x, y = _classification(70)
    ember.manual_seed(1)
    history = model.fit(x, y, batch_size=16, epochs=3, verbose=0)
    return model, history.history


def test_jit_fit_matches_eager_and_traces_once_per_batch_size():
    eager, eager_history = _fit_losses(False)
    model, history = _fit_losses(True)
    np.testing.assert_allclose(history["loss"], eager_history["loss"], rtol=1e-5)
    np.testing.assert_allclose(history["accuracy"], eager_history["accuracy"])
    for p, ref in zip(model.parameters(), eager.parameters()):
        np.testing.assert_allclose(p.numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)
    (step,) = model._jit_steps.values()
    assert step.trace_count == 2  # batches of 16, and the last one of 6


def test_jit_refuses_an_optimizer_it_cannot_trace():
    model = _mlp()
    with pytest.raises(ember.EmberError, match="RMSprop.step.. cannot run under ember.jit"):
        model.compile(optimizer="rmsprop", loss="cross_entropy", jit=True)
