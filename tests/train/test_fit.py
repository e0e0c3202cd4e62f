"""Model.fit / evaluate / predict end to end on small generated problems."""
from __future__ import annotations

import functools

import numpy as np
import pytest

import ember
from ember import nn
from ember.models import Model, Sequential
from ember.nn import functional as F
from ember.train.metrics import Mean


def _blobs(count, seed=0, classes=3, features=8):
    """Gaussian clusters, one per class, well separated."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, (classes, features))
    labels = rng.integers(0, classes, count)
    points = centers[labels] + rng.normal(0, 1, (count, features))
    return points.astype(np.float32), labels


def _mlp(classes=3):
    return Sequential([nn.Linear(None, 32), nn.ReLU(), nn.Linear(32, classes)])


def test_fit_reaches_high_accuracy_and_history_has_every_key():
    x, y = _blobs(600)
    x, y, test_x, test_y = x[:400], y[:400], x[400:], y[400:]
    ember.manual_seed(0)
    model = _mlp()
    model.compile(optimizer=functools.partial(ember.optim.Adam, lr=0.01),
                  loss="cross_entropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=32, epochs=6, validation_data=(test_x, test_y),
                        verbose=0)
    assert set(history.history) == {"loss", "accuracy", "lr", "val_loss", "val_accuracy"}
    assert all(len(values) == 6 for values in history.history.values())
    assert history.epoch == list(range(6)) and model.history is history
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.history["val_accuracy"][-1] > 0.95
    loss, accuracy = model.evaluate(test_x, test_y, verbose=0)
    assert accuracy == pytest.approx(history.history["val_accuracy"][-1])
    predicted = model.predict(test_x, batch_size=64)
    assert isinstance(predicted, np.ndarray) and predicted.shape == (200, 3)
    assert np.mean(predicted.argmax(1) == test_y) == pytest.approx(accuracy)
    assert model.evaluate(test_x, test_y, verbose=0, return_dict=True)["accuracy"] == accuracy


class _Spy(Sequential):
    """Records the inputs each step saw."""

    def __init__(self, *layers):
        super().__init__(list(layers))
        self.trained, self.tested = [], []

    def train_step(self, batch):
        self.trained.append(batch[0].numpy().copy())
        return super().train_step(batch)

    def test_step(self, batch):
        self.tested.append(batch[0].numpy().copy())
        return super().test_step(batch)


def test_validation_split_holds_out_the_last_fraction_before_shuffling():
    x = np.arange(100, dtype=np.float32)[:, None]
    y = np.zeros((100, 1), np.float32)
    model = _Spy(nn.Linear(1, 1))
    model.compile("sgd", "mse", metrics=["mae"])
    history = model.fit(x, y, batch_size=16, epochs=1, validation_split=0.2, verbose=0)
    np.testing.assert_array_equal(np.concatenate(model.tested), x[80:])
    trained = np.concatenate(model.trained)[:, 0]
    assert sorted(trained) == list(range(80)) and list(trained) != list(range(80))  # shuffled
    assert {"val_loss", "val_mae"} <= set(history.history)


def test_string_optimizer_is_built_after_lazy_layers_see_a_batch():
    x, y = _blobs(64)
    model = _mlp()
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    assert isinstance(model.optimizer, ember.optim.Adam)
    optimized = {id(p) for group in model.optimizer.param_groups for p in group["params"]}
    assert optimized == {id(p) for p in model.parameters()} and len(optimized) == 4
    assert model.input_shape == (8,)
    lazy = _mlp()
    lazy.compile(ember.optim.Adam([nn.Parameter(ember.zeros(1))]), "cross_entropy")
    with pytest.raises(ember.EmberError, match="lazy layers"):
        lazy.fit(x, y, verbose=0)


class _Batches:
    """A re-iterable source of (x, y) batches with no Dataset or DataLoader behind it."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __iter__(self):
        return ((self.x[i:i + 32], self.y[i:i + 32]) for i in range(0, len(self.x), 32))


def test_fit_accepts_tensors_datasets_and_iterables_of_batches():
    x, y = _blobs(96)
    model = _mlp()
    model.compile(ember.optim.SGD, "cross_entropy", metrics=["acc"])
    model.fit(ember.asarray(x), ember.asarray(y), epochs=1, verbose=0)
    history = model.fit(_Batches(x, y), epochs=2, verbose=0)
    assert len(history.history["acc"]) == 2
    data = pytest.importorskip("ember.data")
    if not hasattr(data, "DataLoader"):
        pytest.skip("ember.data.DataLoader is not there yet")
    dataset = data.TensorDataset(ember.asarray(x), ember.asarray(y))
    assert len(model.fit(dataset, batch_size=32, epochs=1, verbose=0).history["loss"]) == 1
    loader = data.DataLoader(dataset, batch_size=32)
    assert len(model.evaluate(loader, verbose=0, return_dict=True)) == 2


