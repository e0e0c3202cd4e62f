"""DataLoader: batches from a dataset, in the main process or in worker processes.

The contract is PyTorch's `torch.utils.data.DataLoader`. Differences, on purpose:
- the random draws made while fetching batch k are seeded from (epoch seed, k), so a seed gives
  the same batches whatever `num_workers` is (see `ember/data/_fetch.py`);
- `state_dict()`/`load_state_dict()` resume an epoch after the last batch yielded;
- Python floats collate to float32 (ember's default float), not float64.
"""
from __future__ import annotations

import multiprocessing
import sys
import weakref
from itertools import islice

from ember._core.errors import EmberError
from ember.data import _fetch
from ember.data._collate import default_collate, default_convert
from ember.data._worker import DataLoaderWorkerError, MultiProcessIterator, WorkerPool
from ember.data.dataset import IterableDataset
from ember.data.sampler import BatchSampler, RandomSampler, SequentialSampler
from ember.random import Generator, default_generator

__all__ = ["DataLoader", "DataLoaderWorkerError", "default_collate", "default_convert"]


def _as_generator(generator) -> Generator:
    if generator is None:
        return Generator(int(default_generator.integers(0, 2**62, size=()).item()))
    if isinstance(generator, Generator):
        return generator
    if isinstance(generator, int) and not isinstance(generator, bool):
        return Generator(generator)
    raise EmberError(f"DataLoader: generator must be an ember.random.Generator, an int seed or "
                     f"None, got {type(generator).__name__}")


def _default_context() -> str:
    # fork starts workers in milliseconds and needs no picklable dataset; elsewhere (macOS,
    # Windows) it is missing or unsafe, and spawn is the portable choice.
    if sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods():
        return "fork"
    return "spawn"


class _SingleProcessIterator:
    def __init__(self, spec, batches, first_batch, base_seed):
        self._spec, self._batches = spec, batches
        self._batch_index, self._base_seed = first_batch, base_seed
        self._stream = iter(spec.dataset) if spec.is_iterable else None
        self.finished = False

    def __next__(self):
        if self.finished:
            raise StopIteration
        if self._spec.is_iterable:
            batch = _fetch.fetch_stream(self._spec, self._stream)
            if batch is _fetch.END_OF_STREAM:
                self.finished = True
                raise StopIteration
            return batch
        payload = next(self._batches, None)
        if payload is None:
            self.finished = True
            raise StopIteration
        with _fetch.seeded_globals(_fetch.batch_seed(self._base_seed, self._batch_index)):
            batch = _fetch.fetch_indices(self._spec, payload)
        self._batch_index += 1
        return batch


class _EpochIterator:
    """One pass over the loader; remembers where the epoch started and how far it got."""

    def __init__(self, source, epoch_start: dict, batches_yielded: int):
        self._source = source
        self.epoch_start = epoch_start
        self.batches_yielded = batches_yielded

    def __iter__(self):
        return self

    def __next__(self):
        batch = next(self._source)
        self.batches_yielded += 1
        return batch

    @property
    def finished(self) -> bool:
        return self._source.finished


