"""What in-memory image datasets share: `data` and `targets` arrays, transforms on access."""
from __future__ import annotations

from ember.data.dataset import Dataset


class LabeledImages(Dataset):
    """Subclasses fill `data` (images), `targets` (int64 labels), `transform` and
    `target_transform`; items are (transform(image), target_transform(int label))."""

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index):
        image, label = self.transform(self.data[index]), int(self.targets[index])
        if self.target_transform is not None:
            label = self.target_transform(label)
        return image, label
