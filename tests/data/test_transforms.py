"""Transforms against NumPy references: images, text, audio (STFT vs a direct DFT), time series."""
from __future__ import annotations

import wave
from collections import Counter

import numpy as np
import pytest

import ember
from ember.data import transforms as T
from ember.data.transforms import audio

# ---- images ---------------------------------------------------------------------------------


def test_to_tensor_layouts_and_scaling():
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (5, 7), dtype=np.uint8)
    colour = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    out = T.ToTensor()(grey)
    assert isinstance(out, ember.Tensor) and out.shape == (1, 5, 7) and out.dtype == ember.float32
    np.testing.assert_array_equal(out.numpy()[0], grey.astype(np.float32) / 255)
    np.testing.assert_array_equal(T.ToTensor()(colour).numpy(),
                                  colour.transpose(2, 0, 1).astype(np.float32) / 255)
    floats = rng.normal(size=(4, 4)).astype(np.float64)
    np.testing.assert_allclose(T.ToTensor()(floats).numpy()[0], floats, rtol=1e-6)  # unscaled
    with pytest.raises(ember.ShapeError, match="HW or HWC"):
        T.ToTensor()(np.zeros((1, 2, 3, 4), np.uint8))
    with pytest.raises(ember.DTypeError, match="already a Tensor"):
        T.ToTensor()(out)


