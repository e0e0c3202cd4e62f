"""The 8x8 handwritten digits that ship inside scikit-learn (works offline on a fresh machine)."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ember._core.errors import EmberError
from ember.data.datasets._labeled import LabeledImages
from ember.data.transforms.image import ToTensor


def _load_digits():
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise EmberError("Digits needs scikit-learn, which ships the 8x8 digits data; install "
                         "it with `pip install scikit-learn` (or `pip install ember[sklearn]`)"
                         ) from None
    bunch = load_digits()
    return bunch.images, bunch.target


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple:
    """(train indices, test indices): each class contributes round(count * fraction) to test."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        count = int(round(len(members) * test_fraction))
        test.append(members[:count])
        train.append(members[count:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


class Digits(LabeledImages):
    """1,797 8x8 grey digits (scikit-learn's `load_digits`), split by class into train/test.

    The split is stratified and fixed by `seed`: each class puts round(count * test_fraction)
    of its images in the test set. `data` is float32 (N, 8, 8) in [0, 1] (the raw 0-16 counts
    divided by 16) and `targets` int64. `transform` receives the (8, 8) array and defaults to
    `ToTensor()`, giving a float32 (1, 8, 8) Tensor; the label is an int.

    >>> train, test = Digits(train=True), Digits(train=False)
    >>> len(train) + len(test), train[0][0].shape, len(test)
    (1797, (1, 8, 8), 359)
    """

    classes = [str(digit) for digit in range(10)]

    def __init__(self, train: bool = True, test_fraction: float = 0.2, seed: int = 0,
                 transform: Callable | None = None, target_transform: Callable | None = None):
        if not 0.0 < test_fraction < 1.0:
            raise EmberError(f"Digits: test_fraction must lie in (0, 1), got {test_fraction}")
        images, labels = _load_digits()
        train_index, test_index = stratified_split(labels, test_fraction, seed)
        index = train_index if train else test_index
        self.train = train
        self.data = (images[index] / 16.0).astype(np.float32)
        self.targets = labels[index].astype(np.int64)
        self.transform = transform if transform is not None else ToTensor()
        self.target_transform = target_transform

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """All images as float32 (N, 1, 8, 8) and labels as int64 (N,), e.g. for `fit`."""
        return self.data[:, None].copy(), self.targets.copy()

    def __repr__(self):
        return f"Digits(split={'train' if self.train else 'test'}, size={len(self)})"
