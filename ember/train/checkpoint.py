"""Training-state checkpoints: everything needed to continue a run exactly where it stopped.

A checkpoint is one folder `ckpt-<global_step>/` holding

- `tensors.safetensors`: every array of the state (weights, optimizer moments, NumPy's RNG key);
- `state.json`: the rest (epoch and step counters, lr-scheduler fields, RNG states, the data
  loader's position, History), with `{"__tensor__": key}` where an array was;
- `manifest.json`: the SHA-256 and size of both files, written last.

Nothing is pickled, so loading a checkpoint never runs code. The folder is written under a
temporary name, every file and the folder are fsynced, then it is renamed into place: a crash
mid-save leaves the earlier checkpoints intact, and `latest()` skips (with a warning) a folder
whose files do not match their manifest.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import tempfile
import warnings
from collections.abc import Mapping

import numpy as np

from ember import random as ember_random
from ember._core.device import CPU
from ember._core.errors import EmberError
from ember._core.tensor import Tensor
from ember.io.files import CheckpointError

FORMAT = "ember.training_state"
VERSION = 1
_TENSORS, _STATE, _MANIFEST = "tensors.safetensors", "state.json", "manifest.json"
_FOLDER = re.compile(r"ckpt-(\d+)")
_TEMPORARY_PREFIX = ".tmp-ckpt-"
# Markers in state.json for what JSON cannot say itself: an array, a tuple, a dict whose keys
# are not all strings (an optimizer's state is keyed by parameter index).
_ARRAY, _TUPLE, _ITEMS = "__tensor__", "__tuple__", "__items__"


# ---- RNG states ------------------------------------------------------------------------------
def rng_state() -> dict:
    """The state of every global random stream: ember's default generator, NumPy's global
    RandomState and Python's `random`.

    >>> import ember, random
    >>> state = rng_state()
    >>> first = (ember.rand(2).tolist(), random.random())
    >>> set_rng_state(state)
    >>> (ember.rand(2).tolist(), random.random()) == first
    True
    """
    return {"ember": ember_random.default_generator.get_state(),
            "numpy": np.random.get_state(legacy=False),
            "python": random.getstate()}


def set_rng_state(state: dict):
    """Put back the streams `rng_state()` described."""
    ember_random.default_generator.set_state(state["ember"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


# ---- the training state ----------------------------------------------------------------------
def training_state(model=None, optimizer=None, schedulers=(), loader=None, *, epoch: int = 0,
                   step_in_epoch: int = 0, global_step: int = 0, history=None,
                   extra: dict | None = None) -> dict:
    """The full training state as a nested dict for `Checkpointer.save`: model and optimizer
    state dicts (the optimizer defaults to `model.optimizer`), lr schedulers, every RNG, the
    DataLoader's position, the counters, and History (its `history` and `epoch`).

    >>> import ember
    >>> state = training_state(ember.nn.Linear(2, 1), global_step=7)
    >>> sorted(state['model']), state['global_step']
    (['bias', 'weight'], 7)
    """
    if optimizer is None:
        optimizer = getattr(model, "optimizer", None)
    return {
        "epoch": int(epoch), "step_in_epoch": int(step_in_epoch), "global_step": int(global_step),
        "model": None if model is None else dict(model.state_dict()),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "schedulers": [scheduler.state_dict() for scheduler in schedulers],
        "rng": rng_state(),
        "loader": None if loader is None else loader.state_dict(),
        "history": None if history is None else {"history": history.history,
                                                 "epoch": history.epoch},
        "extra": dict(extra or {}),
    }


def apply_training_state(state: dict, model=None, optimizer=None, schedulers=(), loader=None):
    """Load a `training_state` into the given objects and set every RNG. The model goes first:
    its `load_state_dict` checks every entry before writing, so a mismatched checkpoint fails
    before anything changed."""
    if optimizer is None:
        optimizer = getattr(model, "optimizer", None)
    schedulers, saved_schedulers = list(schedulers), state.get("schedulers") or []
    if len(schedulers) != len(saved_schedulers):
        raise CheckpointError(f"the checkpoint holds {len(saved_schedulers)} lr scheduler "
                              f"state(s) but {len(schedulers)} scheduler(s) were given")
    if state.get("optimizer") is not None and model is not None and optimizer is None:
        raise CheckpointError("the checkpoint holds optimizer state but the model has no "
                              "optimizer yet; create it (compile with an Optimizer, or build "
                              "lazy layers) before restoring")
    if model is not None and state.get("model") is not None:
        model.load_state_dict(state["model"])
    if optimizer is not None and state.get("optimizer") is not None:
        optimizer.load_state_dict(state["optimizer"])
    for scheduler, saved in zip(schedulers, saved_schedulers):
        scheduler.load_state_dict(saved)
    if loader is not None and state.get("loader") is not None:
        loader.load_state_dict(state["loader"])
    if state.get("rng") is not None:
        set_rng_state(state["rng"])


# ---- JSON + safetensors encoding -------------------------------------------------------------
class _Encoder:
    """Splits a nested value into JSON and a dict of arrays keyed by their path in the value."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}

    def encode(self, value, path: str):
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, Tensor):
            return self._array(value.detach().cpu().numpy(), path, "tensor")
        if isinstance(value, np.ndarray):
            return self._array(value, path, "ndarray")
        if isinstance(value, np.generic):
            return self._array(np.asarray(value), path, "scalar")
        if isinstance(value, (list, tuple)):
            items = [self.encode(item, f"{path}/{index}") for index, item in enumerate(value)]
            return {_TUPLE: items} if isinstance(value, tuple) else items
        if isinstance(value, Mapping):
            if all(isinstance(key, str) and not key.startswith("__") for key in value):
                return {key: self.encode(item, f"{path}/{key}") for key, item in value.items()}
            return {_ITEMS: [[self.encode(key, f"{path}/<key>"),
                              self.encode(item, f"{path}/{key}")] for key, item in value.items()]}
        raise CheckpointError(f"checkpoint: cannot store a {type(value).__name__} at "
                              f"'{path or '/'}'; a training state holds numbers, strings, "
                              f"lists, dicts, Tensors and NumPy arrays")

    def _array(self, array: np.ndarray, path: str, kind: str) -> dict:
        if array.dtype == object:
            raise CheckpointError(f"checkpoint: cannot store an object array at '{path}'")
        key, copy = path or "/", 1
        while key in self.arrays:  # two paths that spell the same (a key holding '/')
            key, copy = f"{path}#{copy}", copy + 1
        self.arrays[key] = np.ascontiguousarray(array)
        return {_ARRAY: key, "kind": kind}


