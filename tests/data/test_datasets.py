"""Datasets: MNIST/FashionMNIST from ../shared/data and from a local HTTP mirror, Digits,
ImageFolder, TextFile on Tiny Shakespeare, AudioFolder on generated WAVs and on FSDD."""
from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import os
import sys
import threading
import wave
from pathlib import Path

import numpy as np
import pytest

import ember
from ember.data import transforms as T
from ember.data.datasets import (
    MNIST,
    AudioFolder,
    Digits,
    FashionMNIST,
    ImageFolder,
    TextFile,
)
from ember.data.datasets.digits import stratified_split

SHARED = Path(os.environ.get("EMBER_DATA", Path(__file__).resolve().parents[3] / "shared/data"))


def _need(folder: str) -> Path:
    path = SHARED / folder
    if not path.is_dir():
        pytest.skip(f"shared data {path} is not available")
    return path


# ---- MNIST from the shared copy -------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist_train():
    _need("mnist")
    return MNIST(train=True)


def test_mnist_train_from_ember_data(mnist_train):
    data = mnist_train
    assert data.root == SHARED / "mnist"
    assert len(data) == 60000 and data.data.shape == (60000, 28, 28)
    assert data.data.dtype == np.uint8 and data.targets.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(data.targets),
                                  [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
    assert int(data.data[0].sum(dtype=np.int64)) == 27525
    image, label = data[0]
    assert isinstance(image, ember.Tensor) and image.shape == (1, 28, 28)
    assert image.dtype == ember.float32 and label == 5
    np.testing.assert_allclose(image.numpy().sum(), 27525 / 255, rtol=1e-5)
    assert 0.0 <= image.numpy().min() and image.numpy().max() <= 1.0


def test_mnist_test_split_transforms_and_loader():
    _need("mnist")
    data = MNIST(train=False, transform=T.Compose([T.ToTensor(), T.Normalize(0.5, 0.5)]),
                 target_transform=lambda label: label + 100)
    assert len(data) == 10000 and data.targets[:3].tolist() == [7, 2, 1]
    assert np.bincount(data.targets).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028,
                                                  974, 1009]
    image, label = data[0]
    assert label == 107 and image.numpy().min() == -1.0
    images, labels = next(iter(ember.data.DataLoader(MNIST(train=False), batch_size=64)))
    assert images.shape == (64, 1, 28, 28) and labels.tolist()[:3] == [7, 2, 1]
    arrays, targets = MNIST(train=False).arrays()
    assert arrays.shape == (10000, 1, 28, 28) and arrays.dtype == np.float32
    np.testing.assert_array_equal(arrays[0], images.numpy()[0])


def test_fashion_mnist_from_ember_data():
    _need("fashion-mnist")
    data = FashionMNIST(train=False)
    assert data.root == SHARED / "fashion-mnist"
    assert len(data) == 10000 and np.bincount(data.targets).tolist() == [1000] * 10
    assert data.targets[:3].tolist() == [9, 2, 1]
    assert data.classes[data.targets[0]] == "Ankle boot"


def test_missing_files_say_where_and_how(tmp_path, monkeypatch):
    with pytest.raises(ember.EmberError, match="download=True") as error:
        MNIST(root=tmp_path)
    assert str(tmp_path) in str(error.value) and "root argument" in str(error.value)
    monkeypatch.setenv("EMBER_DATA", str(tmp_path))
    with pytest.raises(ember.EmberError, match=r"\$EMBER_DATA/fashion-mnist"):
        FashionMNIST()
    monkeypatch.delenv("EMBER_DATA")
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ember.EmberError, match=r"\.ember/data/mnist"):
        MNIST()


# ---- downloads from a local mirror ----------------------------------------------------------


def _idx_gz(path: Path, array: np.ndarray, magic: int):
    header = np.array([magic, *array.shape], dtype=">u4").tobytes()
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


