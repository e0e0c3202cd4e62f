"""Training-state checkpoints (ember/train/checkpoint.py) and exact resume of fit
(ember/train/resume.py): a run interrupted mid-epoch and resumed in a new process ends with
the same bytes as an uninterrupted one."""
from __future__ import annotations

import inspect
import json
import os
import random
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import ember
from ember.models import Model
from ember.train.checkpoint import (
    Checkpointer,
    CheckpointError,
    rng_state,
    set_rng_state,
    training_state,
)
from ember.train.resume import TrainingCheckpoint

_WIRED = "checkpoint_dir" in inspect.signature(Model.fit).parameters

# Builds the same model and data in every process, then trains. `full`: 3 epochs; `crash`:
# dies (os._exit, no cleanup) after 14 steps = 1.4 epochs, checkpoints every 3 steps; `resume`:
# continues from the newest checkpoint. Writes the final parameters and optimizer state.
_SCRIPT = textwrap.dedent('''
    import inspect, json, os, random, sys
    import numpy as np
    import ember
    from ember import nn
    from ember.data import DataLoader, TensorDataset
    from ember.models import Model, Sequential
    from ember.train import Callback
    from ember.train.resume import TrainingCheckpoint

    class Jitter(nn.Module):
        """Noise from NumPy's and Python's global RNGs, so both must be restored too."""
        def forward(self, x):
            if not self.training:
                return x
            scale = float(np.random.normal(1.0, 0.01)) * random.uniform(0.99, 1.01)
            return x * scale

    class Crash(Callback):
        def on_train_batch_end(self, batch, logs=None):
            self.seen = getattr(self, "seen", 0) + 1
            if self.seen == 14:
                os._exit(0)

    mode, directory, out = sys.argv[1:4]
    ember.manual_seed(0); np.random.seed(1); random.seed(2)
    data = np.random.default_rng(0)
    x = data.normal(size=(40, 8)).astype(np.float32)
    y = data.integers(0, 3, 40)
    loader = DataLoader(TensorDataset(ember.asarray(x), ember.asarray(y)), batch_size=4,
                        shuffle=True)
    model = Sequential([Jitter(), nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.3),
                        nn.Linear(16, 3)])
    model.compile(optimizer=ember.optim.Adam(model.parameters(), lr=0.01),
                  loss="cross_entropy", metrics=["accuracy"])
    callbacks = [Crash()] if mode == "crash" else []
    if mode == "full":
        history = model.fit(loader, epochs=3, verbose=0)
    elif "checkpoint_dir" in inspect.signature(Model.fit).parameters:
        history = model.fit(loader, epochs=3, verbose=0, callbacks=callbacks,
                            checkpoint_dir=directory, resume=True, checkpoint_every=3)
    else:  # what fit's wiring does, by hand, until Model.fit takes checkpoint_dir
        checkpoint = TrainingCheckpoint(directory, every=3)
        source, epoch, _ = checkpoint.begin(model, loader, resume=True)
        history = model.fit(source, epochs=3, initial_epoch=epoch, verbose=0,
                            callbacks=callbacks + [checkpoint])
    optimizer = model.optimizer.state_dict()
    arrays = {f"model/{key}": value.numpy() for key, value in model.state_dict().items()}
    for index, values in optimizer["state"].items():
        arrays.update({f"optimizer/{index}/{key}": np.asarray(value.numpy())
                       for key, value in values.items()})
    np.savez(out, **arrays)
    groups = [{k: v for k, v in g.items()} for g in optimizer["param_groups"]]
    with open(out + ".json", "w") as handle:
        json.dump({"groups": groups, "history": history.history,
                   "epochs": history.epoch}, handle)
''')


