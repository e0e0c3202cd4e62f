"""Audio: WAV files via the standard library, STFT, (mel) spectrograms and MFCC, all NumPy.

Layouts follow torchaudio/librosa: a waveform is (..., time); spectrograms are
(..., freq, frames) with freq = n_fft // 2 + 1. The mel scale defaults to HTK
(2595 log10(1 + f / 700), torchaudio's default) with unnormalised triangles; pass
`mel_scale="slaney", norm="slaney"` for librosa's defaults.
"""
from __future__ import annotations

import math
import os
import wave

import numpy as np

from ember._core.errors import EmberError, ShapeError

# Divisors that map signed PCM to [-1, 1): 2^(bits - 1), as soundfile and torchaudio do.
_PCM_SCALE = {1: 128.0, 2: 32768.0, 4: 2147483648.0}


def load_wav(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read a PCM WAV file: (float32 samples in [-1, 1], sample rate).

    Mono gives shape (time,), more channels (channels, time). 8-, 16- and 32-bit PCM.

    >>> import os, tempfile, numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "a.wav")
    >>> save_wav(path, np.array([0.0, 0.5, -1.0], np.float32), 8000)
    >>> load_wav(path)
    (array([ 0. ,  0.5, -1. ], dtype=float32), 8000)
    """
    try:
        with wave.open(os.fspath(path), "rb") as handle:
            channels, width = handle.getnchannels(), handle.getsampwidth()
            rate, frames = handle.getframerate(), handle.getnframes()
            raw = handle.readframes(frames)
    except (wave.Error, EOFError) as error:
        raise EmberError(f"load_wav: {path} is not a PCM WAV file the standard library can "
                         f"read ({error})") from None
    if width not in _PCM_SCALE:
        raise EmberError(f"load_wav: {path} has {8 * width}-bit samples; supported are 8-, "
                         f"16- and 32-bit PCM")
    if width == 1:  # 8-bit WAV is unsigned, centred on 128
        samples = np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0
    else:
        samples = np.frombuffer(raw, dtype=f"<i{width}").astype(np.float32)
    samples = samples / np.float32(_PCM_SCALE[width])
    samples = samples.reshape(-1, channels).T
    return (samples[0].copy() if channels == 1 else np.ascontiguousarray(samples)), rate


def save_wav(path: str | os.PathLike, samples, sample_rate: int):
    """Write float samples in [-1, 1] ((time,) or (channels, time)) as 16-bit PCM WAV.

    Values outside [-1, 1] are clipped. See `load_wav` for an example.
    """
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim == 1:
        samples = samples[None]
    if samples.ndim != 2:
        raise ShapeError(f"save_wav: expected (time,) or (channels, time), got shape "
                         f"{samples.shape}")
    pcm = np.clip(np.round(samples * 32768.0), -32768, 32767).astype("<i2")
    with wave.open(os.fspath(path), "wb") as handle:
        handle.setnchannels(samples.shape[0])
        handle.setsampwidth(2)
        handle.setframerate(int(sample_rate))
        handle.writeframes(pcm.T.tobytes())


def get_window(window, length: int) -> np.ndarray:
    """A periodic window ('hann', 'hamming', 'rectangular'/None) or an explicit array.

    Periodic (not symmetric) windows, as torch.stft and librosa use for spectral analysis.

    >>> get_window("hann", 4).tolist()
    [0.0, 0.5, 1.0, 0.5]
    """
    if window is None or (isinstance(window, str) and window in ("rectangular", "boxcar")):
        return np.ones(length, dtype=np.float32)
    if isinstance(window, str):
        phase = 2.0 * np.pi * np.arange(length) / length
        if window == "hann":
            return (0.5 - 0.5 * np.cos(phase)).astype(np.float32)
        if window == "hamming":
            return (0.54 - 0.46 * np.cos(phase)).astype(np.float32)
        raise EmberError(f"get_window: unknown window {window!r}; expected 'hann', 'hamming', "
                         f"'rectangular' or an array")
    array = np.asarray(window, dtype=np.float32)
    if array.shape != (length,):
        raise ShapeError(f"get_window: window array must have shape ({length},), got "
                         f"{array.shape}")
    return array


def stft(x, n_fft: int, hop_length: int | None = None, win_length: int | None = None,
         window="hann", center: bool = True, pad_mode: str = "reflect") -> np.ndarray:
    """Short-time Fourier transform of (..., time): complex (..., n_fft // 2 + 1, frames).

    Frame t covers samples [t * hop, t * hop + n_fft) of the signal, padded by n_fft // 2 on
    both sides when `center` (as torch.stft and librosa). hop_length defaults to n_fft // 4;
    a shorter window is zero-padded to n_fft in the middle.

    >>> stft(np.ones(16, np.float32), n_fft=8, hop_length=4).shape
    (5, 5)
    """
    x = np.asarray(x)
    x = x.astype(np.float32) if x.dtype != np.float64 else x
    hop_length = hop_length or n_fft // 4
    win_length = win_length or n_fft
    if n_fft < 1 or hop_length < 1 or not 0 < win_length <= n_fft:
        raise EmberError(f"stft: need n_fft >= 1, hop_length >= 1 and 0 < win_length <= n_fft; "
                         f"got n_fft={n_fft}, hop_length={hop_length}, win_length={win_length}")
    window = get_window(window, win_length).astype(x.dtype)
    left = (n_fft - win_length) // 2
    window = np.pad(window, (left, n_fft - win_length - left))
    if center:
        if pad_mode == "reflect" and x.shape[-1] <= n_fft // 2:
            raise ShapeError(f"stft: reflect padding needs more than n_fft // 2 = {n_fft // 2} "
                             f"samples, got {x.shape[-1]}")
        x = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(n_fft // 2, n_fft // 2)], mode=pad_mode)
    if x.shape[-1] < n_fft:
        raise ShapeError(f"stft: the signal has {x.shape[-1]} samples, fewer than n_fft="
                         f"{n_fft}")
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft, axis=-1)[..., ::hop_length, :]
    spectrum = np.fft.rfft(frames * window, axis=-1)
    return np.swapaxes(spectrum, -1, -2)


def spectrogram(x, n_fft: int = 400, hop_length: int | None = None, power: float = 2.0,
                **stft_options) -> np.ndarray:
    """|STFT| ** power: power=1 gives the magnitude, 2 the power spectrogram.

    >>> spectrogram(np.ones(16, np.float32), n_fft=8, power=1.0)[0, 2]
    np.float32(4.0)
    """
    magnitude = np.abs(stft(x, n_fft, hop_length, **stft_options))
    return magnitude if power == 1.0 else magnitude ** power


def hz_to_mel(frequency, mel_scale: str = "htk"):
    """Hz -> mel. 'htk': 2595 log10(1 + f / 700). 'slaney': linear below 1 kHz, log above."""
    frequency = np.asarray(frequency, dtype=np.float64)
    if mel_scale == "htk":
        return 2595.0 * np.log10(1.0 + frequency / 700.0)
    if mel_scale == "slaney":
        linear = 3.0 * frequency / 200.0
        log_part = 15.0 + np.log(np.maximum(frequency, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
        return np.where(frequency >= 1000.0, log_part, linear)
    raise EmberError(f"hz_to_mel: mel_scale must be 'htk' or 'slaney', got {mel_scale!r}")


def mel_to_hz(mel, mel_scale: str = "htk"):
    """Inverse of `hz_to_mel`.

    >>> float(mel_to_hz(hz_to_mel(440.0)))
    440.0...
    """
    mel = np.asarray(mel, dtype=np.float64)
    if mel_scale == "htk":
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    if mel_scale == "slaney":
        return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)),
                        200.0 * mel / 3.0)
    raise EmberError(f"mel_to_hz: mel_scale must be 'htk' or 'slaney', got {mel_scale!r}")


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int = 128, f_min: float = 0.0,
                   f_max: float | None = None, mel_scale: str = "htk",
                   norm: str | None = None) -> np.ndarray:
    """Triangular mel filters, float32 (n_mels, n_fft // 2 + 1): mel = filters @ power_spec.

    Filter m rises linearly (in Hz) from centre m-1 to m and falls to m+1, the n_mels + 2
    centres being equally spaced in mel between f_min and f_max (default sample_rate / 2).
    norm=None peaks at 1 (torchaudio's default); norm='slaney' scales each triangle to unit
    area in Hz (librosa's default).

    >>> mel_filterbank(8000, 256, n_mels=20).shape
    (20, 129)
    """
    f_max = sample_rate / 2.0 if f_max is None else f_max
    if not 0.0 <= f_min < f_max <= sample_rate / 2.0:
        raise EmberError(f"mel_filterbank: need 0 <= f_min < f_max <= sample_rate / 2 = "
                         f"{sample_rate / 2}, got f_min={f_min}, f_max={f_max}")
    if norm not in (None, "slaney"):
        raise EmberError(f"mel_filterbank: norm must be None or 'slaney', got {norm!r}")
    bin_frequencies = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    mel_points = np.linspace(hz_to_mel(f_min, mel_scale), hz_to_mel(f_max, mel_scale),
                             n_mels + 2)
    centres = mel_to_hz(mel_points, mel_scale)
    widths = np.diff(centres)
    offsets = centres[None, :] - bin_frequencies[:, None]          # (freq, n_mels + 2)
    rising = -offsets[:, :-2] / widths[:-1]
    falling = offsets[:, 2:] / widths[1:]
    filters = np.maximum(0.0, np.minimum(rising, falling)).T       # (n_mels, freq)
    if norm == "slaney":
        filters *= (2.0 / (centres[2:] - centres[:-2]))[:, None]
    return filters.astype(np.float32)


def mel_spectrogram(x, sample_rate: int, n_fft: int = 400, hop_length: int | None = None,
                    n_mels: int = 128, f_min: float = 0.0, f_max: float | None = None,
                    power: float = 2.0, mel_scale: str = "htk", norm: str | None = None,
                    **stft_options) -> np.ndarray:
    """Mel spectrogram (..., n_mels, frames) of a (..., time) waveform.

    >>> mel_spectrogram(np.zeros(800, np.float32), 8000, n_fft=256, n_mels=20).shape
    (20, 13)
    """
    spec = spectrogram(x, n_fft, hop_length, power=power, **stft_options)
    filters = mel_filterbank(sample_rate, n_fft, n_mels, f_min, f_max, mel_scale, norm)
    return np.matmul(filters.astype(spec.dtype), spec)


def power_to_db(spec, ref: float = 1.0, amin: float = 1e-10,
                top_db: float | None = 80.0) -> np.ndarray:
    """10 log10(max(spec, amin) / ref), floored at (max - top_db) per (..., freq, frames) item.

    >>> power_to_db(np.array([[100.0, 1e-12]]), top_db=None).tolist()
    [[20.0, -100.0]]
    """
    spec = np.asarray(spec)
    # math.log10 keeps the offset a Python float, so float32 input stays float32.
    db = 10.0 * np.log10(np.maximum(spec, amin)) - 10.0 * math.log10(max(amin, ref))
    if top_db is not None:
        peak = db.max(axis=(-2, -1), keepdims=True) if db.ndim >= 2 else db.max()
        db = np.maximum(db, peak - top_db)
    return db


def dct_matrix(n_input: int, n_output: int | None = None) -> np.ndarray:
    """Orthonormal DCT-II as a (n_output, n_input) matrix (scipy's dct(type=2, norm='ortho')).

    >>> d = dct_matrix(4)
    >>> bool(np.allclose(d @ d.T, np.eye(4)))
    True
    """
    n_output = n_input if n_output is None else n_output
    k = np.arange(n_output)[:, None]
    n = np.arange(n_input)[None, :]
    matrix = np.cos(np.pi * k * (2 * n + 1) / (2 * n_input)) * np.sqrt(2.0 / n_input)
    matrix[0] /= np.sqrt(2.0)
    return matrix


def mfcc(x, sample_rate: int, n_mfcc: int = 40, n_mels: int = 128, top_db: float | None = 80.0,
         **mel_options) -> np.ndarray:
    """MFCC (..., n_mfcc, frames): orthonormal DCT-II over the mel axis of the dB mel spectrogram.

    Same recipe as torchaudio.transforms.MFCC (log_mels=False) and librosa.feature.mfcc.

    >>> mfcc(np.zeros(800, np.float32), 8000, n_mfcc=13, n_mels=20, n_fft=256).shape
    (13, 13)
    """
    if n_mfcc > n_mels:
        raise EmberError(f"mfcc: n_mfcc={n_mfcc} cannot exceed n_mels={n_mels}")
    db = power_to_db(mel_spectrogram(x, sample_rate, n_mels=n_mels, **mel_options),
                     top_db=top_db)
    basis = dct_matrix(n_mels, n_mfcc).astype(db.dtype)
    return np.matmul(basis, db)


class Spectrogram:
    """Transform form of `spectrogram` for datasets: Spectrogram(n_fft=256)(waveform)."""

    def __init__(self, n_fft: int = 400, hop_length: int | None = None, power: float = 2.0,
                 **stft_options):
        self.options = dict(n_fft=n_fft, hop_length=hop_length, power=power, **stft_options)

    def __call__(self, waveform):
        return spectrogram(waveform, **self.options)


class MelSpectrogram:
    """Transform form of `mel_spectrogram`: MelSpectrogram(8000, n_mels=40)(waveform)."""

    def __init__(self, sample_rate: int, **mel_options):
        self.sample_rate = sample_rate
        self.options = mel_options

    def __call__(self, waveform):
        return mel_spectrogram(waveform, self.sample_rate, **self.options)


class MFCC:
    """Transform form of `mfcc`: MFCC(8000, n_mfcc=13)(waveform)."""

    def __init__(self, sample_rate: int, n_mfcc: int = 40, **mfcc_options):
        self.sample_rate = sample_rate
        self.n_mfcc = n_mfcc
        self.options = mfcc_options

    def __call__(self, waveform):
        return mfcc(waveform, self.sample_rate, self.n_mfcc, **self.options)