@pytest.fixture
def mirror(tmp_path):
    """Small generated MNIST-format files served over HTTP on 127.0.0.1, with their digests."""
    served = tmp_path / "served"
    served.mkdir()
    rng = np.random.default_rng(0)
    arrays = {"train": (rng.integers(0, 256, (12, 28, 28)), rng.integers(0, 10, 12)),
              "t10k": (rng.integers(0, 256, (5, 28, 28)), rng.integers(0, 10, 5))}
    for split, (images, labels) in arrays.items():
        _idx_gz(served / f"{split}-images-idx3-ubyte.gz", images, 2051)
        _idx_gz(served / f"{split}-labels-idx1-ubyte.gz", labels, 2049)
    resources = {path.name: (hashlib.md5(path.read_bytes()).hexdigest(),
                             hashlib.sha256(path.read_bytes()).hexdigest())
                 for path in served.iterdir()}

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(Quiet, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", resources, arrays
    finally:
        server.shutdown()
        server.server_close()


def test_download_verifies_and_loads(tmp_path, monkeypatch, mirror):
    url, resources, arrays = mirror
    monkeypatch.setattr(MNIST, "resources", resources)
    # The first mirror 404s; the second serves the files.
    monkeypatch.setenv("EMBER_MNIST_MIRROR", f"{url}/missing,{url}")
    root = tmp_path / "root"
    data = MNIST(root=root, download=True)
    np.testing.assert_array_equal(data.data, arrays["train"][0])
    np.testing.assert_array_equal(data.targets, arrays["train"][1])
    assert sorted(path.name for path in root.iterdir()) == sorted(resources)  # no temp files
    assert len(MNIST(root=root, train=False, download=True)) == 5  # files present: no refetch


def test_download_rejects_a_bad_checksum(tmp_path, monkeypatch, mirror):
    url, resources, _ = mirror
    corrupted = dict(resources)
    md5, sha256 = corrupted["train-images-idx3-ubyte.gz"]
    corrupted["train-images-idx3-ubyte.gz"] = (md5, "0" * 64)
    monkeypatch.setattr(MNIST, "resources", corrupted)
    monkeypatch.setattr(MNIST, "mirrors", [url])
    monkeypatch.delenv("EMBER_MNIST_MIRROR", raising=False)
    root = tmp_path / "root"
    with pytest.raises(ember.EmberError, match="sha256 mismatch") as error:
        MNIST(root=root, download=True)
    assert "train-images-idx3-ubyte.gz" in str(error.value)
    assert not (root / "train-images-idx3-ubyte.gz").exists()
    assert not [path for path in root.iterdir() if path.name.endswith(".part")]


def test_corrupted_idx_file_is_a_clear_error(tmp_path):
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x03"))
    _idx_gz(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(3), 2049)
    with pytest.raises(ember.EmberError, match="truncated or corrupted|magic"):
        MNIST(root=tmp_path)


# ---- Digits ---------------------------------------------------------------------------------


def test_digits_stratified_fixed_split():
    pytest.importorskip("sklearn")
    train, test = Digits(train=True), Digits(train=False)
    assert len(train) + len(test) == 1797
    all_counts = np.bincount(train.targets) + np.bincount(test.targets)
    np.testing.assert_array_equal(np.bincount(test.targets), np.round(all_counts * 0.2))
    image, label = train[0]
    assert image.shape == (1, 8, 8) and image.dtype == ember.float32 and 0 <= label < 10
    assert train.data.min() == 0.0 and train.data.max() == 1.0
    again = Digits(train=False)
    np.testing.assert_array_equal(again.data, test.data)  # fixed by the seed
    other = Digits(train=False, seed=1)
    assert not np.array_equal(other.data, test.data)
    labels = np.repeat(np.arange(3), [10, 20, 5])
    train_index, test_index = stratified_split(labels, 0.2, seed=0)
    assert not set(train_index) & set(test_index)
    assert sorted([*train_index, *test_index]) == list(range(35))
    assert np.bincount(labels[test_index]).tolist() == [2, 4, 1]
    assert len(Digits(train=False, test_fraction=0.5)) == 898


def test_digits_without_sklearn_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ember.EmberError, match="pip install scikit-learn"):
        Digits()


# ---- ImageFolder ----------------------------------------------------------------------------


def test_image_folder_reads_npy_and_netpbm(tmp_path):
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (4, 5), dtype=np.uint8)
    colour = rng.integers(0, 256, (3, 2, 3), dtype=np.uint8)
    wide = rng.integers(0, 65536, (2, 3)).astype(np.uint16)
    (tmp_path / "cats").mkdir()
    (tmp_path / "dogs" / "nested").mkdir(parents=True)
    np.save(tmp_path / "cats" / "a.npy", grey)
    (tmp_path / "cats" / "b.pgm").write_bytes(b"P5\n# a comment\n5 4\n255\n" + grey.tobytes())
    (tmp_path / "dogs" / "c.ppm").write_bytes(b"P6 2 3 255\n" + colour.tobytes())
    ascii_body = " ".join(str(v) for v in grey.ravel())
    (tmp_path / "dogs" / "nested" / "d.pgm").write_text(f"P2\n5 4\n255\n{ascii_body}\n")
    (tmp_path / "dogs" / "e.pgm").write_bytes(b"P5 3 2 65535\n" + wide.astype(">u2").tobytes())
    (tmp_path / "dogs" / "notes.txt").write_text("ignored")
    data = ImageFolder(tmp_path)
    assert data.classes == ["cats", "dogs"] and len(data) == 5
    assert [label for _, label in data.samples] == [0, 0, 1, 1, 1]
    np.testing.assert_array_equal(data[0][0], grey)
    np.testing.assert_array_equal(data[1][0], grey)
    np.testing.assert_array_equal(data[2][0], colour)
    np.testing.assert_array_equal(data[3][0], wide)
    np.testing.assert_array_equal(data[4][0], grey)
    tensors = ImageFolder(tmp_path, transform=T.ToTensor(), extensions=(".ppm",))
    assert len(tensors) == 1 and tensors[0][0].shape == (3, 3, 2)