def test_normalize_per_channel_matches_numpy():
    rng = np.random.default_rng(1)
    image = rng.random((3, 4, 5), dtype=np.float32)
    mean, std = [0.1, 0.2, 0.3], [0.5, 1.0, 2.0]
    expected = (image - np.array(mean, np.float32)[:, None, None]) / np.array(
        std, np.float32)[:, None, None]
    np.testing.assert_allclose(T.Normalize(mean, std)(image), expected, rtol=1e-6)
    as_tensor = T.Normalize(mean, std)(ember.asarray(image))
    assert isinstance(as_tensor, ember.Tensor)
    np.testing.assert_allclose(as_tensor.numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(T.Normalize(0.5, 0.25)(image), (image - 0.5) / 0.25, rtol=1e-6)
    with pytest.raises(ember.ShapeError, match="3 channel"):
        T.Normalize(mean, std)(image[:2])
    with pytest.raises(ember.EmberError, match="nonzero"):
        T.Normalize(0.0, 0.0)
    with pytest.raises(ember.DTypeError, match="ToTensor first"):
        T.Normalize(0.5, 0.5)(np.zeros((1, 2, 2), np.uint8))


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect"])
def test_random_crop_is_a_window_of_the_padded_image(mode):
    image = np.arange(2 * 6 * 7, dtype=np.float32).reshape(2, 6, 7)
    padded = np.pad(image, [(0, 0), (2, 2), (2, 2)], mode=mode)
    crop = T.RandomCrop((5, 4), padding=2, padding_mode=mode)
    ember.manual_seed(0)
    offsets = set()
    for _ in range(300):
        out = crop(image)
        assert out.shape == (2, 5, 4)
        matches = [(i, j) for i in range(padded.shape[1] - 4) for j in range(padded.shape[2] - 3)
                   if np.array_equal(padded[:, i:i + 5, j:j + 4], out)]
        assert len(matches) == 1
        offsets.add(matches[0])
    assert offsets == {(i, j) for i in range(6) for j in range(8)}  # every offset reachable
    with pytest.raises(ember.ShapeError, match="larger than"):
        T.RandomCrop(20)(image)


def test_random_transforms_follow_manual_seed_and_generators():
    pipeline = T.Compose([T.ToTensor(), T.RandomCrop(6, padding=2), T.RandomHorizontalFlip()])
    image = np.random.default_rng(0).integers(0, 256, (8, 8), dtype=np.uint8)
    ember.manual_seed(7)
    first = [pipeline(image).numpy() for _ in range(5)]
    ember.manual_seed(7)
    second = [pipeline(image).numpy() for _ in range(5)]
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert len({a.tobytes() for a in first}) > 1
    own = T.RandomCrop(4, generator=ember.random.Generator(3))
    again = T.RandomCrop(4, generator=ember.random.Generator(3))
    assert np.array_equal(own(image), again(image))


def test_augmented_batches_repeat_under_manual_seed():
    images = np.random.default_rng(0).integers(0, 256, (8, 6, 6), dtype=np.uint8)
    augment = T.Compose([T.ToTensor(), T.RandomCrop(4, padding=1), T.RandomHorizontalFlip()])

    class Augmented(ember.data.Dataset):
        def __len__(self):
            return len(images)

        def __getitem__(self, index):
            return augment(images[index])

    def epochs():
        ember.manual_seed(5)
        loader = ember.data.DataLoader(Augmented(), batch_size=4, shuffle=True)
        return [batch.numpy() for _ in range(2) for batch in loader]

    first, second = epochs(), epochs()
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert not np.array_equal(first[0], first[2])  # the next epoch draws new crops and order


def test_random_horizontal_flip():
    image = np.arange(12).reshape(3, 4)
    np.testing.assert_array_equal(T.RandomHorizontalFlip(1.0)(image), image[:, ::-1])
    np.testing.assert_array_equal(T.RandomHorizontalFlip(0.0)(image), image)
    ember.manual_seed(0)
    flips = sum(not np.array_equal(T.RandomHorizontalFlip(0.3)(image), image)
                for _ in range(1000))
    assert 230 < flips < 370  # Binomial(1000, 0.3): mean 300, sd 14.5


def _bilinear_reference(image, out_h, out_w):
    """Per-pixel half-pixel bilinear interpolation, written out directly."""
    in_h, in_w = image.shape

    def source(dst, in_size, out_size):
        s = max((dst + 0.5) * in_size / out_size - 0.5, 0.0)
        low = min(int(np.floor(s)), in_size - 1)
        return low, min(low + 1, in_size - 1), s - low

    out = np.zeros((out_h, out_w))
    for i in range(out_h):
        r0, r1, wr = source(i, in_h, out_h)
        for j in range(out_w):
            c0, c1, wc = source(j, in_w, out_w)
            top = image[r0, c0] * (1 - wc) + image[r0, c1] * wc
            bottom = image[r1, c0] * (1 - wc) + image[r1, c1] * wc
            out[i, j] = top * (1 - wr) + bottom * wr
    return out


@pytest.mark.parametrize("size", [(9, 5), (3, 11), (6, 7)])
def test_resize_matches_direct_bilinear(size):
    image = np.random.default_rng(2).random((6, 7)).astype(np.float32)
    np.testing.assert_allclose(T.Resize(size)(image), _bilinear_reference(image, *size),
                               rtol=1e-5, atol=1e-6)
    batched = T.Resize(size)(np.stack([image, 2 * image]))
    np.testing.assert_allclose(batched[1], 2 * _bilinear_reference(image, *size), rtol=1e-5,
                               atol=1e-6)


def test_resize_shorter_side_and_integer_images():
    assert T.Resize(4)(np.zeros((1, 8, 16), np.float32)).shape == (1, 4, 8)
    assert T.Resize(4)(np.zeros((16, 8), np.float32)).shape == (8, 4)
    image = np.random.default_rng(3).integers(0, 256, (5, 6), dtype=np.uint8)
    out = T.Resize((7, 4))(image)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.rint(_bilinear_reference(image.astype(float), 7, 4)))


def test_compose_and_lambda():
    pipeline = T.Compose([T.Lambda(lambda x: x + 1), T.Lambda(lambda x: x * 3)])
    assert pipeline(1) == 6
    assert "Lambda" in repr(pipeline)
    with pytest.raises(ember.EmberError, match="callable"):
        T.Lambda(3)


# ---- text -----------------------------------------------------------------------------------


