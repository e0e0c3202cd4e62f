"""Samplers (ember/data/sampler.py)."""
from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.data import (
    BatchSampler,
    DistributedSampler,
    RandomSampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)


def test_sequential_and_batch_sampler():
    assert list(SequentialSampler(range(4))) == [0, 1, 2, 3]
    batches = BatchSampler(SequentialSampler(range(7)), batch_size=3, drop_last=False)
    assert list(batches) == [[0, 1, 2], [3, 4, 5], [6]] and len(batches) == 3
    dropped = BatchSampler(SequentialSampler(range(7)), batch_size=3, drop_last=True)
    assert list(dropped) == [[0, 1, 2], [3, 4, 5]] and len(dropped) == 2


def test_random_sampler_is_a_seeded_permutation():
    first = list(RandomSampler(range(20), generator=ember.random.Generator(3)))
    assert sorted(first) == list(range(20)) and first != list(range(20))
    assert list(RandomSampler(range(20), generator=ember.random.Generator(3))) == first
    ember.manual_seed(9)
    unseeded = list(RandomSampler(range(20)))
    ember.manual_seed(9)
    assert list(RandomSampler(range(20))) == unseeded


def test_random_sampler_num_samples_and_replacement():
    more = list(RandomSampler(range(4), num_samples=10, generator=ember.random.Generator(0)))
    assert len(more) == 10 and sorted(more[:8]) == [0, 0, 1, 1, 2, 2, 3, 3]
    drawn = RandomSampler(range(5), replacement=True, num_samples=500,
                          generator=ember.random.Generator(0))
    counts = np.bincount(list(drawn), minlength=5)
    assert len(drawn) == 500 and counts.sum() == 500 and counts.min() > 60  # ~100 each


def test_subset_random_sampler_permutes_the_subset():
    order = list(SubsetRandomSampler([10, 20, 30, 40], generator=ember.random.Generator(1)))
    assert sorted(order) == [10, 20, 30, 40]


def test_weighted_sampler_frequencies_match_weights():
    weights = [1.0, 2.0, 0.0, 5.0]
    draws = np.array(list(WeightedRandomSampler(weights, 40_000,
                                                generator=ember.random.Generator(0))))
    frequencies = np.bincount(draws, minlength=4) / draws.size
    np.testing.assert_allclose(frequencies, np.array(weights) / 8.0, atol=0.01)


def test_weighted_sampler_without_replacement():
    # The heavy item is almost always among the first draws; the zero weight never appears.
    first_picks = [list(WeightedRandomSampler([1.0, 1.0, 0.0, 50.0], 2, replacement=False,
                                              generator=ember.random.Generator(seed)))
                   for seed in range(200)]
    assert all(len(set(p)) == 2 and 2 not in p for p in first_picks)
    assert np.mean([p[0] == 3 for p in first_picks]) > 0.9
    with pytest.raises(ember.EmberError, match="without replacement"):
        WeightedRandomSampler([1.0, 0.0], 2, replacement=False)


@pytest.mark.parametrize("weights", [[-1.0, 2.0], [0.0, 0.0], [[1.0]], [float("nan")]])
def test_weighted_sampler_rejects_bad_weights(weights):
    with pytest.raises(ember.EmberError, match="WeightedRandomSampler"):
        WeightedRandomSampler(weights, 3)


@pytest.mark.parametrize("size,replicas,drop_last", [(10, 3, False), (10, 3, True),
                                                     (12, 4, False), (2, 4, False)])
def test_distributed_sampler_partitions_each_epoch(size, replicas, drop_last):
    for epoch in range(3):
        shards = []
        for rank in range(replicas):
            sampler = DistributedSampler(range(size), num_replicas=replicas, rank=rank,
                                         seed=5, drop_last=drop_last)
            sampler.set_epoch(epoch)
            shards.append(list(sampler))
            assert len(shards[-1]) == len(sampler)
        assert len({len(s) for s in shards}) == 1  # every rank does the same number of steps
        together = sorted(i for shard in shards for i in shard)
        if drop_last:
            assert len(set(together)) == len(together) == size - size % replicas
        elif size >= replicas:
            # Padding repeats at most replicas - 1 indices; all indices are covered.
            assert set(together) == set(range(size))
            assert len(together) - size == -size % replicas
        else:
            assert set(together) == set(range(size))


def test_distributed_sampler_exactly_once_when_divisible_and_reshuffles():
    def epoch_shards(epoch):
        shards = []
        for rank in range(4):
            sampler = DistributedSampler(range(12), num_replicas=4, rank=rank, seed=1)
            sampler.set_epoch(epoch)
            shards.append(list(sampler))
        return shards

    first, second = epoch_shards(0), epoch_shards(1)
    assert sorted(i for s in first for i in s) == list(range(12))
    assert first != second and epoch_shards(0) == first


def test_distributed_sampler_topology_from_launcher_and_errors(monkeypatch):
    monkeypatch.setenv("PMI_SIZE", "3")
    monkeypatch.setenv("PMI_RANK", "2")
    for name in ("WORLD_SIZE", "RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"):
        monkeypatch.delenv(name, raising=False)
    sampler = DistributedSampler(range(9), shuffle=False)
    assert (sampler.num_replicas, sampler.rank, list(sampler)) == (3, 2, [2, 5, 8])
    with pytest.raises(ember.EmberError, match="rank must be in"):
        DistributedSampler(range(9), num_replicas=2, rank=2)


def test_sampler_state_round_trip():
    generator = ember.random.Generator(0)
    sampler = RandomSampler(range(10), generator=generator)
    state = sampler.state_dict()
    first = list(sampler)
    sampler.load_state_dict(state)
    assert list(sampler) == first
    distributed = DistributedSampler(range(4), num_replicas=2, rank=0)
    distributed.set_epoch(7)
    restored = DistributedSampler(range(4), num_replicas=2, rank=0)
    restored.load_state_dict(distributed.state_dict())
    assert list(restored) == list(distributed)
