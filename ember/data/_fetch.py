"""What one batch fetch does, in the main process or a worker: seeding, indexing, collating.

Reproducibility rule: before fetching batch k of an epoch, the global generators (ember's,
NumPy's legacy one and Python's `random`) are seeded from (base_seed, k), where base_seed is drawn
once per epoch from the loader's generator. A batch's random augmentations therefore depend only
on the seed and the batch's position, never on which process fetched it: `num_workers=0` and
`num_workers=2` give identical batches. (PyTorch seeds each worker once, so its batches change
with the worker count.) In the main process the previous global state is restored afterwards, so
fetching leaves the user's random streams exactly as running the fetch in a worker would.
Iterable datasets are not reseeded per batch: a stream's state runs on from batch to batch, and
with workers each worker is seeded once with base_seed + worker id, as in PyTorch.
"""
from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from itertools import islice

import numpy as np

from ember import random as ember_random

END_OF_STREAM = object()  # an iterable dataset ran out (a value, so it can't be mistaken)


@dataclass(frozen=True)
class WorkerInfo:
    """Who this worker is: `id` in [0, num_workers), its `seed`, and its copy of `dataset`."""

    id: int
    num_workers: int
    seed: int
    dataset: object


_worker_info: WorkerInfo | None = None


def get_worker_info() -> WorkerInfo | None:
    """Inside a DataLoader worker process: its `WorkerInfo`; in the main process: None.

    An `IterableDataset` uses it to read only its worker's share of the stream.

    >>> import ember
    >>> ember.data.get_worker_info() is None
    True
    """
    return _worker_info


def set_worker_info(info: WorkerInfo):
    global _worker_info
    _worker_info = info


def batch_seed(base_seed: int, batch_index: int) -> int:
    """A 64-bit seed for batch `batch_index` of the epoch whose base seed is `base_seed`."""
    sequence = np.random.SeedSequence([base_seed, batch_index])
    return int(sequence.generate_state(1, np.uint64)[0])


def seed_globals(seed: int):
    ember_random.default_generator.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


@contextlib.contextmanager
def seeded_globals(seed: int):
    """Seed the global generators for one fetch, then put their previous state back."""
    saved = (ember_random.default_generator.get_state(), np.random.get_state(),
             random.getstate())
    seed_globals(seed)
    try:
        yield
    finally:
        ember_random.default_generator.set_state(saved[0])
        np.random.set_state(saved[1])
        random.setstate(saved[2])


@dataclass
class FetchSpec:
    """Everything a worker needs to produce batches (pickled for the 'spawn' start method)."""

    dataset: object
    collate_fn: object
    auto_collation: bool  # False when batch_size=None: one sample per "batch"
    is_iterable: bool
    batch_size: int | None
    drop_last: bool
    worker_init_fn: object = None
    base_seed: int = 0
    num_workers: int = 0


def fetch_indices(spec: FetchSpec, payload):
    """The collated batch for `payload`: a list of indices, or one index without auto-collation."""
    dataset = spec.dataset
    if not spec.auto_collation:
        return spec.collate_fn(dataset[payload])
    getitems = getattr(dataset, "__getitems__", None)
    samples = getitems(payload) if callable(getitems) else [dataset[i] for i in payload]
    return spec.collate_fn(samples)


def fetch_stream(spec: FetchSpec, stream):
    """The next collated batch from an iterable dataset's iterator, or END_OF_STREAM."""
    if not spec.auto_collation:
        sample = next(stream, END_OF_STREAM)
        return sample if sample is END_OF_STREAM else spec.collate_fn(sample)
    samples = list(islice(stream, spec.batch_size))
    if not samples or (spec.drop_last and len(samples) < spec.batch_size):
        return END_OF_STREAM
    return spec.collate_fn(samples)