def test_class_weight_scales_each_samples_loss():
    x, y = _blobs(40, classes=2)
    model = _mlp(classes=2)
    with ember.no_grad():
        model(ember.asarray(x))  # build the lazy layer
    model.compile(ember.optim.SGD(model.parameters(), lr=0.0), "cross_entropy")
    history = model.fit(x, y, batch_size=40, epochs=1, shuffle=False, verbose=0,
                        class_weight={0: 3.0, 1: 0.0})
    with ember.no_grad():
        per_sample = F.cross_entropy(model(ember.asarray(x)), ember.asarray(y),
                                     reduction="none").numpy()
    expected = np.mean(per_sample * np.where(y == 0, 3.0, 0.0))
    assert history.history["loss"][0] == pytest.approx(expected, rel=1e-5)


def test_initial_epoch_and_steps_per_epoch():
    x, y = _blobs(100)
    model = _mlp()
    model.compile("sgd", "cross_entropy")
    steps = []
    counter = ember.train.LambdaCallback(on_train_batch_end=lambda b, logs: steps.append(b))
    history = model.fit(x, y, batch_size=10, epochs=3, initial_epoch=1, steps_per_epoch=4,
                        callbacks=[counter], verbose=0)
    assert history.epoch == [1, 2]
    assert steps == [0, 1, 2, 3] * 2


def test_verbose_0_prints_nothing_and_verbose_2_prints_a_line_per_epoch(capsys):
    x, y = _blobs(64)
    model = _mlp()
    model.compile("adam", "cross_entropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, verbose=0, validation_split=0.25)
    model.evaluate(x, y, verbose=0)
    model.predict(x)
    assert capsys.readouterr() == ("", "")
    model.fit(x, y, epochs=3, verbose=2, validation_split=0.25)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    for epoch, line in enumerate(lines, 1):
        assert line.startswith(f"Epoch {epoch}/3") and "val_accuracy: " in line
    model.fit(x, y, epochs=2)  # 'auto' when stdout is not a TTY (pytest): nothing printed
    assert capsys.readouterr() == ("", "")


def test_predict_runs_in_eval_mode_without_gradients():
    x, _ = _blobs(50)
    model = Sequential(nn.Linear(8, 16), nn.Dropout(0.5), nn.Linear(16, 2))
    first, second = model.predict(x, batch_size=7), model.predict(x, batch_size=50)
    np.testing.assert_allclose(first, second, rtol=1e-5)
    assert all(p.grad is None for p in model.parameters())


def test_bad_configuration_raises_ember_errors():
    model = _mlp()
    with pytest.raises(ember.EmberError, match="unknown optimizer"):
        model.compile("adamm", "mse")
    with pytest.raises(ember.EmberError, match="unknown loss"):
        model.compile("adam", "cross_entropyy")
    x, y = _blobs(10)
    with pytest.raises(ember.EmberError, match="no loss"):
        Sequential(nn.Linear(8, 3)).fit(x, y, verbose=0)
    model.compile("adam", "cross_entropy", jit=True)
    assert model.jit_compile
    with pytest.raises(ember.ShapeError, match="samples"):
        model.fit(x, y[:5], verbose=0)


class _GAN(Model):
    """A 1-D GAN trained through an overridden train_step with two optimizers."""

    def __init__(self):
        super().__init__()
        self.generator = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
        self.critic = nn.Sequential(nn.Linear(1, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
        self.d_loss = Mean("d_loss")
        self.g_loss = Mean("g_loss")
        self.noise = ember.random.Generator(1)

    def compile(self, lr=5e-3):
        super().compile(optimizer=None)
        self.opt_g = ember.optim.Adam(self.generator.parameters(), lr=lr, betas=(0.5, 0.999))
        self.opt_d = ember.optim.Adam(self.critic.parameters(), lr=lr, betas=(0.5, 0.999))

    def sample(self, count):
        return self.generator(self.noise.normal(size=(count, 2)))

    def train_step(self, batch):
        real = batch[0]
        count = real.shape[0]
        ones, zeros = ember.ones((count, 1)), ember.zeros((count, 1))
        fake = self.sample(count)
        loss_d = (F.binary_cross_entropy_with_logits(self.critic(real), ones)
                  + F.binary_cross_entropy_with_logits(self.critic(fake.detach()), zeros))
        self.opt_d.zero_grad()
        loss_d.backward()
        self.opt_d.step()
        loss_g = F.binary_cross_entropy_with_logits(self.critic(self.sample(count)), ones)
        self.opt_g.zero_grad()
        loss_g.backward()
        self.opt_g.step()
        self.d_loss.update_state(loss_d.item())
        self.g_loss.update_state(loss_g.item())
        return {"d_loss": self.d_loss.result(), "g_loss": self.g_loss.result()}


def test_gan_trained_through_an_overridden_train_step_moves_toward_the_target():
    rng = np.random.default_rng(4)
    real = rng.normal(3.0, 0.5, (2048, 1)).astype(np.float32)
    ember.manual_seed(4)
    gan = _GAN()
    gan.compile()
    with ember.no_grad():
        before = abs(float(gan.sample(2000).numpy().mean()) - 3.0)
    history = gan.fit(real, batch_size=64, epochs=12, verbose=0)
    with ember.no_grad():
        after = abs(float(gan.sample(2000).numpy().mean()) - 3.0)
    assert set(history.history) == {"d_loss", "g_loss"}
    assert after < 0.25 * before, (before, after)
