"""Transforms for images, text, audio and time series (NumPy in, NumPy or ember Tensors out)."""
from ember.data.transforms.audio import (
    MFCC,
    MelSpectrogram,
    Spectrogram,
    dct_matrix,
    get_window,
    hz_to_mel,
    load_wav,
    mel_filterbank,
    mel_spectrogram,
    mel_to_hz,
    mfcc,
    power_to_db,
    save_wav,
    spectrogram,
    stft,
)
from ember.data.transforms.image import (
    Compose,
    Lambda,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    Resize,
    ToTensor,
)
from ember.data.transforms.text import (
    CharTokenizer,
    Vocab,
    WordTokenizer,
    collate_padded,
    pad_sequences,
    truncate,
)
from ember.data.transforms.timeseries import (
    MinMaxScaler,
    StandardScaler,
    sliding_windows,
    train_test_split_by_time,
)

__all__ = [
    "CharTokenizer", "Compose", "Lambda", "MFCC", "MelSpectrogram", "MinMaxScaler", "Normalize",
    "RandomCrop", "RandomHorizontalFlip", "Resize", "Spectrogram", "StandardScaler", "ToTensor",
    "Vocab", "WordTokenizer", "collate_padded", "dct_matrix", "get_window", "hz_to_mel",
    "load_wav", "mel_filterbank", "mel_spectrogram", "mel_to_hz", "mfcc", "pad_sequences",
    "power_to_db", "save_wav", "sliding_windows", "spectrogram", "stft", "train_test_split_by_time",
    "truncate",
]