def _decode(value, arrays: dict):
    if isinstance(value, list):
        return [_decode(item, arrays) for item in value]
    if not isinstance(value, dict):
        return value
    if _ARRAY in value:
        key = value[_ARRAY]
        if key not in arrays:
            raise CheckpointError(f"checkpoint: state.json names array '{key}', which "
                                  f"{_TENSORS} does not hold")
        array = arrays[key]
        if value.get("kind") == "tensor":
            return Tensor(array, CPU)
        return array[()] if value.get("kind") == "scalar" else array
    if _TUPLE in value:
        return tuple(_decode(item, arrays) for item in value[_TUPLE])
    if _ITEMS in value:
        return {_hashable(_decode(key, arrays)): _decode(item, arrays)
                for key, item in value[_ITEMS]}
    return {key: _decode(item, arrays) for key, item in value.items()}


def _hashable(key):
    return key.item() if isinstance(key, np.generic) else key


# ---- files -----------------------------------------------------------------------------------
def _write(path: str, data: bytes):
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_folder(path: str):
    # A rename is durable only once the folder holding it is synced (POSIX); Windows cannot
    # open a folder for fsync, and its rename is already journaled.
    if os.name == "nt":
        return
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _digest(data: bytes) -> dict:
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def _read_folder(path: str) -> dict:
    """The decoded state of one checkpoint folder, after checking both files against the
    manifest; raises CheckpointError naming the problem."""
    from safetensors.numpy import load

    try:
        with open(os.path.join(path, _MANIFEST), "rb") as handle:
            manifest = json.loads(handle.read())
        files = {}
        for name in (_TENSORS, _STATE):
            with open(os.path.join(path, name), "rb") as handle:
                files[name] = handle.read()
    except (OSError, ValueError) as error:
        raise CheckpointError(f"checkpoint {path}: unreadable or incomplete ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT \
            or not isinstance(manifest.get("files"), dict):
        raise CheckpointError(f"checkpoint {path}: {_MANIFEST} is not an ember training-state "
                              f"manifest")
    version = manifest.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(f"checkpoint {path}: format version {version!r}; this ember "
                              f"reads versions up to {VERSION} (a newer ember wrote it?)")
    for name, data in files.items():
        expected = manifest["files"].get(name)
        if expected != _digest(data):
            raise CheckpointError(f"checkpoint {path}: {name} does not match its checksum "
                                  f"(expected {expected}, got {_digest(data)}): corrupted")
    try:
        return _decode(json.loads(files[_STATE]), load(files[_TENSORS]))
    except CheckpointError:
        raise
    except Exception as error:  # safetensors raises its own SafetensorError; bad JSON shapes
        raise CheckpointError(f"checkpoint {path}: cannot decode ({error})") from None


class Checkpointer:
    """Saves training states to `directory/ckpt-<global_step>/`, keeping the newest `keep_last`
    (None keeps all), and finds the newest complete one to resume from.

    >>> import ember, tempfile
    >>> model = ember.nn.Linear(2, 1)
    >>> checkpointer = Checkpointer(tempfile.mkdtemp(), keep_last=2)
    >>> for step in (1, 2, 3):
    ...     _ = checkpointer.save(training_state(model, global_step=step))
    >>> [os.path.basename(path) for path in checkpointer.checkpoints()]
    ['ckpt-2', 'ckpt-3']
    >>> checkpointer.restore(model)['global_step']
    3
    """

    def __init__(self, directory, keep_last: int | None = 3):
        if keep_last is not None and (isinstance(keep_last, bool) or not isinstance(keep_last, int)
                                      or keep_last < 1):
            raise EmberError(f"Checkpointer: keep_last must be a positive int or None, got "
                             f"{keep_last!r}")
        self.directory = os.fspath(directory)
        self.keep_last = keep_last

    def checkpoints(self) -> list[str]:
        """Paths of the checkpoint folders, oldest (lowest global step) first; not verified."""
        if not os.path.isdir(self.directory):
            return []
        found = [(int(match.group(1)), name) for name in os.listdir(self.directory)
                 if (match := _FOLDER.fullmatch(name))]
        return [os.path.join(self.directory, name) for _, name in sorted(found)]

    def save(self, state: dict) -> str:
        """Write `state` (a `training_state(...)`) atomically; returns the folder's path."""
        step = state.get("global_step") if isinstance(state, dict) else None
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise CheckpointError(f"Checkpointer.save: the state needs an int 'global_step' "
                                  f">= 0 (it names the folder), got {step!r}")
        from safetensors.numpy import save

        encoder = _Encoder()
        document = json.dumps(encoder.encode(state, "")).encode()
        tensors = save(encoder.arrays)
        manifest = {"format": FORMAT, "version": VERSION, "global_step": step,
                    "files": {_TENSORS: _digest(tensors), _STATE: _digest(document)}}
        os.makedirs(self.directory, exist_ok=True)
        self._remove_leftovers()
        temporary = tempfile.mkdtemp(prefix=_TEMPORARY_PREFIX, dir=self.directory)
        final = os.path.join(self.directory, f"ckpt-{step}")
        try:
            _write(os.path.join(temporary, _TENSORS), tensors)
            _write(os.path.join(temporary, _STATE), document)
            _write(os.path.join(temporary, _MANIFEST), json.dumps(manifest).encode())
            _fsync_folder(temporary)
            if os.path.exists(final):
                # A folder cannot be renamed over a non-empty one: set the old one (the same
                # step, saved again after a resume) aside first.
                self._set_aside(final)
            os.replace(temporary, final)
            _fsync_folder(self.directory)
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
        self._prune()
        self._remove_leftovers()
        return final

    def latest(self) -> str | None:
        """The newest checkpoint that reads back intact (None if there is none); corrupted or
        incomplete ones are skipped with a warning."""
        found = self._newest_intact()
        return None if found is None else found[0]

    def load(self, path=None) -> dict | None:
        """The state in `path` (raising CheckpointError if it is damaged), or in the newest
        intact checkpoint (None if there is none)."""
        if path is not None:
            return _read_folder(os.fspath(path))
        found = self._newest_intact()
        return None if found is None else found[1]

    def restore(self, model=None, optimizer=None, schedulers=(), loader=None,
                path=None) -> dict | None:
        """Load the newest intact checkpoint (or `path`) into the model, its optimizer, the lr
        schedulers and the DataLoader, set every RNG, and return the state (counters, History,
        extra); None, changing nothing, when there is no checkpoint."""
        state = self.load(path)
        if state is not None:
            apply_training_state(state, model, optimizer, schedulers, loader)
        return state

    def _newest_intact(self):
        for path in reversed(self.checkpoints()):
            try:
                return path, _read_folder(path)
            except CheckpointError as error:
                warnings.warn(f"skipping checkpoint: {error}", stacklevel=3)
        return None

    def _remove_leftovers(self):
        """Temporary folders of a save that crashed (or an old copy set aside)."""
        for name in os.listdir(self.directory):
            if name.startswith(_TEMPORARY_PREFIX):
                shutil.rmtree(os.path.join(self.directory, name), ignore_errors=True)

    def _prune(self):
        if self.keep_last is None:
            return
        for path in self.checkpoints()[:-self.keep_last]:
            self._set_aside(path)

    def _set_aside(self, path: str):
        # Renamed first, deleted after: a crash mid-delete leaves a temporary folder (removed
        # by the next save), never a half-deleted ckpt-N that looks like a corrupt checkpoint.
        os.rename(path, os.path.join(self.directory,
                                     f"{_TEMPORARY_PREFIX}old-{os.path.basename(path)}"))
