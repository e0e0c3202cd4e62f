"""ember.io.save / load: bit-exact round trips of every dtype, metadata, interoperability
with safetensors' own reader, and crash-safe writes."""
from __future__ import annotations

import os

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import ember
import ember.io
from ember.io import CheckpointError, atomic_write


def _random(dtype: ember.DType, shape, rng) -> np.ndarray:
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        info = np.iinfo(dtype.np)
        return rng.integers(info.min, info.max, size=shape, dtype=dtype.np, endpoint=True)
    # Random bit patterns cover NaN payloads, infinities and subnormals: a round trip must
    # keep every bit, not just every value.
    bits = rng.integers(0, 256, size=(*shape, dtype.itemsize), dtype=np.uint8)
    return bits.view(dtype.np).reshape(shape)


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and \
        a.tobytes() == b.tobytes()


@pytest.mark.parametrize("dtype", [d.name for d in ember._core.dtypes.ALL_DTYPES])
@pytest.mark.parametrize("shape", [(), (0,), (7,), (3, 4, 5), (2, 0, 3)])
def test_round_trip_is_bit_exact(tmp_path, dtype, shape):
    array = _random(ember._core.dtypes.as_dtype(dtype), shape, np.random.default_rng(0))
    path = tmp_path / "w.safetensors"
    ember.io.save({"x": ember.asarray(array), "y": array}, path)
    loaded = ember.io.load(path)
    assert list(loaded) == ["x", "y"]
    for tensor in loaded.values():
        assert tensor.dtype == dtype
        assert _same_bits(tensor.numpy(), array)


def test_names_order_metadata_and_views_survive(tmp_path):
    rng = np.random.default_rng(1)
    base = rng.normal(size=(6, 8))
    state = {"z.last": base[::2, 1::3], "a.first": base.T, "m.mid": np.float32(2.5)}
    metadata = {"epoch": 3, "loss": 0.25, "tags": ["a", "é"], "nested": {"x": None}}
    path = tmp_path / "w.safetensors"
    ember.io.save(state, path, metadata=metadata)
    loaded = ember.io.load(path)
    assert list(loaded) == list(state)  # the saved order, not safetensors' sorted order
    for name, value in state.items():
        assert _same_bits(loaded[name].numpy(), np.asarray(value))
    assert ember.io.load_metadata(path) == metadata


def test_loaded_tensors_are_writable_and_independent(tmp_path):
    path = tmp_path / "w.safetensors"
    source = np.arange(4.0)
    ember.io.save({"a": source, "b": source}, path)
    loaded = ember.io.load(path, device="cpu")
    loaded["a"].numpy()[0] = 99.0
    assert loaded["b"].numpy()[0] == 0.0 and source[0] == 0.0


def test_module_state_dict_round_trip(tmp_path):
    ember.manual_seed(0)
    model = ember.nn.Sequential(ember.nn.Linear(3, 4), ember.nn.BatchNorm1d(4))
    model(ember.randn((5, 3)))  # running statistics and the int64 batch counter move
    path = tmp_path / "model.safetensors"
    ember.io.save(model.state_dict(), path)
    loaded = ember.io.load(path)
    for name, value in model.state_dict().items():
        assert _same_bits(loaded[name].numpy(), value.numpy())


def test_files_are_plain_safetensors_both_ways(tmp_path):
    ours = tmp_path / "ours.safetensors"
    arrays = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "i": np.arange(3)}
    ember.io.save(arrays, ours)
    read_by_safetensors = load_file(ours)
    assert all(_same_bits(read_by_safetensors[k], v) for k, v in arrays.items())

    foreign = tmp_path / "foreign.safetensors"
    save_file(arrays, foreign, metadata={"source": "elsewhere"})
    with pytest.raises(CheckpointError, match="require_checksums=False"):
        ember.io.load(foreign)  # no ember checksums: refused unless asked for
    loaded = ember.io.load(foreign, require_checksums=False)
    assert all(_same_bits(loaded[k].numpy(), v) for k, v in arrays.items())
    assert ember.io.load_metadata(foreign, require_checksums=False) == {"source": "elsewhere"}


@pytest.mark.parametrize("state, metadata, message", [
    ({"x": np.zeros(2, np.complex64)}, None, "dtype complex64"),
    ({"x": [1.0, 2.0]}, None, "is a list"),
    ({3: np.zeros(2)}, None, "tensor names must be strings"),
    ({"__metadata__": np.zeros(2)}, None, "tensor names must be strings"),
    ({"x": np.zeros(2)}, {"bad": float("nan")}, "JSON-serializable"),
    ({"x": np.zeros(2)}, {"bad": object()}, "JSON-serializable"),
    ({"x": np.zeros(2)}, "epoch 3", "metadata must be a dict"),
    ([np.zeros(2)], None, "expected a dict"),
])
def test_bad_saves_raise_and_leave_the_old_file(tmp_path, state, metadata, message):
    path = tmp_path / "w.safetensors"
    ember.io.save({"old": np.ones(3)}, path)
    with pytest.raises(CheckpointError, match=message):
        ember.io.save(state, path, metadata=metadata)
    assert list(ember.io.load(path)) == ["old"]
    assert os.listdir(tmp_path) == ["w.safetensors"]


def test_saving_onto_a_directory_is_an_error(tmp_path):
    with pytest.raises(CheckpointError, match="is a directory"):
        ember.io.save({"x": np.zeros(1)}, tmp_path)


def test_save_creates_missing_folders(tmp_path):
    path = tmp_path / "runs" / "a" / "w.safetensors"
    ember.io.save({"x": np.zeros(1)}, path)
    assert list(ember.io.load(path)) == ["x"]


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path):
    path = tmp_path / "notes.bin"
    path.write_bytes(b"old and complete")
    with pytest.raises(RuntimeError):
        with atomic_write(path) as file:
            file.write(b"new but half")
            raise RuntimeError("crash in the middle")
    assert path.read_bytes() == b"old and complete"
    assert os.listdir(tmp_path) == ["notes.bin"]  # the temporary file is gone


def test_atomic_write_gives_ordinary_permissions(tmp_path):
    path = tmp_path / "notes.bin"
    with atomic_write(path) as file:
        file.write(b"x")
    umask = os.umask(0)
    os.umask(umask)
    assert (path.stat().st_mode & 0o777) == (0o666 & ~umask)


def test_missing_file_is_named(tmp_path):
    path = tmp_path / "absent.safetensors"
    with pytest.raises(CheckpointError, match="no such file") as error:
        ember.io.load(path)
    assert str(path) in str(error.value)


def test_foreign_files_are_still_checked(tmp_path):
    # Without ember's checksums the structure is all there is to check: a bool byte that is
    # neither 0 nor 1 would be a value NumPy cannot represent faithfully.
    header = b'{"b":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}}'
    path = tmp_path / "foreign.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header + b"\x01\x07")
    with pytest.raises(CheckpointError, match="bytes other than 0 and 1"):
        ember.io.load(path, require_checksums=False)
