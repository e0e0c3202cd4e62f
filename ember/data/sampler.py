"""Samplers: which indices a DataLoader fetches, in which order, and how they group into batches.

Random samplers draw from an `ember.random.Generator`. Without one they seed a fresh generator
from the global one at every pass (as PyTorch does), so `ember.manual_seed` makes them
reproducible. Samplers with state expose `state_dict()`/`load_state_dict()` so a DataLoader can
resume mid-epoch.
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence

import numpy as np

from ember._core.errors import EmberError
from ember._core.tensor import Tensor
from ember.random import Generator, default_generator


def _fresh_generator() -> Generator:
    return Generator(int(default_generator.integers(0, 2**62, size=()).item()))


def _check_count(name: str, value, allow_zero: bool = False):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
            or value < (0 if allow_zero else 1):
        bound = "non-negative" if allow_zero else "positive"
        raise EmberError(f"{name} must be a {bound} int, got {value!r}")


class Sampler:
    """Base class: subclasses define `__iter__` (indices) and usually `__len__`."""

    def __init__(self, data_source=None):
        pass

    def __iter__(self) -> Iterator[int]:
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")


class _GeneratorState:
    """Mixin: the sampler's own generator is its resumable state."""

    generator: Generator | None

    def state_dict(self) -> dict:
        return {"generator": None if self.generator is None else self.generator.get_state()}

    def load_state_dict(self, state: dict):
        if state.get("generator") is not None and self.generator is not None:
            self.generator.set_state(state["generator"])


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1.

    >>> import ember
    >>> list(ember.data.SequentialSampler(range(3)))
    [0, 1, 2]
    """

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class RandomSampler(_GeneratorState, Sampler):
    """A random permutation of the indices, or `num_samples` draws with replacement.

    >>> import ember
    >>> sorted(ember.data.RandomSampler(range(5), generator=ember.random.Generator(0)))
    [0, 1, 2, 3, 4]
    """

    def __init__(self, data_source, replacement: bool = False, num_samples: int | None = None,
                 generator: Generator | None = None):
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        if not isinstance(replacement, bool):
            raise EmberError(f"RandomSampler: replacement must be a bool, got {replacement!r}")
        if num_samples is not None:
            _check_count("RandomSampler: num_samples", num_samples)

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):
        generator = self.generator or _fresh_generator()
        size = len(self.data_source)
        if self.replacement:
            return iter(generator.integers(0, size, self.num_samples).numpy().tolist())
        # Without replacement num_samples may exceed the size: whole permutations, then a part.
        order = [generator.permutation(size).numpy() for _ in range(self.num_samples // size)]
        order.append(generator.permutation(size).numpy()[: self.num_samples % size])
        return iter(np.concatenate(order).tolist())

    def __len__(self):
        return self.num_samples


class SubsetRandomSampler(_GeneratorState, Sampler):
    """The given indices in a random order.

    >>> import ember
    >>> sorted(ember.data.SubsetRandomSampler([7, 3, 5]))
    [3, 5, 7]
    """

    def __init__(self, indices: Sequence[int], generator: Generator | None = None):
        self.indices = indices
        self.generator = generator

    def __iter__(self):
        generator = self.generator or _fresh_generator()
        order = generator.permutation(len(self.indices)).numpy().tolist()
        return iter([self.indices[i] for i in order])

    def __len__(self):
        return len(self.indices)


class WeightedRandomSampler(_GeneratorState, Sampler):
    """`num_samples` indices drawn with probability proportional to `weights`.

    >>> import ember
    >>> draws = list(ember.data.WeightedRandomSampler([0.0, 1.0, 0.0], 4))
    >>> draws
    [1, 1, 1, 1]
    """

    def __init__(self, weights, num_samples: int, replacement: bool = True,
                 generator: Generator | None = None):
        _check_count("WeightedRandomSampler: num_samples", num_samples)
        if not isinstance(replacement, bool):
            raise EmberError(f"WeightedRandomSampler: replacement must be a bool, "
                             f"got {replacement!r}")
        weights = weights.cpu().numpy() if isinstance(weights, Tensor) else weights
        self.weights = np.asarray(weights, dtype=np.float64)
        if self.weights.ndim != 1 or self.weights.size == 0:
            raise EmberError(f"WeightedRandomSampler: weights must be a non-empty 1-D sequence, "
                             f"got shape {self.weights.shape}")
        if not np.all(np.isfinite(self.weights)) or np.any(self.weights < 0) \
                or self.weights.sum() <= 0:
            raise EmberError("WeightedRandomSampler: weights must be finite, non-negative and "
                             "not all zero")
        if not replacement and num_samples > np.count_nonzero(self.weights):
            raise EmberError(f"WeightedRandomSampler: cannot draw {num_samples} samples without "
                             f"replacement from {np.count_nonzero(self.weights)} non-zero weights")
        self.num_samples = int(num_samples)
        self.replacement = replacement
        self.generator = generator

    def __iter__(self):
        generator = self.generator or _fresh_generator()
        uniform = generator.random(self.num_samples if self.replacement else self.weights.size,
                                   dtype="float64").numpy()
        if self.replacement:
            cumulative = np.cumsum(self.weights)
            drawn = np.searchsorted(cumulative, uniform * cumulative[-1], side="right")
            return iter(np.minimum(drawn, self.weights.size - 1).tolist())
        # Efraimidis-Spirakis: the k largest u^(1/w) are a weighted draw without replacement,
        # the same law as drawing one at a time and renormalizing.
        with np.errstate(divide="ignore"):
            keys = np.log(uniform) / self.weights
        return iter(np.argsort(-keys, kind="stable")[: self.num_samples].tolist())

    def __len__(self):
        return self.num_samples


class BatchSampler(Sampler):
    """Groups another sampler's indices into lists of `batch_size`.

    >>> import ember
    >>> list(ember.data.BatchSampler(range(5), batch_size=2, drop_last=False))
    [[0, 1], [2, 3], [4]]
    """

    def __init__(self, sampler, batch_size: int, drop_last: bool):
        _check_count("BatchSampler: batch_size", batch_size)
        if not isinstance(drop_last, bool):
            raise EmberError(f"BatchSampler: drop_last must be a bool, got {drop_last!r}")
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.drop_last = drop_last

    def __iter__(self):
        batch = []
        for index in self.sampler:
            batch.append(index)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self):
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return math.ceil(len(self.sampler) / self.batch_size)


_LAUNCHER_ENV = (("WORLD_SIZE", "RANK"), ("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"),
                 ("PMI_SIZE", "PMI_RANK"))


def _launcher_topology() -> tuple[int, int]:
    # The launchers (mpiexec from MPICH or Open MPI, torchrun-style) export these; reading them
    # keeps this module free of an MPI import.
    for size_name, rank_name in _LAUNCHER_ENV:
        if size_name in os.environ and rank_name in os.environ:
            return int(os.environ[size_name]), int(os.environ[rank_name])
    return 1, 0


class DistributedSampler(Sampler):
    """This replica's share of the indices: every index lands on exactly one rank per epoch.

    `num_replicas` and `rank` default to what the launcher exported (mpiexec, or WORLD_SIZE and
    RANK), else 1 and 0. Shuffling is seeded by `seed + epoch`, so all ranks agree on the
    permutation; call `set_epoch(epoch)` before each epoch. Without `drop_last` the tail is
    padded with indices from the start so each rank gets the same count.

    >>> import ember
    >>> ranks = [list(ember.data.DistributedSampler(range(5), num_replicas=2, rank=r,
    ...                                             shuffle=False)) for r in range(2)]
    >>> ranks
    [[0, 2, 4], [1, 3, 0]]
    """

    def __init__(self, dataset, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False):
        launcher_replicas, launcher_rank = _launcher_topology()
        num_replicas = launcher_replicas if num_replicas is None else num_replicas
        rank = launcher_rank if rank is None else rank
        _check_count("DistributedSampler: num_replicas", num_replicas)
        _check_count("DistributedSampler: rank", rank, allow_zero=True)
        if rank >= num_replicas:
            raise EmberError(f"DistributedSampler: rank must be in [0, {num_replicas - 1}] for "
                             f"num_replicas={num_replicas}, got {rank}")
        self.dataset = dataset
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0
        size = len(dataset)
        if drop_last and size % self.num_replicas:
            self.num_samples = math.ceil((size - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(size / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch: int):
        """Reshuffle for `epoch`; every rank must call it with the same value."""
        self.epoch = epoch

    def __iter__(self):
        size = len(self.dataset)
        if self.shuffle:
            indices = Generator(self.seed + self.epoch).permutation(size).numpy().tolist()
        else:
            indices = list(range(size))
        if self.drop_last:
            indices = indices[: self.total_size]
        else:
            padding = self.total_size - len(indices)
            repeats = math.ceil(padding / len(indices)) if indices else 0
            indices += (indices * repeats)[:padding]
        return iter(indices[self.rank:self.total_size:self.num_replicas])

    def __len__(self):
        return self.num_samples

    def state_dict(self) -> dict:
        return {"epoch": self.epoch}

    def load_state_dict(self, state: dict):
        self.epoch = state["epoch"]
