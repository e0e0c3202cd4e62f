"""DataLoader and default_collate (ember/data/loader.py, _collate.py, _fetch.py, _worker.py).

Every loader with workers gets timeout=20, so a bug fails the test instead of hanging the suite.
Datasets are module-level classes so the 'spawn' start method can pickle them.
"""
from __future__ import annotations

import collections
import gc
import json
import multiprocessing
import os
import random
import time

import numpy as np
import pytest

import ember
from ember.data import (
    BatchSampler,
    DataLoader,
    DataLoaderWorkerError,
    Dataset,
    IterableDataset,
    SequentialSampler,
    TensorDataset,
    WeightedRandomSampler,
    default_collate,
    get_worker_info,
)

WAIT = 20  # seconds a worker test may wait for one batch


class Augmented(Dataset):
    """Each item draws from all three global generators, like a random augmentation would."""

    def __init__(self, size=22):
        self.size = size

    def __len__(self):
        return self.size

    def __getitem__(self, index):
        noise = ember.rand(3) + np.float32(np.random.rand()) + np.float32(random.random())
        return noise, index


class Failing(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, index):
        if index == 5:
            raise ValueError(f"corrupt sample {index}")
        return np.full(2, index, dtype=np.float32)


class WhoFetched(Dataset):
    def __len__(self):
        return 12

    def __getitem__(self, index):
        info = get_worker_info()
        return {"index": index, "worker": info.id, "workers": info.num_workers,
                "seed": info.seed, "pid": os.getpid(), "same_dataset": info.dataset is self}


class Shards(IterableDataset):
    """Each worker yields its own slice of range(size), as PyTorch documents for streams."""

    def __init__(self, size=11):
        self.size = size

    def __iter__(self):
        info = get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        return iter(range(worker, self.size, workers))


class Sleepy(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, index):
        time.sleep(1.5)
        return index


class Crashing(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, index):
        os._exit(3)


def _seed_numpy_per_worker(worker_id):
    np.random.seed(100 + worker_id)


def _collate_to_closure(samples):
    return lambda: samples  # a batch that cannot be pickled back to the main process


def _batches(loader):
    return [tuple(np.array(part).tolist() for part in batch) for batch in loader]


@pytest.fixture
def new_children():
    """The child processes started since the test began (other tests' children don't count)."""
    before = {process.pid for process in multiprocessing.active_children()}
    return lambda: [p for p in multiprocessing.active_children() if p.pid not in before]


# ---- batching, collation ------------------------------------------------------------------
def test_batches_lengths_and_drop_last():
    data = TensorDataset(np.arange(10, dtype=np.float32), np.arange(10))
    loader = DataLoader(data, batch_size=4)
    shapes = [x.shape for x, _ in loader]
    assert shapes == [(4,), (4,), (2,)] and len(loader) == 3
    dropped = DataLoader(data, batch_size=4, drop_last=True)
    assert [y.tolist() for _, y in dropped] == [[0, 1, 2, 3], [4, 5, 6, 7]] and len(dropped) == 2


def test_default_collate_keeps_structure():
    Point = collections.namedtuple("Point", "x y")
    samples = [{"image": np.ones((2, 2), np.float32) * i, "label": i, "weight": 0.5,
                "name": f"s{i}", "point": Point(ember.tensor([1.0]), True)} for i in range(3)]
    batch = default_collate(samples)
    assert batch["image"].shape == (3, 2, 2) and batch["image"].dtype == ember.float32
    assert batch["label"].dtype == ember.int64 and batch["label"].tolist() == [0, 1, 2]
    assert batch["weight"].dtype == ember.float32
    assert batch["name"] == ["s0", "s1", "s2"]
    assert isinstance(batch["point"], Point) and batch["point"].x.shape == (3, 1)
    assert batch["point"].y.dtype == ember.bool
    pairs = default_collate([(np.zeros(2), [1, 2]), (np.ones(2), [3, 4])])
    assert isinstance(pairs, tuple) and [t.tolist() for t in pairs[1]] == [[1, 3], [2, 4]]


def test_default_collate_errors_name_the_field():
    with pytest.raises(ember.ShapeError, match=r"\['x'\].*\(2,\).*\(3,\)"):
        default_collate([{"x": np.zeros(2)}, {"x": np.zeros(3)}])
    with pytest.raises(ember.EmberError, match="cannot batch samples of type object"):
        default_collate([object(), object()])