def test_image_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ember.EmberError, match="no files with extensions"):
        ImageFolder(tmp_path)
    (tmp_path / "empty" / "x.pgm").write_bytes(b"P5 4 4 255\n" + bytes(3))
    with pytest.raises(ember.EmberError, match="does not fit"):
        ImageFolder(tmp_path)[0]
    try:
        import PIL  # noqa: F401
    except ImportError:
        (tmp_path / "empty" / "y.png").write_bytes(b"\x89PNG")
        with pytest.raises(ember.EmberError, match="pip install pillow"):
            ImageFolder(tmp_path, extensions=(".png",))[0]


# ---- TextFile -------------------------------------------------------------------------------


def test_text_file_on_tiny_shakespeare():
    path = _need("tinyshakespeare") / "input.txt"
    data = TextFile(path, level="char", seq_len=100)
    text = path.read_text()
    assert len(data.vocab) == 65 + 1  # 65 distinct characters plus '<unk>'
    assert len(data) == (len(text) - 1 - 100) // 100 + 1
    inputs, targets = data[3]
    assert inputs.shape == (100,) and inputs.dtype == ember.int64
    np.testing.assert_array_equal(inputs.numpy()[1:], targets.numpy()[:-1])
    assert data.decode(inputs) == text[300:400] and data.decode(targets) == text[301:401]
    last = len(data) - 1
    assert data.decode(data[-1][1]) == text[last * 100 + 1:last * 100 + 101]
    with pytest.raises(IndexError):
        data[len(data)]


def test_text_file_words_and_shared_vocab(tmp_path):
    train, valid = tmp_path / "train.txt", tmp_path / "valid.txt"
    train.write_text("The cat sat. The dog sat!")
    valid.write_text("the bird sat.")
    data = TextFile(train, level="word", seq_len=3, stride=1)
    assert data.decode(data.ids) == "the cat sat . the dog sat !"
    assert len(data) == 8 - 3
    other = TextFile(valid, level="word", seq_len=2, vocab=data.vocab)
    assert other.decode(other.ids) == "the <unk> sat ."
    with pytest.raises(ember.EmberError, match="at least"):
        TextFile(valid, seq_len=50)


# ---- AudioFolder ----------------------------------------------------------------------------


def _write_wav(path: Path, samples: np.ndarray, rate: int):
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(samples.astype("<i2").tobytes())


def test_audio_folder_by_subfolder_and_by_label_fn(tmp_path):
    rng = np.random.default_rng(0)
    clips = {}
    for word in ("no", "yes"):
        (tmp_path / word).mkdir()
        for index in range(3):
            samples = rng.integers(-3000, 3000, 400 + index)
            _write_wav(tmp_path / word / f"{word}_{index}.wav", samples, 16000)
            clips[(word, index)] = samples / 32768.0
    data = AudioFolder(tmp_path)
    assert data.classes == ["no", "yes"] and len(data) == 6
    waveform, label = data[4]
    assert label == 1 and waveform.dtype == np.float32
    np.testing.assert_array_equal(waveform, clips[("yes", 1)].astype(np.float32))
    by_name = AudioFolder(tmp_path, label_fn=lambda name: int(name[-5]))
    assert by_name.classes == [0, 1, 2] and sorted(by_name.targets) == [0, 0, 1, 1, 2, 2]
    by_word = AudioFolder(tmp_path, label_fn=lambda name: name.split("_")[0].upper())
    assert by_word.classes == ["NO", "YES"] and by_word.targets == [0, 0, 0, 1, 1, 1]
    features = AudioFolder(tmp_path, transform=T.MelSpectrogram(16000, n_fft=128, n_mels=16))
    assert features[0][0].shape == (16, 1 + 400 // 32)
    with pytest.raises(ember.EmberError, match="expected 8000 Hz"):
        AudioFolder(tmp_path, sample_rate=8000)[0]


def test_audio_folder_on_fsdd():
    recordings = _need("fsdd") / "recordings"
    data = AudioFolder(recordings, label_fn=lambda name: int(name.split("_")[0]),
                       sample_rate=8000)
    assert len(data) == 3000 and data.classes == list(range(10))
    assert np.bincount(data.targets).tolist() == [300] * 10
    test = AudioFolder(recordings, label_fn=lambda name: int(name.split("_")[0]),
                       is_valid_file=lambda path: int(path.stem.split("_")[2]) < 5)
    assert len(test) == 300
    index = [path.name for path, _ in data.samples].index("0_george_0.wav")
    waveform, label = data[index]
    assert label == 0 and waveform.shape == (2384,)
    assert np.abs(waveform).max() <= 1.0 and np.abs(waveform).max() > 0.01
