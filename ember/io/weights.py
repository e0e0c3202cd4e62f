"""`save` / `load`: tensors in safetensors files, checked before anything is trusted.

The layout is plain safetensors (an 8-byte little-endian header length, a JSON header, then
the raw little-endian bytes of every tensor), so any safetensors reader opens ember files. In
the header's `__metadata__` ember adds one JSON record (`ember`: format, ember version, each
tensor's dtype, shape and SHA-256, the user's metadata) and the SHA-256 of that record's text
(`ember.sha256`). With both, every byte of the file is covered: the record by its digest,
the data by the per-tensor digests, the rest of the header by being cross-checked against
the record.

Loading never unpickles and never imports anything named in the file. The reader below is
ember's own rather than safetensors' because it must check sizes before it allocates, verify
checksums, and turn every failure into a `CheckpointError` naming the file.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os

import numpy as np
from safetensors import SafetensorError, TensorSpec, serialize

from ember._core import dtypes
from ember._core.device import CPU
from ember._core.device import device as as_device
from ember._core.tensor import Tensor
from ember.io.files import CheckpointError, atomic_write

FORMAT = 1
_RECORD_KEY = "ember"
_DIGEST_KEY = "ember.sha256"
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit: no honest header is larger
_MAX_NDIM = 64
_CODES = {"bool": "BOOL", "int8": "I8", "uint8": "U8", "int16": "I16", "uint16": "U16",
          "int32": "I32", "uint32": "U32", "int64": "I64", "uint64": "U64",
          "float16": "F16", "bfloat16": "BF16", "float32": "F32", "float64": "F64"}
_BY_CODE = {code: dtypes.as_dtype(name) for name, code in _CODES.items()}
# First bytes of formats people rename by mistake, and why ember will not read them.
_SIGNATURES = [
    (b"\x80\x02", "a Python pickle"), (b"\x80\x03", "a Python pickle"),
    (b"\x80\x04", "a Python pickle"), (b"\x80\x05", "a Python pickle"),
    (b"PK\x03\x04", "a zip archive (torch.save's format, which holds a pickle, or .npz)"),
    (b"\x93NUMPY", "a NumPy .npy file (which may hold a pickle)"),
    (b"\x89HDF", "an HDF5 file (Keras .h5)"),
]


def save(state_dict, path, metadata: dict | None = None) -> None:
    """Write a mapping of names to Tensors (or NumPy arrays) to `path` as safetensors,
    atomically, with each tensor's SHA-256 and `metadata` (any JSON-serializable dict) in
    the header.

    >>> import os, tempfile, ember
    >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
    >>> ember.io.save({"w": ember.ones((2, 3))}, path, metadata={"epoch": 3})
    >>> ember.io.load(path)["w"].shape
    (2, 3)
    >>> ember.io.load_metadata(path)
    {'epoch': 3}
    """
    _write(state_dict, path, metadata)


def load(path, device=None, *, require_checksums: bool = True) -> dict:
    """Read a safetensors file into a dict of name -> Tensor (on `device`, default CPU),
    after checking its structure and every tensor's checksum. `require_checksums=False` also
    reads safetensors files written by other tools, which carry no ember checksums (their
    structure is still checked). Any problem raises `CheckpointError` naming the file."""
    arrays, _ = _read(path, require_checksums)
    target = as_device(device) if device is not None else None
    tensors = {}
    for name, array in arrays.items():
        tensor = Tensor(array, CPU)
        tensors[name] = tensor.to(target) if target is not None and target is not CPU \
            else tensor
    return tensors


def load_metadata(path, *, require_checksums: bool = True) -> dict:
    """The metadata dict given to `save` (checks the header, not the tensor data); for a
    file from another tool (`require_checksums=False`), its raw `__metadata__` strings."""
    path = os.fspath(path)
    with _opened(path) as (file, size):
        _, metadata, _ = _parse_header(path, file, size)
    record = _check_record(path, None, metadata, require_checksums)
    if record is None:
        return dict(metadata or {})
    return record["metadata"]


# ---- writing --------------------------------------------------------------------------
def _write(state_dict, path, metadata, extra: dict | None = None):
    """`save`, plus `extra` entries in the record (the architecture of a whole-model file)."""
    path = os.fspath(path)
    if not hasattr(state_dict, "items"):
        raise CheckpointError(f"save({path!r}): expected a dict of name -> Tensor, got "
                              f"{type(state_dict).__name__}")
    if metadata is not None and not isinstance(metadata, dict):
        raise CheckpointError(f"save({path!r}): metadata must be a dict, got "
                              f"{type(metadata).__name__}")
    arrays = {name: _as_array(name, value, path) for name, value in state_dict.items()}
    import ember  # the version, read at call time (ember imports this module)

    record = {"format": FORMAT, "ember_version": ember.__version__,
              "tensors": {name: {"dtype": array.dtype.name, "shape": list(array.shape),
                                 "sha256": _digest(array)} for name, array in arrays.items()},
              "metadata": metadata or {}, **(extra or {})}
    try:
        text = json.dumps(record, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"save({path!r}): metadata must be JSON-serializable (strings, "
                              f"finite numbers, bools, None, lists, dicts with string "
                              f"keys): {error}") from None
    header = {_RECORD_KEY: text, _DIGEST_KEY: hashlib.sha256(text.encode()).hexdigest()}
    specs = {name: TensorSpec(dtype=array.dtype.name, shape=array.shape,
                              data_ptr=array.ctypes.data, data_len=array.nbytes)
             for name, array in arrays.items()}
    try:
        blob = serialize(specs, metadata=header)
    except SafetensorError as error:
        raise CheckpointError(f"save({path!r}): safetensors refused the tensors: "
                              f"{error}") from None
    with atomic_write(path) as file:
        file.write(blob)


def _as_array(name, value, path) -> np.ndarray:
    if not isinstance(name, str) or name == "__metadata__":
        raise CheckpointError(f"save({path!r}): tensor names must be strings other than "
                              f"'__metadata__', got {name!r}")
    if isinstance(value, Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.generic):
        value = np.asarray(value)
    if not isinstance(value, np.ndarray):
        raise CheckpointError(f"save({path!r}): '{name}' is a {type(value).__name__}; "
                              f"expected an ember Tensor or a NumPy array")
    if value.dtype.name not in _CODES:
        raise CheckpointError(f"save({path!r}): '{name}' has dtype {value.dtype}, which "
                              f"safetensors files from ember do not hold; expected one of "
                              f"{', '.join(_CODES)}")
    # safetensors stores little-endian C-order bytes (ascontiguousarray would make 0-d 1-d).
    return value.astype(value.dtype.newbyteorder("<"), order="C", copy=False)


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(array.reshape(-1).view(np.uint8)).hexdigest()


# ---- reading --------------------------------------------------------------------------
@contextlib.contextmanager
def _opened(path: str):
    """The open file and its size; a missing file, a folder or an I/O error is a
    CheckpointError."""
    if os.path.isdir(path):
        raise CheckpointError(f"{path} is a directory, not a weights file")
    try:
        with open(path, "rb") as file:
            yield file, os.fstat(file.fileno()).st_size
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except OSError as error:
        raise CheckpointError(f"{path}: cannot be read: {error}") from None


def _read(path, require_checksums: bool = True):
    """(name -> NumPy array, the ember record or None), every check passed."""
    path = os.fspath(path)
    with _opened(path) as (file, size):
        entries, metadata, data_size = _parse_header(path, file, size)
        record = _check_record(path, entries, metadata, require_checksums)
        buffer = bytearray(data_size)
        if file.readinto(buffer) != data_size:
            raise _bad(path, "the file became shorter while it was read")
    names = list(record["tensors"]) if record is not None else list(entries)
    arrays = {}
    for name in names:
        dtype, shape, begin, end = entries[name]
        if record is not None and hashlib.sha256(memoryview(buffer)[begin:end]).hexdigest() \
                != record["tensors"][name]["sha256"]:
            raise _bad(path, f"tensor '{name}' fails its SHA-256 checksum: the data is "
                             f"corrupted")
        arrays[name] = _array(path, name, buffer, dtype, shape, begin, end)
    return arrays, record


def _bad(path, what: str) -> CheckpointError:
    return CheckpointError(f"cannot load {path}: {what}")


def _parse_header(path, file, size):
    """Check the length field and the JSON header; return ({name: (dtype, shape, begin,
    end)}, the `__metadata__` dict or None, the byte size of the data section)."""
    if size == 0:
        raise _bad(path, "the file is empty (0 bytes): an interrupted write, or not a "
                         "weights file")
    start = file.read(min(size, 8))
    for signature, kind in _SIGNATURES:
        if start.startswith(signature):
            raise _bad(path, f"this is {kind}, not safetensors. ember never loads pickles: "
                             f"unpickling runs arbitrary code from the file. Convert it to "
                             f"safetensors where you trust its source")
    if size < 8:
        raise _bad(path, f"the file has {size} bytes, fewer than the 8-byte header length "
                         f"of a safetensors file: truncated, or not safetensors")
    header_size = int.from_bytes(start, "little")
    if header_size < 2:
        raise _bad(path, f"the header length field says {header_size} bytes, too few for a "
                         f"JSON header: corrupted, or not safetensors")
    if header_size > min(size - 8, _MAX_HEADER):
        file.seek(-1, os.SEEK_END)
        hint = " It ends like a Python pickle, which ember never loads: unpickling runs " \
            "arbitrary code." if file.read(1) == b"." else ""
        raise _bad(path, f"the header length field says {header_size} bytes, but only "
                         f"{size - 8} follow it (a safetensors header is 2 bytes to "
                         f"{_MAX_HEADER // 2**20} MiB): truncated, corrupted, or not "
                         f"safetensors.{hint}")
    header = _parse_json(path, file.read(header_size), "header")
    if not isinstance(header, dict):
        raise _bad(path, f"the header is a JSON {type(header).__name__}, expected an object")
    metadata = header.pop("__metadata__", None)
    if metadata is not None and not (isinstance(metadata, dict) and all(
            isinstance(value, str) for value in metadata.values())):
        raise _bad(path, "the header's __metadata__ is not a mapping of strings to strings")
    data_size = size - 8 - header_size
    entries = {name: _entry(path, name, value, data_size) for name, value in header.items()}
    covered = 0  # the tensors must tile the data section: no gaps, overlaps or extra bytes
    for name, (_, _, begin, end) in sorted(entries.items(), key=lambda item: item[1][2:]):
        if begin != covered:
            raise _bad(path, f"tensor '{name}' starts at byte {begin} of the data, expected "
                             f"{covered}: overlapping or missing data")
        covered = end
    if covered != data_size:
        raise _bad(path, f"the tensors cover {covered} bytes of data, but {data_size} "
                         f"follow the header: truncated or extra bytes")
    return entries, metadata, data_size


def _entry(path, name, value, data_size):
    if not isinstance(value, dict) or set(value) != {"dtype", "shape", "data_offsets"}:
        raise _bad(path, f"header entry '{name}' must hold exactly dtype, shape and "
                         f"data_offsets, got {_short(value)}")
    code, shape, offsets = value["dtype"], value["shape"], value["data_offsets"]
    if not isinstance(code, str) or code not in _BY_CODE:
        raise _bad(path, f"tensor '{name}' has unknown dtype {_short(code)}; ember reads "
                         f"{', '.join(_BY_CODE)}")
    if not (isinstance(shape, list) and len(shape) <= _MAX_NDIM
            and all(type(size) is int and size >= 0 for size in shape)):
        raise _bad(path, f"tensor '{name}' has shape {_short(shape)}, expected a list of "
                         f"at most {_MAX_NDIM} non-negative integers")
    if not (isinstance(offsets, list) and len(offsets) == 2
            and all(type(offset) is int for offset in offsets)
            and 0 <= offsets[0] <= offsets[1]):
        raise _bad(path, f"tensor '{name}' has data_offsets {_short(offsets)}, expected "
                         f"[begin, end] with 0 <= begin <= end")
    begin, end = offsets
    dtype = _BY_CODE[code]
    nbytes = math.prod(shape) * dtype.itemsize  # Python ints: a huge shape cannot overflow
    if end > data_size:
        raise _bad(path, f"tensor '{name}' claims bytes {begin}..{end}, past the end of the "
                         f"{data_size}-byte data section: truncated or corrupted")
    if end - begin != nbytes:
        raise _bad(path, f"tensor '{name}' of shape {shape} and dtype {code} needs {nbytes} "
                         f"bytes, but its data_offsets span {end - begin}")
    return dtype, tuple(shape), begin, end


def _check_record(path, entries, metadata, require_checksums):
    """The ember record, checked against its digest and against the header's `entries`
    (unless None); None for a foreign file read with require_checksums=False."""
    if not metadata or _RECORD_KEY not in metadata or _DIGEST_KEY not in metadata:
        if require_checksums:
            raise _bad(path, "the header has no ember record with checksums (a file written "
                             "by another tool, or a corrupted header); pass "
                             "require_checksums=False to read it without verification")
        return None
    text = metadata[_RECORD_KEY]
    if hashlib.sha256(text.encode()).hexdigest() != metadata[_DIGEST_KEY]:
        raise _bad(path, "the header's ember record does not match its SHA-256: the header "
                         "is corrupted")
    record = _parse_json(path, text.encode(), "ember record")
    if not isinstance(record, dict) or type(record.get("format")) is not int:
        raise _bad(path, "the ember record has no format number")
    if record["format"] > FORMAT:
        raise _bad(path, f"written in ember file format {record['format']}; this ember "
                         f"reads format {FORMAT} and older: upgrade ember")
    tensors, user = record.get("tensors"), record.get("metadata")
    if not isinstance(tensors, dict) or not isinstance(user, dict):
        raise _bad(path, "the ember record lacks its tensor table or metadata")
    if entries is None:
        return record
    if set(tensors) != set(entries):
        missing, extra = sorted(set(tensors) - set(entries)), sorted(set(entries) - set(tensors))
        raise _bad(path, f"the header and the ember record list different tensors (only in "
                         f"the record: {missing}; only in the header: {extra})")
    for name, (dtype, shape, _, _) in entries.items():
        expected = tensors[name]
        if not isinstance(expected, dict) or expected.get("dtype") != dtype.name or \
                expected.get("shape") != list(shape) or not isinstance(
                    expected.get("sha256"), str):
            raise _bad(path, f"tensor '{name}' is {dtype.name} {list(shape)} in the header "
                             f"but {_short(expected)} in the ember record")
    return record


def _array(path, name, buffer, dtype, shape, begin, end) -> np.ndarray:
    count = math.prod(shape)
    if count == 0:
        return np.empty(shape, dtype.np)
    array = np.frombuffer(buffer, dtype.np, count, begin).reshape(shape)
    if dtype.kind == "b" and np.frombuffer(buffer, np.uint8, end - begin, begin).max() > 1:
        raise _bad(path, f"bool tensor '{name}' holds bytes other than 0 and 1")
    # Sharing the one read buffer avoids a second copy; a misaligned tensor (possible in
    # foreign files) is copied so NumPy and the GPU see aligned memory.
    return array if array.flags.aligned else array.copy()


def _parse_json(path, raw: bytes, what: str):
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_keys,
                          parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise _bad(path, f"the {what} is not UTF-8 text: corrupted, or not safetensors") \
            from None
    except (ValueError, RecursionError) as error:
        raise _bad(path, f"the {what} is not valid JSON ({_short(str(error))}): corrupted, "
                         f"or not safetensors") from None


def _unique_keys(pairs):
    # JSON lets a later duplicate key silently win; a corrupted header must not.
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key in an object")
    return result


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")


def _short(value, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