def test_custom_collate_and_single_samples():
    data = [np.array([i, i], np.float32) for i in range(5)]
    loader = DataLoader(data, batch_size=2, collate_fn=lambda samples: len(samples))
    assert list(loader) == [2, 2, 1]
    singles = list(DataLoader(data, batch_size=None))
    assert len(singles) == 5 and isinstance(singles[3], ember.Tensor)
    assert singles[3].tolist() == [3.0, 3.0]


def test_samplers_plug_in():
    data = list(range(6))
    weighted = DataLoader(data, batch_size=3, sampler=WeightedRandomSampler(
        [0.0, 0.0, 1.0, 0.0, 0.0, 0.0], 6))
    assert [b.tolist() for b in weighted] == [[2, 2, 2], [2, 2, 2]]
    pairs = BatchSampler(SequentialSampler(data), batch_size=2, drop_last=False)
    assert [b.tolist() for b in DataLoader(data, batch_sampler=pairs)] == [[0, 1], [2, 3], [4, 5]]


@pytest.mark.parametrize("arguments,message", [
    ({"sampler": SequentialSampler(range(4)), "shuffle": True}, "mutually exclusive"),
    ({"batch_sampler": [[0]], "batch_size": 2}, "batch_sampler is mutually exclusive"),
    ({"persistent_workers": True}, "num_workers > 0"),
    ({"batch_size": 0}, "batch_size must be a positive int"),
    ({"generator": "seed"}, "generator must be"),
])
def test_bad_arguments(arguments, message):
    with pytest.raises(ember.EmberError, match=message):
        DataLoader(list(range(4)), **arguments)
    with pytest.raises(ember.EmberError, match="IterableDataset decides its own order"):
        DataLoader(Shards(), shuffle=True)


# ---- shuffling and seeding ----------------------------------------------------------------
def test_shuffle_is_reproducible_from_seed_or_manual_seed():
    data = list(range(20))
    order = [b.tolist() for b in DataLoader(data, batch_size=5, shuffle=True, generator=3)]
    assert sorted(sum(order, [])) == data and sum(order, []) != data
    assert [b.tolist() for b in DataLoader(data, batch_size=5, shuffle=True,
                                           generator=ember.random.Generator(3))] == order
    ember.manual_seed(1)
    loader = DataLoader(data, batch_size=5, shuffle=True)
    epochs = [[b.tolist() for b in loader] for _ in range(2)]
    assert epochs[0] != epochs[1]  # each epoch draws a new order
    ember.manual_seed(1)
    assert [b.tolist() for b in DataLoader(data, batch_size=5, shuffle=True)] == epochs[0]


def test_workers_give_the_same_batches_as_the_main_process(new_children):
    results, after = {}, {}
    for workers in (0, 2):
        ember.manual_seed(0)
        loader = DataLoader(Augmented(), batch_size=4, shuffle=True, num_workers=workers,
                            timeout=WAIT)
        results[workers] = [_batches(loader) for _ in range(2)]
        after[workers] = ember.rand(2).tolist()
    assert results[0] == results[2]
    assert results[0][0] != results[0][1]  # new order and new augmentations each epoch
    assert after[0] == after[2]  # fetching leaves the main process's global stream alike
    indices = sorted(i for _, batch in results[0][0] for i in batch)
    assert indices == list(range(22))
    assert new_children() == []


def test_worker_info_and_worker_init_fn():
    loader = DataLoader(WhoFetched(), batch_size=3, num_workers=2, timeout=WAIT,
                        worker_init_fn=_seed_numpy_per_worker)
    batches = list(loader)
    workers = sorted({w for batch in batches for w in batch["worker"].tolist()})
    assert workers == [0, 1]
    assert all(batch["workers"].tolist() == [2, 2, 2] for batch in batches)
    assert all(all(batch["same_dataset"]) for batch in batches)
    seeds = {}
    for batch in batches:
        seeds.update(zip(batch["worker"].tolist(), batch["seed"].tolist()))
    assert seeds[1] == seeds[0] + 1  # base seed + worker id, as in PyTorch
    assert os.getpid() not in {p for batch in batches for p in batch["pid"].tolist()}
    assert get_worker_info() is None