def _run(script, *arguments):
    # The child imports the same ember as this process (not whatever is installed).
    root = os.path.dirname(os.path.dirname(os.path.abspath(ember.__file__)))
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    return subprocess.Popen([sys.executable, str(script), *map(str, arguments)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": path})


def _finish(process):
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr


def test_interrupted_run_resumed_in_a_new_process_equals_an_uninterrupted_one(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(_SCRIPT)
    directory, full, resumed = tmp_path / "ckpt", tmp_path / "full.npz", tmp_path / "resumed.npz"
    reference = _run(script, "full", directory, full)
    _finish(_run(script, "crash", directory, tmp_path / "unused.npz"))
    assert not (tmp_path / "unused.npz").exists()  # it died before finishing
    names = [os.path.basename(path) for path in Checkpointer(directory).checkpoints()]
    assert names == ["ckpt-6", "ckpt-9", "ckpt-12"]  # keep_last=3; ckpt-12 is epoch 1, step 2
    _finish(_run(script, "resume", directory, resumed))
    _finish(reference)

    expected, got = np.load(full), np.load(resumed)
    assert sorted(expected.files) == sorted(got.files)
    assert any(name.startswith("optimizer/") for name in expected.files)
    for name in expected.files:
        assert expected[name].dtype == got[name].dtype, name
        assert expected[name].tobytes() == got[name].tobytes(), name
    expected_json = json.loads((tmp_path / "full.npz.json").read_text())
    got_json = json.loads((tmp_path / "resumed.npz.json").read_text())
    assert expected_json["groups"] == got_json["groups"]
    if _WIRED:  # History of the whole run, epochs 0-1 from the checkpoint, loss bit for bit
        assert got_json["epochs"] == expected_json["epochs"] == [0, 1, 2]
        assert got_json["history"] == expected_json["history"]
    # The final save (epoch end 3 = step 30) superseded the crashed run's checkpoints.
    assert Checkpointer(directory).load()["global_step"] == 30


def _blobs(count=48, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(count, 4)).astype(np.float32), rng.integers(0, 2, count)


def _array_model():
    """A model and its callbacks: an lr scheduler whose state the checkpoint must carry."""
    ember.manual_seed(5)
    model = ember.Sequential([ember.nn.Linear(4, 8), ember.nn.Dropout(0.5),
                              ember.nn.Linear(8, 2)])
    optimizer = ember.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.compile(optimizer=optimizer, loss="cross_entropy")
    schedule = ember.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    return model, [ember.train.LearningRateScheduler(schedule)]


class _Stop(ember.train.Callback):
    def __init__(self, after):
        super().__init__()
        self.after, self.seen = after, 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen == self.after:
            raise KeyboardInterrupt  # the user pressing Ctrl-C mid-epoch


def _fit_resumable(model, x, y, directory, epochs, callbacks=()):
    """fit(x, y, checkpoint_dir=directory, resume=True, checkpoint_every=2)."""
    if _WIRED:
        return model.fit(x, y, batch_size=8, epochs=epochs, verbose=0, callbacks=list(callbacks),
                         checkpoint_dir=directory, resume=True, checkpoint_every=2)
    from ember.train.loop import ArrayBatches

    checkpoint = TrainingCheckpoint(directory, every=2)
    source, epoch, _ = checkpoint.begin(model, ArrayBatches(x, y, batch_size=8, shuffle=True),
                                        callbacks=callbacks)
    return model.fit(source, epochs=epochs, initial_epoch=epoch, verbose=0,
                     callbacks=[*callbacks, checkpoint])


def test_array_data_resume_mid_epoch_in_process(tmp_path):
    x, y = _blobs()  # 6 steps per epoch
    reference, callbacks = _array_model()
    reference.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=callbacks)
    interrupted, callbacks = _array_model()
    with pytest.raises(KeyboardInterrupt):
        _fit_resumable(interrupted, x, y, tmp_path, 3, [*callbacks, _Stop(after=9)])
    assert Checkpointer(tmp_path).load()["step_in_epoch"] == 2  # global step 8: epoch 1
    ember.manual_seed(123)  # the restore must not depend on the state it finds
    resumed, callbacks = _array_model()
    _fit_resumable(resumed, x, y, tmp_path, 3, callbacks)
    assert resumed.optimizer.param_groups[0]["lr"] == 0.05  # decayed once, after epoch 1
    for (name, value), other in zip(reference.state_dict().items(),
                                    resumed.state_dict().values()):
        assert value.numpy().tobytes() == other.numpy().tobytes(), name


def test_rng_states_round_trip_through_a_checkpoint(tmp_path):
    ember.manual_seed(3)
    np.random.seed(4)
    random.seed(5)
    np.random.normal()  # a cached Gaussian in NumPy's legacy state
    checkpointer = Checkpointer(tmp_path)
    checkpointer.save(training_state(global_step=1))
    draws = (ember.rand(4).tolist(), np.random.normal(size=3).tolist(), random.random())
    ember.manual_seed(99)
    np.random.seed(99)
    random.seed(99)
    assert checkpointer.restore() is not None
    assert (ember.rand(4).tolist(), np.random.normal(size=3).tolist(), random.random()) == draws
    state = rng_state()
    set_rng_state(state)
    assert rng_state()["python"] == state["python"]


def test_nested_values_round_trip_exactly(tmp_path):
    value = {"tuple": (1, (2.5, "a")), "int_keys": {0: {"m": ember.ones(2)}, 7: None},
             "big": 2**100 + 1, "floats": [float("inf"), -0.0, 1e-310], "flag": True,
             "scalar": np.float32(1.5), "bits": np.array([True, False]),
             "half": np.arange(3, dtype=np.float16), "slash/key": np.uint32(3)}
    checkpointer = Checkpointer(tmp_path)
    checkpointer.save({"global_step": 0, "value": value})
    loaded = checkpointer.load()["value"]
    assert loaded["tuple"] == (1, (2.5, "a")) and loaded["big"] == 2**100 + 1
    assert list(loaded["int_keys"]) == [0, 7] and loaded["int_keys"][7] is None
    assert isinstance(loaded["int_keys"][0]["m"], ember.Tensor)
    assert loaded["int_keys"][0]["m"].tolist() == [1.0, 1.0]
    assert str(loaded["floats"]) == str(value["floats"]) and loaded["flag"] is True
    assert loaded["scalar"] == np.float32(1.5) and loaded["scalar"].dtype == np.float32
    assert loaded["bits"].tolist() == [True, False] and loaded["half"].dtype == np.float16
    assert loaded["slash/key"] == 3


def test_unsupported_values_and_bad_arguments_raise_ember_errors(tmp_path):
    checkpointer = Checkpointer(tmp_path)
    with pytest.raises(CheckpointError, match="cannot store a object at '/extra/fn'"):
        checkpointer.save({"global_step": 1, "extra": {"fn": object()}})
    with pytest.raises(CheckpointError, match="global_step"):
        checkpointer.save({"epoch": 1})
    assert checkpointer.checkpoints() == [] and os.listdir(tmp_path) == []
    with pytest.raises(ember.EmberError, match="keep_last"):
        Checkpointer(tmp_path, keep_last=0)
    with pytest.raises(ember.EmberError, match="checkpoint_every"):
        TrainingCheckpoint(tmp_path, every=0)


def test_keep_last_prunes_the_oldest(tmp_path):
    checkpointer = Checkpointer(tmp_path, keep_last=2)
    for step in (5, 10, 15, 20):
        checkpointer.save({"global_step": step, "value": step})
    assert sorted(os.listdir(tmp_path)) == ["ckpt-15", "ckpt-20"]  # no temporary folders left
    assert checkpointer.load()["value"] == 20
    everything = Checkpointer(tmp_path, keep_last=None)
    everything.save({"global_step": 1, "value": 1})
    assert len(everything.checkpoints()) == 3


@pytest.mark.parametrize("damage", ["flip_tensor_byte", "truncate_state", "drop_manifest",
                                    "edit_state_number"])
def test_corrupted_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, damage):
    model = ember.nn.Linear(3, 2)
    checkpointer = Checkpointer(tmp_path)
    checkpointer.save(training_state(model, global_step=1))
    before = model.weight.numpy().copy()
    model.load_state_dict({"weight": before + 1.0, "bias": model.bias.numpy()})
    newest = checkpointer.save(training_state(model, global_step=2))
    os.makedirs(tmp_path / ".tmp-ckpt-crashed")  # a save that died: ignored
    if damage == "flip_tensor_byte":
        path = os.path.join(newest, "tensors.safetensors")
        data = bytearray(open(path, "rb").read())
        data[-1] ^= 0x40
        open(path, "wb").write(bytes(data))
    elif damage == "truncate_state":
        path = os.path.join(newest, "state.json")
        open(path, "r+b").truncate(10)
    elif damage == "drop_manifest":
        os.remove(os.path.join(newest, "manifest.json"))
    else:
        path = os.path.join(newest, "state.json")
        text = open(path).read().replace('"global_step": 2', '"global_step": 3')
        open(path, "w").write(text)
    with pytest.warns(UserWarning, match="skipping checkpoint.*ckpt-2"):
        assert checkpointer.latest() == os.path.join(tmp_path, "ckpt-1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert checkpointer.restore(model)["global_step"] == 1
    assert model.weight.numpy().tobytes() == before.tobytes()
    with pytest.raises(CheckpointError, match="ckpt-2"):
        checkpointer.load(newest)


def test_resume_without_checkpoints_starts_fresh_and_a_fresh_run_refuses_old_ones(tmp_path):
    model, _ = _array_model()
    x, y = _blobs(16)
    from ember.train.loop import ArrayBatches

    source = ArrayBatches(x, y, batch_size=8)
    checkpoint = TrainingCheckpoint(tmp_path, every="epoch")
    assert checkpoint.begin(model, source, initial_epoch=1) == (source, 1, 0)
    Checkpointer(tmp_path).save(training_state(model, global_step=2))
    with pytest.raises(ember.EmberError, match="resume=True"):
        TrainingCheckpoint(tmp_path).begin(model, source, resume=False)
    with pytest.raises(ember.EmberError, match="checkpoint_every='epoch'"):
        TrainingCheckpoint(tmp_path, every=5).begin(model, iter([]))
