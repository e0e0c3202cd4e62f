"""Bad files: truncated, bit-flipped, lying headers, wrong dtypes, pickles, empty files and
folders. Each must raise CheckpointError naming the file, and a failed load_weights must
leave the module exactly as it was (hundreds of generated cases)."""
from __future__ import annotations

import io
import json
import os
import pickle
import tempfile
import zipfile

import numpy as np
import pytest

import ember
import ember.io
from ember import nn
from ember.io import CheckpointError


def _model(seed: int) -> nn.Module:
    ember.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    model(ember.randn((5, 3)))  # moves the running statistics and the int64 batch counter
    return model


def _good_file() -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        target = os.path.join(folder, "good.safetensors")
        ember.io.save(_model(0).state_dict(), target, metadata={"epoch": 7})
        with open(target, "rb") as file:
            return file.read()


GOOD = _good_file()
HEADER_END = 8 + int.from_bytes(GOOD[:8], "little")


def _frame(header, data: bytes = b"") -> bytes:
    """A safetensors framing around a header given as an object or as raw bytes."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return len(raw).to_bytes(8, "little") + raw + data


def _entry(dtype="F32", shape=(2,), offsets=(0, 8)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


def _flipped(position: int, bit: int) -> bytes:
    bad = bytearray(GOOD)
    bad[position] ^= 1 << bit
    return bytes(bad)


def _with_length(length: int) -> bytes:
    return length.to_bytes(8, "little") + GOOD[8:]


class _Trap:
    """Unpickling this would create a file: the pickle test proves it never happens."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, "w")


def _zip_with_pickle() -> bytes:  # the layout of torch.save
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"w": np.zeros(3)}))
    return buffer.getvalue()


def _npy() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(3))
    return buffer.getvalue()