def test_iterable_dataset_shards_across_workers():
    single = sorted(sum((b.tolist() for b in DataLoader(Shards(), batch_size=3)), []))
    assert single == list(range(11))
    loader = DataLoader(Shards(), batch_size=3, num_workers=2, timeout=WAIT)
    together = [b.tolist() for b in loader]
    assert sorted(sum(together, [])) == list(range(11))  # each sample exactly once
    assert together[0] == [0, 2, 4] and together[1] == [1, 3, 5]  # workers take turns
    dropped = [b.tolist() for b in DataLoader(Shards(), batch_size=4, num_workers=2,
                                              drop_last=True, timeout=WAIT)]
    assert dropped == [[0, 2, 4, 6], [1, 3, 5, 7]]


def test_persistent_workers_serve_several_epochs(new_children):
    ember.manual_seed(2)
    reference = DataLoader(Augmented(10), batch_size=3, shuffle=True)
    expected = [_batches(reference) for _ in range(2)]
    ember.manual_seed(2)
    loader = DataLoader(Augmented(10), batch_size=3, shuffle=True, num_workers=2,
                        persistent_workers=True, timeout=WAIT)
    assert [_batches(loader) for _ in range(2)] == expected
    assert len(new_children()) == 2  # still alive between epochs
    iter(loader)  # abandoned epoch: its leftover results must not leak into the next one
    assert len(_batches(loader)) == 4
    del loader
    gc.collect()
    assert new_children() == []


# ---- failures and shutdown ----------------------------------------------------------------
def test_worker_exception_reaches_the_main_process(new_children):
    loader = DataLoader(Failing(), batch_size=2, num_workers=2, timeout=WAIT)
    with pytest.raises(DataLoaderWorkerError) as caught:
        list(loader)
    message = str(caught.value)
    assert "worker 0" in message and "corrupt sample 5" in message
    assert "Traceback (most recent call last)" in message and "__getitem__" in message
    assert isinstance(caught.value, ValueError) and caught.value.worker_id == 0
    assert new_children() == []


def test_main_process_exceptions_are_the_original():
    with pytest.raises(ValueError, match="corrupt sample 5"):
        list(DataLoader(Failing(), batch_size=2))


def test_workers_stop_when_the_iterator_is_dropped(new_children):
    epoch = iter(DataLoader(Augmented(), batch_size=2, num_workers=2, timeout=WAIT))
    next(epoch)
    assert len(new_children()) == 2
    del epoch
    gc.collect()
    assert new_children() == []


def test_timeout_and_dead_workers_raise_instead_of_hanging(new_children):
    with pytest.raises(ember.EmberError, match="timed out"):
        list(DataLoader(Sleepy(), batch_size=1, num_workers=1, timeout=0.3))
    with pytest.raises(DataLoaderWorkerError, match="exited unexpectedly.*exit code 3"):
        list(DataLoader(Crashing(), batch_size=1, num_workers=1, timeout=WAIT))
    assert new_children() == []


def test_unpicklable_batch_is_reported():
    loader = DataLoader(list(range(4)), batch_size=2, num_workers=1, timeout=WAIT,
                        collate_fn=_collate_to_closure)
    with pytest.raises(DataLoaderWorkerError, match="worker 0"):
        list(loader)


def test_spawn_start_method():
    ember.manual_seed(4)
    expected = _batches(DataLoader(Augmented(6), batch_size=2, shuffle=True))
    ember.manual_seed(4)
    loader = DataLoader(Augmented(6), batch_size=2, shuffle=True, num_workers=1, timeout=WAIT,
                        multiprocessing_context="spawn")
    assert _batches(loader) == expected


# ---- resuming mid-epoch -------------------------------------------------------------------
@pytest.mark.parametrize("workers", [0, 2])
def test_resume_yields_the_remaining_batches_exactly(workers):
    def make():
        return DataLoader(Augmented(), batch_size=3, shuffle=True, generator=9,
                          num_workers=workers, timeout=WAIT)

    loader = make()
    _batches(loader)  # a finished first epoch, so the state is not just the initial one
    epoch = iter(loader)
    seen = [next(epoch) for _ in range(3)]
    state = json.loads(json.dumps(loader.state_dict()))  # plain data, fit for a checkpoint
    remaining = _batches(epoch)
    next_epoch = _batches(loader)
    assert len(seen) + len(remaining) == len(loader)

    resumed = make()
    resumed.load_state_dict(state)
    assert _batches(resumed) == remaining
    assert _batches(resumed) == next_epoch  # and the epoch after continues alike
    with pytest.raises(ember.EmberError, match="batches_yielded"):
        resumed.load_state_dict({"epoch_start": state["epoch_start"], "batches_yielded": 99})