class DataLoader:
    """Iterate over `dataset` in batches of Tensors.

    Shuffling draws from `generator` (an `ember.random.Generator` or an int seed); by default a
    generator seeded from the global one when the loader is built, so `ember.manual_seed` first
    makes the order reproducible. With `num_workers > 0`, batches are fetched by that many worker
    processes ('fork' on Linux, else 'spawn', which needs a picklable dataset), each keeping
    `prefetch_factor` batches in flight. A worker's exception is raised here as a
    `DataLoaderWorkerError` carrying the worker's traceback. `timeout` > 0 bounds the wait for
    one batch from the workers. `state_dict()`/`load_state_dict()` resume an epoch exactly when
    its order comes from the loader's generator (shuffle=True) or a sampler with its own
    generator or epoch (DistributedSampler).

    >>> import ember
    >>> data = ember.data.TensorDataset(ember.arange(10))
    >>> loader = ember.data.DataLoader(data, batch_size=4, shuffle=True, generator=0)
    >>> [len(x) for (x,) in loader]
    [4, 4, 2]
    >>> sorted(ember.concat([x for (x,) in loader]).tolist()) == list(range(10))
    True
    """

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool = False, sampler=None,
                 batch_sampler=None, num_workers: int = 0, collate_fn=None,
                 drop_last: bool = False, generator=None, prefetch_factor: int = 2,
                 worker_init_fn=None, persistent_workers: bool = False, timeout: float = 0,
                 multiprocessing_context: str | None = None):
        self._check_arguments(dataset, batch_size, shuffle, sampler, batch_sampler, num_workers,
                              drop_last, prefetch_factor, persistent_workers, timeout)
        self.dataset = dataset
        self.num_workers = num_workers
        self.prefetch_factor = prefetch_factor
        self.worker_init_fn = worker_init_fn
        self.persistent_workers = persistent_workers
        self.timeout = timeout
        self.multiprocessing_context = multiprocessing_context or _default_context()
        self.generator = _as_generator(generator)
        self._is_iterable = isinstance(dataset, IterableDataset)
        if batch_sampler is not None:
            batch_size, drop_last = None, False
        if sampler is None and not self._is_iterable:
            sampler = (RandomSampler(dataset, generator=self.generator) if shuffle
                       else SequentialSampler(dataset))
        if batch_sampler is None and batch_size is not None and not self._is_iterable:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.batch_size, self.drop_last = batch_size, drop_last
        self.sampler, self.batch_sampler = sampler, batch_sampler
        self._auto_collation = batch_sampler is not None or (self._is_iterable
                                                             and batch_size is not None)
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn
        self._generation = 0
        self._pool = None
        self._last_epoch = None
        self._resume = None

    @staticmethod
    def _check_arguments(dataset, batch_size, shuffle, sampler, batch_sampler, num_workers,
                         drop_last, prefetch_factor, persistent_workers, timeout):
        def bad(message):
            raise EmberError(f"DataLoader: {message}")

        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            bad(f"num_workers must be an int >= 0, got {num_workers!r}")
        if batch_size is not None and (isinstance(batch_size, bool)
                                       or not isinstance(batch_size, int) or batch_size < 1):
            bad(f"batch_size must be a positive int or None, got {batch_size!r}")
        if not isinstance(prefetch_factor, int) or prefetch_factor < 1:
            bad(f"prefetch_factor must be a positive int, got {prefetch_factor!r}")
        if timeout < 0:
            bad(f"timeout must be >= 0 seconds, got {timeout!r}")
        if persistent_workers and num_workers == 0:
            bad("persistent_workers=True needs num_workers > 0")
        if isinstance(dataset, IterableDataset):
            if shuffle or sampler is not None or batch_sampler is not None:
                bad("an IterableDataset decides its own order: shuffle, sampler and "
                    "batch_sampler must be left unset (shuffle inside the dataset instead)")
        elif not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
            bad(f"dataset of type {type(dataset).__name__} needs __getitem__ and __len__ (or "
                f"be an ember.data.IterableDataset)")
        if sampler is not None and shuffle:
            bad("sampler and shuffle=True are mutually exclusive (the sampler sets the order)")
        if batch_sampler is not None and (batch_size != 1 or shuffle or sampler is not None
                                          or drop_last):
            bad("batch_sampler is mutually exclusive with batch_size, shuffle, sampler and "
                "drop_last (it decides all of them)")
        if batch_size is None and drop_last:
            bad("drop_last=True needs a batch_size (batch_size=None yields single samples)")

    def __len__(self) -> int:
        if self._is_iterable:
            size = len(self.dataset)
            if self.batch_size is None:
                return size
            return size // self.batch_size if self.drop_last else -(-size // self.batch_size)
        return len(self.batch_sampler if self.batch_sampler is not None else self.sampler)

    # ---- iteration ------------------------------------------------------------------
    def _spec(self, base_seed: int) -> _fetch.FetchSpec:
        return _fetch.FetchSpec(self.dataset, self.collate_fn, self._auto_collation,
                                self._is_iterable, self.batch_size, self.drop_last,
                                self.worker_init_fn, base_seed, self.num_workers)

    def _stateful_parts(self) -> dict:
        parts = {"sampler": self.sampler, "batch_sampler": self.batch_sampler}
        return {name: part for name, part in parts.items() if hasattr(part, "state_dict")}

    def _epoch_start_state(self) -> dict:
        state = {"generator": self.generator.get_state()}
        state.update({name: part.state_dict() for name, part in self._stateful_parts().items()})
        return state

    def _restore_epoch_start(self, state: dict):
        self.generator.set_state(state["generator"])
        for name, part in self._stateful_parts().items():
            if name in state:
                part.load_state_dict(state[name])

    def __iter__(self) -> _EpochIterator:
        resume, self._resume = self._resume, None
        skip = 0
        if resume is not None:
            self._restore_epoch_start(resume["epoch_start"])
            skip = resume["batches_yielded"]
        epoch_start = self._epoch_start_state()
        # Drawn first and then the order, always in this sequence, so a restored generator
        # replays the same epoch.
        base_seed = int(self.generator.integers(0, 2**62, size=()).item())
        batches = None
        if not self._is_iterable:
            order = self.batch_sampler if self._auto_collation else self.sampler
            batches = islice(iter(order), skip, None)
        self._generation += 1
        if self.num_workers == 0:
            source = _SingleProcessIterator(self._spec(base_seed), batches, skip, base_seed)
        else:
            source = MultiProcessIterator(self._worker_pool(base_seed), self._spec(base_seed),
                                          batches, skip, self._generation, base_seed,
                                          self.prefetch_factor, self.timeout,
                                          self.persistent_workers)
        epoch = _EpochIterator(source, epoch_start, skip)
        self._last_epoch = weakref.ref(epoch)
        return epoch

    def _worker_pool(self, base_seed: int) -> WorkerPool:
        if self._pool is not None and self._pool.alive:
            return self._pool
        context = multiprocessing.get_context(self.multiprocessing_context)
        pool = WorkerPool(self._spec(base_seed), context)
        self._pool = pool if self.persistent_workers else None
        return pool

    # ---- resuming -------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Where the current epoch stands: its starting generator/sampler state and the number
        of batches already yielded. `load_state_dict` makes the next `iter()` yield the rest.

        >>> import ember
        >>> loader = ember.data.DataLoader(list(range(6)), batch_size=2, shuffle=True,
        ...                                generator=1)
        >>> epoch = iter(loader)
        >>> first = next(epoch)
        >>> state = loader.state_dict()
        >>> rest = [b.tolist() for b in epoch]
        >>> loader.load_state_dict(state)
        >>> [b.tolist() for b in loader] == rest
        True
        """
        if self._resume is not None:
            return self._resume
        epoch = self._last_epoch() if self._last_epoch is not None else None
        if epoch is not None and not epoch.finished:
            return {"epoch_start": epoch.epoch_start, "batches_yielded": epoch.batches_yielded}
        return {"epoch_start": self._epoch_start_state(), "batches_yielded": 0}

    def load_state_dict(self, state: dict):
        """Make the next `iter(loader)` continue the epoch that `state` describes."""
        if not isinstance(state, dict) or {"epoch_start", "batches_yielded"} - set(state):
            raise EmberError("DataLoader.load_state_dict: expected a dict from "
                             "DataLoader.state_dict() with keys 'epoch_start' and "
                             f"'batches_yielded', got {state!r:.200}")
        yielded = state["batches_yielded"]
        if self._is_iterable and yielded:
            raise EmberError("DataLoader.load_state_dict: cannot resume an IterableDataset "
                             "mid-epoch (a stream has no positions); restart the epoch instead")
        if not isinstance(yielded, int) or yielded < 0 \
                or (not self._is_iterable and yielded > len(self)):
            raise EmberError(f"DataLoader.load_state_dict: batches_yielded must be in "
                             f"[0, {len(self)}], got {yielded!r}")
        self._resume = state
