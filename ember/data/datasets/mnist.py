"""MNIST and Fashion-MNIST from their canonical idx .gz files."""
from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ember._core.errors import EmberError
from ember.data.datasets._files import data_folder, download, file_digests
from ember.data.datasets._labeled import LabeledImages
from ember.data.transforms.image import ToTensor

_IMAGES_MAGIC, _LABELS_MAGIC = 2051, 2049


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Parse a gzipped idx file (big-endian header: magic, then one uint32 per dimension)."""
    try:
        with gzip.open(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as error:
        raise EmberError(f"{path} is not a readable gzip file ({error}); delete it and "
                         f"download it again") from None
    dims = magic & 0xFF  # the low byte of the magic number counts the dimensions
    found = int.from_bytes(raw[:4], "big") if len(raw) >= 4 + 4 * dims else None
    if found != magic:
        raise EmberError(f"{path}: idx magic number {found}, expected {magic}; the file is not "
                         f"a canonical idx file")
    header = np.frombuffer(raw, dtype=">u4", count=1 + dims)
    shape = tuple(int(d) for d in header[1:])
    expected = 4 + 4 * dims + int(np.prod(shape))
    if len(raw) != expected:
        raise EmberError(f"{path}: {len(raw)} bytes after decompression, expected {expected} "
                         f"for shape {shape}; the file is truncated or corrupted")
    # bytearray: a writable copy, so users may modify `data` in place as with torchvision.
    return np.frombuffer(bytearray(raw), dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


class MNIST(LabeledImages):
    """The MNIST handwritten digits: 60,000 train / 10,000 test 28x28 images, labels 0-9.

    Files (the canonical `train-images-idx3-ubyte.gz` etc.) are read from `root`, else from
    $EMBER_DATA/mnist, else ~/.ember/data/mnist. `download=True` fetches missing files from
    `mirrors` (override with the env variable EMBER_MNIST_MIRROR, comma-separated base URLs)
    and verifies their MD5 and SHA256.

    `data` (N, 28, 28) uint8 and `targets` (N,) int64 hold everything in memory. An item is
    (image, label): `transform` receives the (28, 28) uint8 array, and defaults to `ToTensor()`,
    giving a float32 (1, 28, 28) Tensor in [0, 1]; label is an int.

    >>> data = MNIST(train=False)  # from $EMBER_DATA/mnist
    >>> len(data), data[0][0].shape, data[0][1]
    (10000, (1, 28, 28), 7)
    """

    folder = "mnist"
    mirror_env = "EMBER_MNIST_MIRROR"
    mirrors = ["https://ossci-datasets.s3.amazonaws.com/mnist/",
               "http://yann.lecun.com/exdb/mnist/"]
    # file name -> (md5, sha256), from ../shared/data/mnist/SOURCES.md (canonical release).
    resources = {
        "train-images-idx3-ubyte.gz": (
            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        "train-labels-idx1-ubyte.gz": (
            "d53e105ee54ea40749a09fcbcd1e9432",
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
        "t10k-images-idx3-ubyte.gz": (
            "9fb629c4189551a2d022fa330f9573f3",
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
        "t10k-labels-idx1-ubyte.gz": (
            "ec29112dd5afa0611ce80d1b7f02629c",
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    }
    classes = [str(digit) for digit in range(10)]

    def __init__(self, root=None, train: bool = True, transform: Callable | None = None,
                 target_transform: Callable | None = None, download: bool = False):
        self.root = data_folder(root, self.folder)
        self._root_rule = ("the root argument" if root is not None else
                           "$EMBER_DATA/" + self.folder if os.environ.get("EMBER_DATA") else
                           "the default ~/.ember/data/" + self.folder)
        self.train = train
        self.transform = transform if transform is not None else ToTensor()
        self.target_transform = target_transform
        if download:
            self.download()
        prefix = "train" if train else "t10k"
        images_path = self._require(f"{prefix}-images-idx3-ubyte.gz")
        labels_path = self._require(f"{prefix}-labels-idx1-ubyte.gz")
        self.data = read_idx(images_path, _IMAGES_MAGIC)
        self.targets = read_idx(labels_path, _LABELS_MAGIC).astype(np.int64)
        if len(self.data) != len(self.targets):
            raise EmberError(f"{type(self).__name__}: {images_path.name} holds "
                             f"{len(self.data)} images but {labels_path.name} holds "
                             f"{len(self.targets)} labels")

    @property
    def class_to_idx(self) -> dict[str, int]:
        return {name: index for index, name in enumerate(self.classes)}

    def _mirrors(self) -> list[str]:
        override = os.environ.get(self.mirror_env)
        bases = [url.strip() for url in override.split(",")] if override else self.mirrors
        return [base if base.endswith("/") else base + "/" for base in bases if base]

    def _require(self, name: str) -> Path:
        path = self.root / name
        if not path.is_file():
            raise EmberError(
                f"{type(self).__name__}: {name} not found in {self.root} (chosen by "
                f"{self._root_rule}). Pass download=True to fetch the canonical files from "
                f"{self._mirrors()[0]}, copy them there, or point root= or $EMBER_DATA at a "
                f"folder that has them")
        return path

    def download(self):
        """Fetch every missing or corrupted file into `root`, verifying its checksums."""
        for name, (md5, sha256) in self.resources.items():
            path = self.root / name
            if path.is_file() and file_digests(path) == (md5, sha256):
                continue
            download([base + name for base in self._mirrors()], path, md5=md5, sha256=sha256)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """All images as float32 (N, 1, 28, 28) in [0, 1] and labels as int64 (N,)."""
        return (self.data[:, None].astype(np.float32) / np.float32(255.0)), self.targets.copy()

    def __repr__(self):
        split = "train" if self.train else "test"
        return f"{type(self).__name__}(split={split}, size={len(self)}, root={str(self.root)!r})"


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST: MNIST's layout with 10 clothing classes.

    Files come from `root`, else $EMBER_DATA/fashion-mnist, else ~/.ember/data/fashion-mnist;
    the mirror override is EMBER_FASHION_MNIST_MIRROR. Everything else is as `MNIST`.

    >>> FashionMNIST.classes[:3]
    ['T-shirt/top', 'Trouser', 'Pullover']
    """

    folder = "fashion-mnist"
    mirror_env = "EMBER_FASHION_MNIST_MIRROR"
    mirrors = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]
    resources = {
        "train-images-idx3-ubyte.gz": (
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
        "train-labels-idx1-ubyte.gz": (
            "25c81989df183df01b3e8a0aad5dffbe",
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
        "t10k-images-idx3-ubyte.gz": (
            "bef4ecab320f06d8554ea6380940ec79",
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
        "t10k-labels-idx1-ubyte.gz": (
            "bb300cfdad3c16e7a12a480ee83cd310",
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
    }
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot"]
