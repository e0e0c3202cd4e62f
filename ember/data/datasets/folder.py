"""Datasets over plain files: ImageFolder, AudioFolder, and TextFile (a language-model dataset)."""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ember._core.errors import EmberError
from ember._core.tensor import Tensor
from ember.data.dataset import Dataset
from ember.data.datasets._images import load_image
from ember.data.transforms.audio import load_wav
from ember.data.transforms.text import CharTokenizer, Vocab, WordTokenizer

IMAGE_EXTENSIONS = (".npy", ".pgm", ".ppm", ".pnm", ".png")
AUDIO_EXTENSIONS = (".wav",)


def _walk(folder: Path, extensions: tuple[str, ...], is_valid_file) -> list[Path]:
    """Files under `folder` (recursively, in sorted order) that pass the filters."""
    found = []
    for directory, subdirectories, files in os.walk(folder, followlinks=True):
        subdirectories.sort()
        for name in sorted(files):
            path = Path(directory) / name
            if name.lower().endswith(extensions) and (is_valid_file is None
                                                      or is_valid_file(path)):
                found.append(path)
    return found


class _FileFolder(Dataset):
    """Labelled files: class = subfolder name (sorted -> 0, 1, ...) or `label_fn(file name)`.

    An int from `label_fn` is the target itself; other labels (names) map to their index in
    the sorted `classes`.
    """

    def __init__(self, root, transform, target_transform, extensions, label_fn, is_valid_file):
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise EmberError(f"{type(self).__name__}: {self.root} is not a directory")
        self.extensions = tuple(e.lower() for e in extensions)
        self.transform = transform
        self.target_transform = target_transform
        if label_fn is None:
            self.classes = sorted(entry.name for entry in os.scandir(self.root)
                                  if entry.is_dir())
            self.class_to_idx = {name: index for index, name in enumerate(self.classes)}
            self.samples = [(path, self.class_to_idx[name]) for name in self.classes
                            for path in _walk(self.root / name, self.extensions, is_valid_file)]
        else:
            labelled = [(path, label_fn(path.name))
                        for path in _walk(self.root, self.extensions, is_valid_file)]
            self.classes = sorted({label for _, label in labelled})
            if all(isinstance(label, int) for label in self.classes):
                self.class_to_idx = {label: label for label in self.classes}
            else:  # names (e.g. speakers) become indices into the sorted class list
                self.class_to_idx = {name: index for index, name in enumerate(self.classes)}
            self.samples = [(path, self.class_to_idx[label]) for path, label in labelled]
        if not self.samples:
            how = ("in class subfolders" if label_fn is None else "anywhere")
            raise EmberError(f"{type(self).__name__}: no files with extensions "
                             f"{list(self.extensions)} found {how} under {self.root}")
        self.targets = [label for _, label in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def _load(self, path: Path):
        raise NotImplementedError

    def __getitem__(self, index):
        path, label = self.samples[index]
        sample = self._load(path)
        if self.transform is not None:
            sample = self.transform(sample)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return sample, label


class ImageFolder(_FileFolder):
    """Images in class subfolders, `root/<class>/<file>`: items are (image, class index).

    Reads .npy, NetPBM .pgm/.ppm and (with Pillow) .png; `loader(path)` replaces the decoder.
    Without a transform the image is the decoded array (HW or HWC, as stored);
    add `ToTensor()` for a CHW float Tensor.

    >>> import os, tempfile, numpy as np
    >>> root = tempfile.mkdtemp()
    >>> for name in ("cat", "dog"):
    ...     os.makedirs(os.path.join(root, name))
    ...     np.save(os.path.join(root, name, "0.npy"), np.zeros((2, 2), np.uint8))
    >>> data = ImageFolder(root)
    >>> data.classes, len(data), data[1][1]
    (['cat', 'dog'], 2, 1)
    """

    def __init__(self, root, transform: Callable | None = None,
                 target_transform: Callable | None = None,
                 extensions: Sequence[str] = IMAGE_EXTENSIONS, loader: Callable | None = None,
                 is_valid_file: Callable | None = None):
        self.loader = loader or load_image
        super().__init__(root, transform, target_transform, extensions, None, is_valid_file)

    def _load(self, path: Path):
        return self.loader(path)


class AudioFolder(_FileFolder):
    """WAV files labelled by subfolder (`root/<class>/<file>.wav`) or by `label_fn(file name)`.

    An int from `label_fn` is the label itself; names map to their index in sorted `classes`.
    Items are (waveform, label): the float32 waveform in [-1, 1] ((time,) mono,
    (channels, time) otherwise) goes through `transform` (e.g. `transforms.MFCC(8000)`).
    With `sample_rate` set, a file with another rate is an error. `is_valid_file(path)` selects
    files, e.g. the Free Spoken Digit Dataset's official test split (index 0-4):

    >>> def label(name): return int(name.split("_")[0])
    >>> def is_test(path): return int(path.stem.split("_")[2]) < 5
    >>> import os
    >>> fsdd = AudioFolder(os.path.join(os.environ["EMBER_DATA"], "fsdd", "recordings"),
    ...                    label_fn=label, is_valid_file=is_test)
    >>> len(fsdd), fsdd.classes
    (300, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    """

    def __init__(self, root, transform: Callable | None = None,
                 target_transform: Callable | None = None,
                 label_fn: Callable[[str], object] | None = None,
                 extensions: Sequence[str] = AUDIO_EXTENSIONS,
                 is_valid_file: Callable | None = None, sample_rate: int | None = None):
        self.sample_rate = sample_rate
        super().__init__(root, transform, target_transform, extensions, label_fn,
                         is_valid_file)

    def _load(self, path: Path):
        waveform, rate = load_wav(path)
        if self.sample_rate is not None and rate != self.sample_rate:
            raise EmberError(f"AudioFolder: {path} is sampled at {rate} Hz, expected "
                             f"{self.sample_rate} Hz; resample it or drop sample_rate=")
        return waveform


class TextFile(Dataset):
    """Language-model samples from one text file: (ids[s:s+seq_len], ids[s+1:s+seq_len+1]).

    `level` 'char' or 'word' picks the tokenizer (`CharTokenizer`, or `WordTokenizer`, which
    lowercases). The vocabulary is built from the file with the single special '<unk>' unless
    `vocab` is given (reuse the training set's vocab for a validation file). Windows start every
    `stride` tokens (default seq_len: non-overlapping); items are int64 Tensors.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "t.txt")
    >>> with open(path, "w") as f:
    ...     _ = f.write("hello world")
    >>> data = TextFile(path, seq_len=4)
    >>> x, y = data[0]
    >>> len(data), data.decode(x), data.decode(y)
    (2, 'hell', 'ello')
    """

    def __init__(self, path, level: str = "char", seq_len: int = 128, vocab: Vocab | None = None,
                 stride: int | None = None, encoding: str = "utf-8"):
        if level not in ("char", "word"):
            raise EmberError(f"TextFile: level must be 'char' or 'word', got {level!r}")
        if seq_len < 1:
            raise EmberError(f"TextFile: seq_len must be >= 1, got {seq_len}")
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise EmberError(f"TextFile: {self.path} does not exist")
        self.level = level
        self.seq_len = seq_len
        self.stride = stride or seq_len
        self.tokenizer = CharTokenizer() if level == "char" else WordTokenizer()
        tokens = self.tokenizer(self.path.read_text(encoding=encoding))
        self.vocab = vocab if vocab is not None else Vocab(tokens, specials=("<unk>",))
        self.ids = np.array(self.vocab.lookup(tokens), dtype=np.int64)
        if len(self.ids) < seq_len + 1:
            raise EmberError(f"TextFile: {self.path} has {len(self.ids)} tokens; seq_len="
                             f"{seq_len} needs at least {seq_len + 1}")

    def __len__(self) -> int:
        return (len(self.ids) - 1 - self.seq_len) // self.stride + 1

    def __getitem__(self, index):
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"TextFile index {index} out of range for {len(self)} samples")
        start = index * self.stride
        window = self.ids[start:start + self.seq_len + 1]
        return Tensor(window[:-1].copy()), Tensor(window[1:].copy())

    def decode(self, ids) -> str:
        """Text of a sequence of ids (characters joined, or words joined by spaces)."""
        ids = ids.numpy() if isinstance(ids, Tensor) else ids
        tokens = self.vocab.lookup_tokens(np.asarray(ids).ravel())
        return "".join(tokens) if self.level == "char" else " ".join(tokens)