def test_tokenizers():
    assert T.CharTokenizer()("ab c") == ["a", "b", " ", "c"]
    assert T.WordTokenizer()("It's 3 o'clock, Bob.") == ["it's", "3", "o'clock", ",", "bob", "."]
    assert T.WordTokenizer(lower=False)("Hi there") == ["Hi", "there"]


def test_vocab_order_frequency_and_unknowns():
    tokens = "the cat and the dog and the bird".split()
    vocab = T.Vocab(tokens)
    assert vocab.itos[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"]
    assert vocab.itos[4:] == ["the", "and", "bird", "cat", "dog"]  # by count, ties by name
    assert all(vocab.stoi[token] == index for index, token in enumerate(vocab.itos))
    assert vocab.lookup(["the", "fish"]) == [4, vocab.unk_index] and vocab.unk_index == 1
    assert vocab.lookup_tokens(vocab.lookup(tokens)) == tokens
    assert vocab.pad_index == 0 and vocab.bos_index == 2 and vocab.eos_index == 3
    frequent = T.Vocab(Counter(tokens), min_freq=2, specials=["<unk>"])
    assert frequent.itos == ["<unk>", "the", "and"]
    assert len(T.Vocab(tokens, max_size=6)) == 6
    strict = T.Vocab(tokens, specials=())
    with pytest.raises(ember.EmberError, match="'fish' is not in the vocabulary"):
        strict.lookup(["fish"])
    with pytest.raises(ember.EmberError, match="out of range"):
        vocab.lookup_tokens([99])


def test_pad_sequences_and_truncate():
    sequences = [[1, 2, 3, 4], [5], []]
    np.testing.assert_array_equal(T.pad_sequences(sequences),
                                  [[1, 2, 3, 4], [5, 0, 0, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(T.pad_sequences(sequences, max_len=2, padding="pre",
                                                  truncating="pre", value=-1),
                                  [[3, 4], [-1, 5], [-1, -1]])
    assert T.truncate("abcdef", 3) == "abc" and T.truncate("abcdef", 3, side="pre") == "def"


def test_collate_padded_through_a_dataloader():
    samples = [([3, 4, 5], 1), ([6], 0), ([7, 8], 1)]
    ids, lengths, labels = T.collate_padded(samples, padding_value=9)
    assert ids.dtype == ember.int64 and ids.shape == (3, 3)
    np.testing.assert_array_equal(ids.numpy(), [[3, 4, 5], [6, 9, 9], [7, 8, 9]])
    np.testing.assert_array_equal(lengths.numpy(), [3, 1, 2])
    np.testing.assert_array_equal(labels.numpy(), [1, 0, 1])
    loader = ember.data.DataLoader(samples, batch_size=2, collate_fn=T.collate_padded)
    batches = list(loader)
    assert [tuple(batch[0].shape) for batch in batches] == [(2, 3), (1, 2)]


# ---- audio ----------------------------------------------------------------------------------


def _write_pcm16(path, frames: np.ndarray, rate: int):
    """frames: (time, channels) int16, written with the standard library only."""
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(frames.shape[1])
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(frames.astype("<i2").tobytes())


def test_wav_round_trip_mono_and_stereo(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(-32768, 32768, (300, 2)).astype(np.int16)
    _write_pcm16(tmp_path / "stereo.wav", frames, 22050)
    samples, rate = T.load_wav(tmp_path / "stereo.wav")
    assert rate == 22050 and samples.dtype == np.float32 and samples.shape == (2, 300)
    np.testing.assert_array_equal(samples, frames.T / 32768.0)
    assert samples.min() >= -1.0 and samples.max() < 1.0
    _write_pcm16(tmp_path / "mono.wav", frames[:, :1], 8000)
    mono, _ = T.load_wav(tmp_path / "mono.wav")
    np.testing.assert_array_equal(mono, frames[:, 0] / 32768.0)
    T.save_wav(tmp_path / "again.wav", mono, 8000)
    np.testing.assert_array_equal(T.load_wav(tmp_path / "again.wav")[0], mono)
    with wave.open(str(tmp_path / "u8.wav"), "wb") as handle:  # 8-bit WAV is unsigned
        handle.setnchannels(1)
        handle.setsampwidth(1)
        handle.setframerate(8000)
        handle.writeframes(bytes([0, 128, 255]))
    np.testing.assert_array_equal(T.load_wav(tmp_path / "u8.wav")[0], [-1.0, 0.0, 127 / 128])
    (tmp_path / "bad.wav").write_bytes(b"not a wav file")
    with pytest.raises(ember.EmberError, match="not a PCM WAV"):
        T.load_wav(tmp_path / "bad.wav")


def _direct_stft(x, n_fft, hop, window):
    padded = np.pad(x.astype(np.float64), n_fft // 2, mode="reflect")
    count = 1 + (len(padded) - n_fft) // hop
    k = np.arange(n_fft // 2 + 1)[:, None]
    n = np.arange(n_fft)[None, :]
    dft = np.exp(-2j * np.pi * k * n / n_fft)
    frames = [padded[t * hop:t * hop + n_fft] * window for t in range(count)]
    return np.stack([dft @ frame for frame in frames], axis=1)


@pytest.mark.parametrize("n_fft, hop, win_length", [(64, 16, None), (50, 7, 30)])
def test_stft_matches_direct_dft(n_fft, hop, win_length):
    x = np.random.default_rng(0).normal(size=500).astype(np.float32)
    win = win_length or n_fft
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)  # periodic Hann
    left = (n_fft - win) // 2
    window = np.pad(window, (left, n_fft - win - left))
    got = T.stft(x, n_fft, hop_length=hop, win_length=win_length)
    expected = _direct_stft(x, n_fft, hop, window)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=2e-4 * np.abs(expected).max())
    batched = T.stft(np.stack([x, -x]), n_fft, hop_length=hop, win_length=win_length)
    np.testing.assert_allclose(batched[1], -got, rtol=1e-6)
    np.testing.assert_allclose(T.spectrogram(x, n_fft, hop, win_length=win_length),
                               np.abs(got) ** 2, rtol=1e-5)


def test_mel_scales_invert_and_agree_with_known_points():
    frequencies = np.array([0.0, 200.0, 999.0, 1000.0, 3000.0, 8000.0])
    for scale in ("htk", "slaney"):
        np.testing.assert_allclose(T.mel_to_hz(T.hz_to_mel(frequencies, scale), scale),
                                   frequencies, atol=1e-6)
    assert abs(float(T.hz_to_mel(1000.0, "htk")) - 1000.0) < 0.1  # HTK: 1 kHz ~ 1000 mel
    assert float(T.hz_to_mel(1000.0, "slaney")) == pytest.approx(15.0)  # 3 * 1000 / 200


def test_mel_filters_peak_at_centres_and_partition_unity():
    rate, n_fft, n_mels = 16000, 1024, 24
    filters = T.mel_filterbank(rate, n_fft, n_mels)
    bins = np.linspace(0, rate / 2, n_fft // 2 + 1)
    centres = T.mel_to_hz(np.linspace(0, T.hz_to_mel(rate / 2), n_mels + 2))
    assert filters.shape == (n_mels, n_fft // 2 + 1) and filters.min() >= 0
    assert filters.max() <= 1.0 + 1e-6
    for m in range(n_mels):  # each filter peaks at the bin nearest its centre
        assert abs(bins[np.argmax(filters[m])] - centres[m + 1]) <= rate / n_fft
    inside = (bins >= centres[1]) & (bins <= centres[-2])
    np.testing.assert_allclose(filters[:, inside].sum(axis=0), 1.0, atol=1e-5)


def test_slaney_filters_have_unit_area():
    rate, n_fft = 8000, 8192  # fine bins, so the trapezoid rule is near exact
    filters = T.mel_filterbank(rate, n_fft, 20, mel_scale="slaney", norm="slaney")
    area = filters.sum(axis=1) * rate / n_fft
    np.testing.assert_allclose(area, 1.0, rtol=0.01)


def test_dct_matrix_is_orthonormal_dct2():
    d = T.dct_matrix(12)
    np.testing.assert_allclose(d @ d.T, np.eye(12), atol=1e-12)
    x = np.random.default_rng(0).normal(size=12)
    n = np.arange(12)
    direct = [np.sum(x * np.cos(np.pi * k * (2 * n + 1) / 24)) * np.sqrt(2 / 12) for k in n]
    direct[0] /= np.sqrt(2)
    np.testing.assert_allclose(d @ x, direct, atol=1e-12)
    scipy_fft = pytest.importorskip("scipy.fft")
    np.testing.assert_allclose(d @ x, scipy_fft.dct(x, norm="ortho"), atol=1e-12)


def _tone(frequency, amplitude, rate=8000, seconds=0.5):
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def test_mel_spectrogram_of_a_tone_peaks_in_its_band():
    rate, n_mels = 8000, 40
    centres = T.mel_to_hz(np.linspace(0, T.hz_to_mel(rate / 2), n_mels + 2))[1:-1]
    for frequency in (300.0, 1200.0, 2500.0):
        mel = T.mel_spectrogram(_tone(frequency, 0.5), rate, n_fft=512, n_mels=n_mels)
        band = np.argmax(mel[:, 5:-5].mean(axis=1))
        assert band == np.argmin(np.abs(centres - frequency))


def test_mfcc_of_a_pure_tone():
    rate, n_mels, n_mfcc = 8000, 32, 13
    options = dict(n_fft=256, hop_length=64, n_mels=n_mels)
    # 500 Hz sits exactly on FFT bin 16 (8000 / 256 Hz apart): the periodic Hann window's
    # spectrum vanishes beyond one bin, so the tone's mirror image at -500 Hz cannot leak in.
    loud = T.mfcc(_tone(500.0, 0.5), rate, n_mfcc, **options)
    quiet = T.mfcc(_tone(500.0, 0.05), rate, n_mfcc, **options)
    assert loud.shape == (n_mfcc, 1 + 4000 // 64) and loud.dtype == np.float32
    # A stationary tone gives the same coefficients in every interior frame.
    interior = loud[:, 4:-4]
    assert np.abs(interior - interior.mean(axis=1, keepdims=True)).max() < 1e-3
    # Scaling by 1/10 lowers every dB value by 20 dB; the orthonormal DCT maps a constant
    # shift c to (c * sqrt(n_mels), 0, 0, ...), so only c0 moves.
    np.testing.assert_allclose(loud[0] - quiet[0], 20.0 * np.sqrt(n_mels), rtol=1e-3)
    np.testing.assert_allclose(loud[1:], quiet[1:], atol=2e-2)
    transform = T.MFCC(rate, n_mfcc, **options)
    np.testing.assert_allclose(transform(_tone(500.0, 0.5)), loud, rtol=1e-6)


def test_audio_argument_errors():
    with pytest.raises(ember.ShapeError, match="reflect padding"):
        T.stft(np.zeros(10, np.float32), n_fft=64)
    with pytest.raises(ember.EmberError, match="unknown window"):
        T.stft(np.zeros(100, np.float32), n_fft=16, window="kaiser")
    with pytest.raises(ember.EmberError, match="f_max"):
        T.mel_filterbank(8000, 256, f_max=6000)
    with pytest.raises(ember.EmberError, match="n_mfcc"):
        T.mfcc(np.zeros(800, np.float32), 8000, n_mfcc=50, n_mels=40)
    assert audio.get_window(None, 3).tolist() == [1.0, 1.0, 1.0]


# ---- time series ----------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(20,), (20, 3)])
@pytest.mark.parametrize("window, horizon, stride", [(4, 1, 1), (5, 3, 2), (1, 0, 3)])
def test_sliding_windows_match_a_loop(shape, window, horizon, stride):
    series = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    inputs, targets = T.sliding_windows(series, window, horizon, stride)
    starts = range(0, len(series) - window - horizon + 1, stride)
    np.testing.assert_array_equal(inputs, [series[s:s + window] for s in starts])
    np.testing.assert_array_equal(targets.reshape(len(starts), horizon, *shape[1:]),
                                  [series[s + window:s + window + horizon] for s in starts])
    inputs[0] = -1  # a copy, not a view of the series
    assert series.min() >= 0
    with pytest.raises(ember.ShapeError, match="shorter than"):
        T.sliding_windows(series[:3], 3, 1)


def test_split_by_time_keeps_order():
    series = np.arange(100)
    train, test = T.train_test_split_by_time(series, test_fraction=0.25)
    assert len(train) == 75 and len(test) == 25 and train[-1] + 1 == test[0]
    train, test = T.train_test_split_by_time(series, split=10)
    assert len(train) == 10 and test[0] == 10
    with pytest.raises(ember.EmberError, match="both parts"):
        T.train_test_split_by_time(series, split=100)
    with pytest.raises(ember.EmberError, match="test_fraction"):
        T.train_test_split_by_time(series, test_fraction=1.5)


def test_scalers_fit_on_train_only_and_invert():
    rng = np.random.default_rng(0)
    series = np.column_stack([rng.normal(5, 2, 200), np.linspace(0, 10, 200),
                              np.full(200, 3.0)]).astype(np.float32)
    train, test = T.train_test_split_by_time(series, test_fraction=0.2)
    scaler = T.StandardScaler().fit(train)
    scaled = scaler.transform(train)
    np.testing.assert_allclose(scaled[:, :2].mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(scaled[:, :2].std(axis=0), 1, atol=1e-5)
    np.testing.assert_array_equal(scaled[:, 2], 0)  # a constant feature stays finite
    np.testing.assert_allclose(scaler.transform(test),
                               (test - train.mean(axis=0)) / np.where(train.std(axis=0) > 0,
                                                                      train.std(axis=0), 1),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(scaler.inverse_transform(scaler.transform(test)), test, rtol=1e-5)
    minmax = T.MinMaxScaler((-1, 1)).fit(train)
    scaled = minmax.transform(train)
    np.testing.assert_allclose(scaled[:, :2].min(axis=0), -1, atol=1e-6)
    np.testing.assert_allclose(scaled[:, :2].max(axis=0), 1, atol=1e-6)
    assert minmax.transform(test)[:, 1].min() > 1  # test values beyond the train range
    np.testing.assert_allclose(minmax.inverse_transform(minmax.transform(test)), test, rtol=1e-5)
    with pytest.raises(ember.EmberError, match="fit"):
        T.StandardScaler().transform(train)
    with pytest.raises(ember.ShapeError, match="fitted on features"):
        scaler.transform(train[:, :2])


@pytest.mark.torch_reference
def test_stft_and_resize_match_torch():
    import torch

    x = np.random.default_rng(4).normal(size=(2, 700)).astype(np.float32)
    expected = torch.stft(torch.from_numpy(x), n_fft=128, hop_length=32,
                          window=torch.hann_window(128), center=True, pad_mode="reflect",
                          return_complex=True).numpy()
    np.testing.assert_allclose(T.stft(x, 128, 32), expected, atol=1e-4)
    image = np.random.default_rng(5).random((2, 3, 9, 7)).astype(np.float32)
    resized = torch.nn.functional.interpolate(torch.from_numpy(image), size=(5, 12),
                                              mode="bilinear", align_corners=False).numpy()
    np.testing.assert_allclose(T.Resize((5, 12))(image), resized, atol=1e-6)
