"""Datasets and random_split (ember/data/dataset.py)."""
from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.data import (
    ChainDataset,
    ConcatDataset,
    Dataset,
    IterableDataset,
    Subset,
    TensorDataset,
    random_split,
)


class _Range(Dataset):
    def __init__(self, size):
        self.size = size

    def __len__(self):
        return self.size

    def __getitem__(self, index):
        if not 0 <= index < self.size:
            raise IndexError(index)
        return index


def test_tensor_dataset_rows_and_arrays():
    features = np.arange(12, dtype=np.float32).reshape(4, 3)
    data = TensorDataset(features, ember.tensor([0, 1, 2, 3]))
    assert len(data) == 4
    row, label = data[2]
    assert isinstance(row, ember.Tensor) and row.tolist() == [6.0, 7.0, 8.0]
    assert label.item() == 2


def test_tensor_dataset_fetches_whole_batches():
    data = TensorDataset(np.arange(10, dtype=np.float32).reshape(5, 2), np.arange(5))
    samples = data.__getitems__([4, 1])
    assert len(samples) == 2
    assert [t.tolist() for t in samples[0]] == [t.tolist() for t in data[4]]
    features, labels = ember.data.default_collate(samples)  # already stacked: used as is
    assert features.tolist() == [[8.0, 9.0], [2.0, 3.0]] and labels.tolist() == [4, 1]
    batches = list(ember.data.DataLoader(Subset(data, [3, 0, 2]), batch_size=2))
    assert [b[1].tolist() for b in batches] == [[3, 0], [2]]


def test_tensor_dataset_rejects_mismatched_lengths():
    with pytest.raises(ember.ShapeError, match=r"first dimension.*\(3, 2\).*\(4,\)"):
        TensorDataset(ember.zeros((3, 2)), ember.zeros(4))


def test_subset_maps_indices_and_batches():
    data = Subset(_Range(10), [9, 3, 5])
    assert len(data) == 3 and [data[i] for i in range(3)] == [9, 3, 5]
    assert data.__getitems__([2, 0]) == [5, 9]


def test_concat_dataset_indexes_across_parts():
    data = _Range(3) + _Range(2)
    assert isinstance(data, ConcatDataset) and len(data) == 5
    assert [data[i] for i in range(5)] == [0, 1, 2, 0, 1]
    assert data[-1] == 1 and data.cumulative_sizes == [3, 5]
    with pytest.raises(IndexError):
        data[5]


def test_concat_rejects_iterable_datasets():
    class Stream(IterableDataset):
        def __iter__(self):
            return iter(range(2))

    with pytest.raises(ember.EmberError, match="ChainDataset"):
        ConcatDataset([_Range(2), Stream()])
    assert list(ChainDataset([Stream(), Stream()])) == [0, 1, 0, 1]


def test_random_split_partitions_and_is_reproducible():
    first = random_split(_Range(10), [3, 7], generator=ember.random.Generator(4))
    again = random_split(_Range(10), [3, 7], generator=ember.random.Generator(4))
    assert [len(s) for s in first] == [3, 7]
    assert sorted(first[0].indices + first[1].indices) == list(range(10))
    assert [s.indices for s in first] == [s.indices for s in again]
    other = random_split(_Range(10), [3, 7], generator=ember.random.Generator(5))
    assert [s.indices for s in other] != [s.indices for s in first]


def test_random_split_follows_manual_seed():
    ember.manual_seed(11)
    first = [s.indices for s in random_split(_Range(8), [4, 4])]
    ember.manual_seed(11)
    assert [s.indices for s in random_split(_Range(8), [4, 4])] == first


def test_random_split_fractions_hand_out_the_remainder():
    # 11 * 0.5 = 5.5 -> floors 5 + 3 + 2 = 10; the remaining one goes to the first split.
    parts = random_split(_Range(11), [0.5, 0.3, 0.2], generator=ember.random.Generator(0))
    assert [len(p) for p in parts] == [6, 3, 2]


@pytest.mark.parametrize("lengths", [[3, 3], [0.5, 0.6], [-1, 11]])
def test_random_split_rejects_bad_lengths(lengths):
    with pytest.raises(ember.EmberError, match="random_split"):
        random_split(_Range(10), lengths)
