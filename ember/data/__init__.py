"""ember.data: datasets, samplers and the DataLoader (PyTorch's torch.utils.data API)."""
from __future__ import annotations

from ember.data._collate import default_collate, default_convert
from ember.data._fetch import WorkerInfo, get_worker_info
from ember.data._worker import DataLoaderWorkerError
from ember.data.dataset import (
    ChainDataset,
    ConcatDataset,
    Dataset,
    IterableDataset,
    Subset,
    TensorDataset,
    random_split,
)
from ember.data.loader import DataLoader
from ember.data.sampler import (
    BatchSampler,
    DistributedSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)

__all__ = [
    "BatchSampler",
    "ChainDataset",
    "ConcatDataset",
    "DataLoader",
    "DataLoaderWorkerError",
    "Dataset",
    "DistributedSampler",
    "IterableDataset",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "Subset",
    "SubsetRandomSampler",
    "TensorDataset",
    "WeightedRandomSampler",
    "WorkerInfo",
    "default_collate",
    "default_convert",
    "get_worker_info",
    "random_split",
]
from ember.data import datasets, transforms  # noqa: E402  (subpackages, built on the above)
