"""Datasets: the map-style and iterable protocols, plus the small combinators around them.

PyTorch's `torch.utils.data` is the contract: a map-style dataset has `__getitem__` and
`__len__`; an iterable dataset has `__iter__`. A dataset may also define `__getitems__(indices)`
to fetch a whole batch at once; the DataLoader uses it when present.
"""
from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

import numpy as np

from ember._core.errors import EmberError, ShapeError
from ember._core.tensor import Tensor
from ember.data._collate import StackedSamples
from ember.ops.creation import asarray
from ember.random import Generator, default_generator


class Dataset:
    """A map-style dataset: subclasses define `__getitem__(index)` and `__len__()`.

    >>> import ember
    >>> class Squares(ember.data.Dataset):
    ...     def __len__(self):
    ...         return 4
    ...     def __getitem__(self, index):
    ...         return index * index
    >>> [Squares()[i] for i in range(4)]
    [0, 1, 4, 9]
    """

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __add__(self, other: "Dataset") -> "ConcatDataset":
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A stream of samples: subclasses define `__iter__()`.

    With `num_workers > 0` every worker iterates its own copy; split the stream between workers
    with `ember.data.get_worker_info()` (id, num_workers), or each sample arrives once per worker.

    >>> import ember
    >>> class Count(ember.data.IterableDataset):
    ...     def __iter__(self):
    ...         return iter(range(3))
    >>> list(Count())
    [0, 1, 2]
    """

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")

    def __add__(self, other: "IterableDataset") -> "ChainDataset":
        return ChainDataset([self, other])


class TensorDataset(Dataset):
    """Samples are rows of equally long tensors (or arrays): item i is `(t[i] for t in tensors)`.

    >>> import ember
    >>> data = ember.data.TensorDataset(ember.arange(6).reshape(3, 2), ember.tensor([0, 1, 0]))
    >>> len(data), data[1]
    (3, (tensor([2, 3]), tensor(1)))
    """

    def __init__(self, *tensors):
        if not tensors:
            raise EmberError("TensorDataset needs at least one tensor")
        self.tensors = tuple(t if isinstance(t, Tensor) else asarray(t) for t in tensors)
        lengths = [t.shape[0] if t.ndim else None for t in self.tensors]
        if None in lengths or len(set(lengths)) != 1:
            shapes = ", ".join(str(t.shape) for t in self.tensors)
            raise ShapeError(f"TensorDataset: all tensors must share the same first dimension "
                             f"(the number of samples); got shapes {shapes}")

    def __len__(self):
        return self.tensors[0].shape[0]

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __getitems__(self, indices: list) -> StackedSamples:
        # One gather per tensor for the whole batch: ~30x faster than a Python loop of rows.
        rows = np.asarray(indices, dtype=np.int64)
        return StackedSamples(tuple(t[rows] for t in self.tensors))


class Subset(Dataset):
    """The samples of `dataset` at `indices`, in that order.

    >>> import ember
    >>> data = ember.data.Subset(list("abcde"), [4, 0])
    >>> len(data), data[0], data[1]
    (2, 'e', 'a')
    """

    def __init__(self, dataset, indices: Sequence[int]):
        self.dataset = dataset
        self.indices = indices

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, index):
        if isinstance(index, list):
            return self.dataset[[self.indices[i] for i in index]]
        return self.dataset[self.indices[index]]

    def __getitems__(self, indices: list) -> list:
        mapped = [self.indices[i] for i in indices]
        if callable(getattr(self.dataset, "__getitems__", None)):
            return self.dataset.__getitems__(mapped)
        return [self.dataset[i] for i in mapped]


class ConcatDataset(Dataset):
    """Map-style datasets one after another; `cumulative_sizes[i]` ends dataset i.

    >>> import ember
    >>> data = ember.data.ConcatDataset([[1, 2], [3, 4, 5]])
    >>> len(data), data[2], data[-1], data.cumulative_sizes
    (5, 3, 5, [2, 5])
    """

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise EmberError("ConcatDataset needs at least one dataset")
        for position, dataset in enumerate(self.datasets):
            if isinstance(dataset, IterableDataset):
                raise EmberError(f"ConcatDataset: dataset {position} is an IterableDataset, "
                                 f"which has no indices; use ChainDataset for streams")
        self.cumulative_sizes = np.cumsum([len(d) for d in self.datasets]).tolist()

    def __len__(self):
        return self.cumulative_sizes[-1]

    def __getitem__(self, index):
        if index < 0:
            if -index > len(self):
                raise IndexError(f"index {index} is out of range for a dataset of {len(self)}")
            index += len(self)
        which = bisect.bisect_right(self.cumulative_sizes, index)
        if which == len(self.datasets):
            raise IndexError(f"index {index} is out of range for a dataset of {len(self)}")
        start = self.cumulative_sizes[which - 1] if which > 0 else 0
        return self.datasets[which][index - start]


class ChainDataset(IterableDataset):
    """Iterable datasets one after another.

    >>> import ember
    >>> list(ember.data.ChainDataset([range(2), range(3)]))
    [0, 1, 0, 1, 2]
    """

    def __init__(self, datasets):
        self.datasets = list(datasets)

    def __iter__(self):
        for dataset in self.datasets:
            yield from dataset

    def __len__(self):
        return sum(len(d) for d in self.datasets)


def _split_lengths(total: int, lengths: Sequence) -> list[int]:
    is_fractions = all(0 <= x <= 1 for x in lengths) and math.isclose(sum(lengths), 1.0) \
        and any(not isinstance(x, int) for x in lengths)
    if is_fractions:
        counts = [int(math.floor(total * fraction)) for fraction in lengths]
        # As PyTorch: hand the remainder out one by one, round robin from the first split.
        for i in range(total - sum(counts)):
            counts[i % len(counts)] += 1
        return counts
    if any(not isinstance(x, (int, np.integer)) or x < 0 for x in lengths):
        raise EmberError(f"random_split: lengths must be non-negative ints or fractions summing "
                         f"to 1, got {list(lengths)}")
    if sum(lengths) != total:
        raise EmberError(f"random_split: lengths {list(lengths)} sum to {sum(lengths)}, but "
                         f"the dataset has {total} samples")
    return [int(x) for x in lengths]


def random_split(dataset, lengths: Sequence, generator: Generator | None = None) -> list[Subset]:
    """Split `dataset` into non-overlapping random `Subset`s of the given lengths.

    `lengths` are counts summing to `len(dataset)` or fractions summing to 1. The permutation
    comes from `generator` (default: the global one, so `ember.manual_seed` fixes it).

    >>> import ember
    >>> train, test = ember.data.random_split(range(10), [0.8, 0.2],
    ...                                       generator=ember.random.Generator(0))
    >>> len(train), len(test), sorted(list(train) + list(test)) == list(range(10))
    (8, 2, True)
    """
    counts = _split_lengths(len(dataset), list(lengths))
    order = (generator or default_generator).permutation(sum(counts)).numpy().tolist()
    subsets, start = [], 0
    for count in counts:
        subsets.append(Subset(dataset, order[start:start + count]))
        start += count
    return subsets