def _cases():
    size = len(GOOD)
    cuts = sorted({0, 1, 4, 7, 8, 9, HEADER_END - 1, HEADER_END, HEADER_END + 1, size - 1,
                   *range(10, size, max(1, size // 60))})
    for cut in cuts:
        if cut < size:
            yield f"truncated-{cut}", GOOD[:cut]
    header_positions = list(range(0, HEADER_END, max(1, HEADER_END // 90)))
    data_positions = list(range(HEADER_END, size, max(1, (size - HEADER_END) // 60)))
    for position in header_positions + data_positions + [size - 1]:
        yield f"flip-{position}", _flipped(position, position % 8)
    for length in (0, 1, HEADER_END - 9, HEADER_END - 7, size, 2**40, 2**63, 2**64 - 1):
        yield f"length-{length}", _with_length(length)
    yield "appended-byte", GOOD + b"\0"
    yield "empty", b""
    yield "huge-shape", _frame({"w": _entry(shape=(2**40, 2**40), offsets=(0, 8))}, bytes(8))
    yield "huge-shape-matching-offsets", _frame(
        {"w": _entry(shape=(2**31, 2**31), offsets=(0, 2**64))}, bytes(8))
    yield "huge-offsets", _frame({"w": _entry(offsets=(0, 2**62))}, bytes(8))
    yield "many-dims", _frame({"w": _entry(shape=(1,) * 100, offsets=(0, 4))}, bytes(4))
    for shape in ([-1], [2.0], [True, 2], "2", [[2]], None):
        yield f"shape-{shape}", _frame({"w": {**_entry(), "shape": shape}}, bytes(8))
    for offsets in ([0], [8, 0], [-8, 0], [0.0, 8.0], "0,8", [0, 8, 16]):
        yield f"offsets-{offsets}", _frame({"w": {**_entry(), "data_offsets": offsets}},
                                           bytes(8))
    for dtype in ("F33", "float32", "f32", "", "C64", "F8_E4M3", 5, None, ["F32"]):
        yield f"dtype-{dtype}", _frame({"w": _entry(dtype=dtype)}, bytes(8))
    yield "missing-dtype", _frame({"w": {"shape": [2], "data_offsets": [0, 8]}}, bytes(8))
    yield "extra-key", _frame({"w": {**_entry(), "device": "cpu"}}, bytes(8))
    yield "overlap", _frame({"a": _entry(), "b": _entry()}, bytes(8))
    yield "gap", _frame({"a": _entry(offsets=(4, 12))}, bytes(12))
    yield "bool-not-0-or-1", _frame({"b": _entry("BOOL", (2,), (0, 2))}, b"\x01\x07")
    yield "not-an-object", _frame([1, 2, 3])
    yield "metadata-not-strings", _frame({"__metadata__": {"a": 1}})
    yield "duplicate-keys", _frame(b'{"w":' + json.dumps(_entry()).encode() + b',"w":'
                                   + json.dumps(_entry()).encode() + b"}", bytes(8))
    yield "nan-constant", _frame(b'{"w":{"dtype":"F32","shape":[NaN],"data_offsets":[0,8]}}',
                                 bytes(8))
    yield "not-utf8", _frame(b'{"\xff\xfe":1}')
    yield "invalid-json", _frame(b'{"w": {"dtype": "F32",')
    yield "deep-nesting", _frame(b"[" * 100_000 + b"]" * 100_000)
    yield "no-ember-record", _frame({"w": _entry()}, bytes(8))
    yield "record-digest-mismatch", _frame({"__metadata__": {"ember": "{}", "ember.sha256":
                                                             "0" * 64}})
    for protocol in range(2, 6):
        yield f"pickle-protocol-{protocol}", pickle.dumps(
            {"w": np.zeros(3)}, protocol=protocol)
    yield "pickle-protocol-0", pickle.dumps({"w": [0.0]}, protocol=0)
    yield "torch-zip", _zip_with_pickle()
    yield "npy", _npy()
    yield "text", b"weights: 1 2 3\n"


CASES = list(_cases())


def test_there_are_hundreds_of_cases():
    assert len(CASES) >= 200
    assert len({name for name, _ in CASES}) == len(CASES)


def _snapshot(model: nn.Module) -> dict:
    return {name: value.numpy().copy() for name, value in model.state_dict().items()}


@pytest.mark.parametrize("name, content", CASES, ids=[name for name, _ in CASES])
def test_bad_file_raises_and_changes_nothing(tmp_path, name, content):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as error:
        ember.io.load(path)
    assert str(path) in str(error.value)

    model = _model(1)
    before = _snapshot(model)
    with pytest.raises(CheckpointError) as error:
        ember.io.load_weights(model, path)
    assert str(path) in str(error.value)
    after = _snapshot(model)
    assert all(np.array_equal(before[key], after[key]) for key in before)
    assert path.read_bytes() == content  # loading never writes


def test_the_unmodified_file_loads(tmp_path):
    # The control for every case above: the good bytes themselves are accepted.
    model = _model(1)
    path = tmp_path / "good.safetensors"
    path.write_bytes(GOOD)
    ember.io.load_weights(model, path)
    assert all(np.array_equal(value, _snapshot(_model(0))[key])
               for key, value in _snapshot(model).items())


def test_a_pickle_is_refused_without_being_unpickled(tmp_path):
    marker = tmp_path / "unpickled"
    path = tmp_path / "model.safetensors"
    path.write_bytes(pickle.dumps(_Trap(str(marker))))
    with pytest.raises(CheckpointError, match="never loads pickles") as error:
        ember.io.load(path)
    assert str(path) in str(error.value)
    assert not marker.exists()


def test_a_directory_is_refused(tmp_path):
    folder = tmp_path / "weights.safetensors"
    folder.mkdir()
    with pytest.raises(CheckpointError, match="is a directory"):
        ember.io.load(folder)
    with pytest.raises(CheckpointError, match="is a directory"):
        ember.io.load_weights(_model(0), folder)
