"""save_weights / load_weights, and whole-model files: save_model / load_model rebuild
Sequential models and registered modules from JSON, never by importing or unpickling."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

import ember
import ember.io
from ember import nn
from ember._core.errors import EmberError
from ember.io import (
    CheckpointError,
    load_model,
    load_weights,
    model_files,
    register,
    save_model,
    weights,
)

# Built-in layers record their constructor arguments once Module.__init_subclass__ applies
# ember.io.capture_init_arguments; until that hook is wired, whole-model tests are skipped.
needs_capture = pytest.mark.skipif(
    not getattr(nn.Linear.__init__, "_ember_captures_arguments", False),
    reason="Module.__init_subclass__ does not call ember.io.capture_init_arguments yet")


@register
class IoTestBlock(nn.Module):
    def __init__(self, channels: int, activation: str = "relu", kernel=(3, 3)):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel, padding=(kernel[0] // 2, 1))
        self.norm = nn.BatchNorm2d(channels)
        self.activation = activation

    def forward(self, x):
        out = self.norm(self.conv(x))
        return x + (out.relu() if self.activation == "relu" else out.tanh())


@register(name="io-test-residual")
class IoTestResidual(nn.Module):
    def __init__(self, inner: nn.Module, scale: float = float("inf")):
        super().__init__()
        self.inner = inner
        self.scale = scale

    def forward(self, x):
        return x + self.inner(x) * (1.0 if self.scale == float("inf") else self.scale)


@register
class IoTestNet(ember.Model):
    def __init__(self, channels=4, classes=3, names=("a", "b"), dtype=ember.float32):
        super().__init__()
        self.stem = nn.Conv2d(1, channels, 3, padding=1)
        self.blocks = nn.ModuleDict({name: IoTestBlock(channels, "tanh") for name in names})
        self.head = nn.Sequential(OrderedDict(pool=nn.AdaptiveAvgPool2d(1),
                                              flat=nn.Flatten(),
                                              fc=nn.Linear(channels, classes)))
        self.to(dtype)

    def forward(self, x):
        x = self.stem(x)
        for block in self.blocks.values():
            x = block(x)
        return self.head(x)


class IoTestUnregistered(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)

    def forward(self, x):
        return self.fc(x)


def _cnn():
    ember.manual_seed(0)
    return ember.Sequential([
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Dropout(0.25), nn.Flatten(), nn.Linear(4 * 4 * 4, 10)], name="cnn",
        input_shape=(1, 8, 8))


def _images(seed=0):
    return ember.asarray(np.random.default_rng(seed).normal(size=(5, 1, 8, 8))
                         .astype(np.float32))


def _train_a_little(model):
    model.train()
    model(_images(1))  # moves the batch-norm statistics away from their initial values
    model.eval()


def _same_state(a: nn.Module, b: nn.Module) -> bool:
    left, right = a.state_dict(), b.state_dict()
    return list(left) == list(right) and all(
        left[k].dtype == right[k].dtype and left[k].numpy().tobytes() == right[k].numpy()
        .tobytes() for k in left)


# ---- weights files ------------------------------------------------------------------------
def test_weights_round_trip_into_a_fresh_module(tmp_path):
    source, target = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)), \
        nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    source(ember.randn((6, 3)))
    path = tmp_path / "w.safetensors"
    ember.io.save_weights(source, path, metadata={"epoch": 2})
    result = load_weights(target, path)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert _same_state(source, target)
    assert ember.io.load_metadata(path) == {"epoch": 2}


def test_load_weights_keeps_the_module_dtype_and_objects(tmp_path):
    source, target = nn.Linear(3, 4), nn.Linear(3, 4).half()
    weight = target.weight
    path = tmp_path / "w.safetensors"
    ember.io.save_weights(source, path)
    load_weights(target, path)
    assert target.weight is weight and target.weight.dtype == ember.float16
    assert np.array_equal(target.weight.numpy(), source.weight.numpy().astype(np.float16))


def test_mismatched_weights_are_an_error_and_change_nothing(tmp_path):
    path = tmp_path / "w.safetensors"
    ember.io.save_weights(nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 5)), path)
    target = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 6))
    before = {k: v.numpy().copy() for k, v in target.state_dict().items()}
    with pytest.raises(CheckpointError, match="wrong shapes: 1.weight") as error:
        load_weights(target, path)
    assert str(path) in str(error.value)
    assert all(np.array_equal(before[k], v.numpy()) for k, v in target.state_dict().items())


def test_load_weights_strict_false_reports_the_differences(tmp_path):
    path = tmp_path / "w.safetensors"
    ember.io.save_weights(nn.Sequential(nn.Linear(3, 4)), path)
    target = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    with pytest.raises(CheckpointError, match="missing keys: 1.weight, 1.bias"):
        load_weights(target, path)
    result = load_weights(target, path, strict=False)
    assert result.missing_keys == ["1.weight", "1.bias"]


# ---- whole-model files --------------------------------------------------------------------
@needs_capture
def test_sequential_cnn_round_trip(tmp_path):
    model = _cnn()
    _train_a_little(model)
    path = tmp_path / "cnn.safetensors"
    save_model(model, path)
    loaded = load_model(path)
    assert type(loaded) is ember.Sequential and loaded.name == "cnn"
    assert loaded.input_shape == (1, 8, 8) and not loaded.training
    assert _same_state(model, loaded)
    assert np.array_equal(model(_images()).numpy(), loaded(_images()).numpy())
    assert repr(loaded) == repr(model)


@needs_capture
def test_layers_added_after_construction_are_saved(tmp_path):
    model = ember.Sequential()
    model.add(nn.Linear(3, 4))
    model.add(nn.Tanh())
    tail = nn.Sequential(OrderedDict(out=nn.Linear(4, 2)))
    tail.append(nn.Sigmoid())
    model.add(tail)
    path = tmp_path / "m.safetensors"
    save_model(model, path)
    loaded = load_model(path)
    x = ember.randn((3, 3))
    assert repr(loaded) == repr(model)
    assert np.array_equal(model(x).numpy(), loaded(x).numpy())


@needs_capture
@pytest.mark.parametrize("dtype", [ember.float32, ember.float64])
def test_nested_registered_modules_round_trip(tmp_path, dtype):
    ember.manual_seed(1)
    model = IoTestResidual(IoTestNet(4, 3, names=("x", "y", "z"), dtype=dtype), scale=0.5)
    model.inner.train()
    model.inner(_images().astype(dtype))
    model.eval()
    path = tmp_path / "net.safetensors"
    save_model(model, path, metadata={"note": "nested"})
    loaded = load_model(path)
    assert type(loaded) is IoTestResidual and type(loaded.inner) is IoTestNet
    assert list(loaded.inner.blocks) == ["x", "y", "z"]
    assert loaded.inner.blocks["x"].activation == "tanh"
    assert _same_state(model, loaded)
    images = _images().astype(dtype)
    assert np.array_equal(model.inner(images).numpy(), loaded.inner(images).numpy())
    assert ember.io.load_metadata(path) == {"note": "nested"}


@needs_capture
def test_saved_dtypes_come_back(tmp_path):
    model = ember.Sequential([nn.Linear(3, 4), nn.LayerNorm(4)]).to(ember.bfloat16)
    path = tmp_path / "bf16.safetensors"
    save_model(model, path)
    loaded = load_model(path)
    assert all(p.dtype == ember.bfloat16 for p in loaded.parameters())
    assert _same_state(model, loaded)


@needs_capture
def test_lazy_layers_round_trip(tmp_path):
    model = ember.Sequential([nn.Linear(None, 3), nn.ReLU()])
    model(ember.ones((2, 5)))
    path = tmp_path / "lazy.safetensors"
    save_model(model, path)
    loaded = load_model(path)
    assert loaded[0].in_features == 5
    assert _same_state(model, loaded)


@needs_capture
def test_a_model_loads_back_into_weights_and_vice_versa(tmp_path):
    model = _cnn()
    path = tmp_path / "cnn.safetensors"
    save_model(model, path)
    other = _cnn()
    load_weights(other, path)  # a whole-model file is also a weights file
    assert _same_state(model, other)
    ember.io.save_weights(model, path)
    with pytest.raises(CheckpointError, match="weights only"):
        load_model(path)


@needs_capture
def test_unregistered_classes_are_refused_when_saving():
    with pytest.raises(EmberError, match="IoTestUnregistered, which is not registered"):
        save_model(ember.Sequential([nn.ReLU(), IoTestUnregistered()]), "/nonexistent/x")
    with pytest.raises(EmberError, match="functional ember.Model"):
        save_model(ember.Model(), "/nonexistent/x")


@needs_capture
def test_arguments_that_are_not_data_are_refused_when_saving(tmp_path):
    model = IoTestResidual(nn.ReLU(), scale=np.zeros(3))
    with pytest.raises(EmberError, match="ndarray, which a model file cannot store"):
        save_model(model, tmp_path / "m.safetensors")
    assert not (tmp_path / "m.safetensors").exists()


def _crafted(path, config, state=None):
    """A well-formed, checksummed model file whose architecture says what a test wants."""
    weights._write(state or {}, path, None, extra={"model": {"config": config,
                                                              "training": False}})


def test_load_model_never_imports_names_from_the_file(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.safetensors"
    _crafted(path, {"class": "os.system", "args": [f"touch {marker}"], "kwargs": {}})
    with pytest.raises(CheckpointError, match="'os.system'.*not registered") as error:
        load_model(path)
    assert str(path) in str(error.value) and not marker.exists()
    _crafted(path, {"class": "ember.nn.Sequential", "kwargs": {}, "children": [
        ["0", {"class": "subprocess.Popen", "args": [["touch", str(marker)]]}]]})
    with pytest.raises(CheckpointError, match="not registered"):
        load_model(path)
    assert not marker.exists()


@pytest.mark.parametrize("config, message", [
    ({"class": "ember.nn.Linear", "args": ["three", 4]}, "rebuilding model as Linear"),
    ({"class": "ember.nn.Linear", "args": {"in": 3}}, "not an encoded value"),
    ({"class": "ember.nn.Linear", "args": [{"pickle": "x"}, 4]}, "not an encoded value"),
    ({"class": "ember.nn.Linear", "args": [3, 4], "kwargs": {"dtype": {"dtype": "q8"}}},
     "unknown dtype"),
    ({"class": "ember.nn.Sequential", "kwargs": {}, "children": [["training", {
        "class": "ember.nn.ReLU"}]]}, "not a usable module name"),
    ({"class": "ember.nn.Sequential", "kwargs": {}, "children": "0"}, "no list of children"),
    ({"args": []}, "not a class config"),
    ([1, 2], "not a class config"),
])
def test_malformed_architectures_are_errors(tmp_path, config, message):
    path = tmp_path / "bad.safetensors"
    _crafted(path, config)
    with pytest.raises(CheckpointError, match=message) as error:
        load_model(path)
    assert str(path) in str(error.value)


def test_deeply_nested_architecture_is_an_error(tmp_path):
    config = {"class": "ember.nn.ReLU"}
    for _ in range(150):
        config = {"class": "io-test-residual", "args": [{"module": config}]}
    path = tmp_path / "deep.safetensors"
    _crafted(path, config)
    with pytest.raises(CheckpointError, match="deeper than"):
        load_model(path)


def test_weights_that_do_not_fit_the_architecture_are_an_error(tmp_path):
    path = tmp_path / "bad.safetensors"
    _crafted(path, {"class": "ember.nn.Linear", "args": [3, 4]},
             state={"weight": np.zeros((4, 3), np.float32)})
    with pytest.raises(CheckpointError, match="missing keys: bias"):
        load_model(path)


def test_register_checks_its_input():
    with pytest.raises(EmberError, match="Module subclass"):
        register(int)
    with pytest.raises(EmberError, match="ember's own"):
        register(name="ember.nn.Linear")(IoTestUnregistered)
    with pytest.raises(EmberError, match="already means"):
        register(name="IoTestBlock")(IoTestUnregistered)


def test_registered_classes_capture_arguments_without_the_module_hook():
    block = IoTestResidual(nn.Identity(), scale=2.0)
    assert block._init_arguments == ((nn.Identity(),)[:0] + (block.inner,), {"scale": 2.0})
    assert model_files.capture_init_arguments(IoTestResidual) is IoTestResidual
