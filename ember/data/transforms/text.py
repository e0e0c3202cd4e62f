"""Text: character and word tokenizers, a vocabulary with special tokens, padding, collation."""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from ember._core.errors import EmberError, ShapeError
from ember._core.tensor import Tensor

SPECIALS = ("<pad>", "<unk>", "<bos>", "<eos>")


class CharTokenizer:
    """Split text into characters.

    >>> CharTokenizer()("Hi!")
    ['H', 'i', '!']
    """

    def __init__(self, lower: bool = False):
        self.lower = lower

    def __call__(self, text: str) -> list[str]:
        return list(text.lower() if self.lower else text)

    def __repr__(self):
        return f"CharTokenizer(lower={self.lower})"


class WordTokenizer:
    """Lowercase, then split into words (letters, digits, apostrophes) and punctuation marks.

    >>> WordTokenizer()("Don't panic, Arthur!")
    ["don't", 'panic', ',', 'arthur', '!']
    """

    # A word keeps inner apostrophes ("don't"); every other non-space symbol is its own token.
    _PATTERN = re.compile(r"\w+(?:'\w+)*|[^\w\s]")

    def __init__(self, lower: bool = True):
        self.lower = lower

    def __call__(self, text: str) -> list[str]:
        return self._PATTERN.findall(text.lower() if self.lower else text)

    def __repr__(self):
        return f"WordTokenizer(lower={self.lower})"


class Vocab:
    """Token <-> id mapping: specials first, then tokens by decreasing count (ties alphabetical).

    Build it from a `Counter`/mapping of counts or from an iterable of tokens. Unknown tokens
    map to '<unk>' when it is among the specials, else looking them up is an error.

    >>> vocab = Vocab("abracadabra")
    >>> vocab.itos
    ['<pad>', '<unk>', '<bos>', '<eos>', 'a', 'b', 'r', 'c', 'd']
    >>> vocab.lookup(list("cab?"))
    [7, 4, 5, 1]
    >>> vocab.lookup_tokens([5, 6])
    ['b', 'r']
    """

    def __init__(self, counter_or_tokens: Mapping[str, int] | Iterable[str], min_freq: int = 1,
                 specials: Sequence[str] = SPECIALS, max_size: int | None = None):
        if min_freq < 1:
            raise EmberError(f"Vocab: min_freq must be >= 1, got {min_freq}")
        counts = (Counter(counter_or_tokens) if not isinstance(counter_or_tokens, Mapping)
                  else counter_or_tokens)
        specials = list(specials)
        if len(set(specials)) != len(specials):
            raise EmberError(f"Vocab: specials must be distinct, got {specials}")
        special_set = set(specials)
        kept = sorted((token for token, count in counts.items()
                       if count >= min_freq and token not in special_set),
                      key=lambda token: (-counts[token], token))
        if max_size is not None:
            kept = kept[:max(0, max_size - len(specials))]
        self.itos: list[str] = specials + kept
        self.stoi: dict[str, int] = {token: index for index, token in enumerate(self.itos)}
        self.specials = tuple(specials)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def _special_index(self, token: str) -> int | None:
        return self.stoi.get(token) if token in self.specials else None

    @property
    def unk_index(self) -> int | None:
        return self._special_index("<unk>")

    @property
    def pad_index(self) -> int | None:
        return self._special_index("<pad>")

    @property
    def bos_index(self) -> int | None:
        return self._special_index("<bos>")

    @property
    def eos_index(self) -> int | None:
        return self._special_index("<eos>")

    def __getitem__(self, token: str) -> int:
        index = self.stoi.get(token)
        if index is not None:
            return index
        if self.unk_index is None:
            raise EmberError(f"Vocab: token {token!r} is not in the vocabulary and '<unk>' is "
                             f"not among the specials {list(self.specials)}; add '<unk>' to "
                             f"specials to map unknown tokens")
        return self.unk_index

    def lookup(self, tokens: Iterable[str]) -> list[int]:
        """Ids of `tokens` (unknown ones -> '<unk>')."""
        unk = self.unk_index
        if unk is not None:
            get = self.stoi.get
            return [get(token, unk) for token in tokens]
        return [self[token] for token in tokens]

    def lookup_tokens(self, ids: Iterable[int]) -> list[str]:
        """Tokens of `ids`."""
        size = len(self.itos)
        tokens = []
        for index in ids:
            index = int(index)
            if not 0 <= index < size:
                raise EmberError(f"Vocab: id {index} is out of range [0, {size})")
            tokens.append(self.itos[index])
        return tokens

    def __repr__(self):
        return f"Vocab(size={len(self)}, specials={list(self.specials)})"


def truncate(sequence: Sequence, max_len: int, side: str = "post") -> Sequence:
    """Keep at most `max_len` items, dropping from the end ('post') or the start ('pre').

    >>> truncate([1, 2, 3, 4], 2), truncate([1, 2, 3, 4], 2, side="pre")
    ([1, 2], [3, 4])
    """
    if side not in ("pre", "post"):
        raise EmberError(f"truncate: side must be 'pre' or 'post', got {side!r}")
    if max_len < 0:
        raise EmberError(f"truncate: max_len must be >= 0, got {max_len}")
    if len(sequence) <= max_len:
        return sequence
    return sequence[:max_len] if side == "post" else sequence[len(sequence) - max_len:]


def pad_sequences(sequences: Sequence[Sequence[int]], max_len: int | None = None,
                  value: int = 0, padding: str = "post", truncating: str = "post",
                  dtype=np.int64) -> np.ndarray:
    """Stack sequences into a (batch, max_len) array, padding with `value` (Keras-style).

    `max_len` defaults to the longest sequence; longer ones are truncated.

    >>> pad_sequences([[1, 2, 3], [4]], max_len=2, padding="pre").tolist()
    [[1, 2], [0, 4]]
    """
    if padding not in ("pre", "post"):
        raise EmberError(f"pad_sequences: padding must be 'pre' or 'post', got {padding!r}")
    if max_len is None:
        max_len = max((len(sequence) for sequence in sequences), default=0)
    out = np.full((len(sequences), max_len), value, dtype=dtype)
    for row, sequence in enumerate(sequences):
        sequence = np.asarray(truncate(sequence, max_len, truncating))
        if sequence.ndim != 1:
            raise ShapeError(f"pad_sequences: sequence {row} must be 1-d, got shape "
                             f"{sequence.shape}")
        if len(sequence) == 0:
            continue
        if padding == "post":
            out[row, :len(sequence)] = sequence
        else:
            out[row, max_len - len(sequence):] = sequence
    return out


def _as_sequence(item):
    return item.numpy() if isinstance(item, Tensor) else item


def collate_padded(batch: Sequence, padding_value: int = 0):
    """Collate variable-length id sequences into (padded ids, lengths), both int64 Tensors.

    Items may also be tuples (sequence, label, ...): the result is then
    (padded ids, lengths, labels, ...), the extra fields stacked into Tensors.
    Use `functools.partial(collate_padded, padding_value=vocab.pad_index)` for another pad id.

    >>> ids, lengths = collate_padded([[5, 6, 7], [8]])
    >>> ids.numpy().tolist(), lengths.numpy().tolist()
    ([[5, 6, 7], [8, 0, 0]], [3, 1])
    >>> ids, lengths, labels = collate_padded([([1, 2], 0), ([3], 1)])
    >>> labels.numpy().tolist()
    [0, 1]
    """
    if len(batch) == 0:
        raise EmberError("collate_padded: the batch is empty")
    with_fields = isinstance(batch[0], tuple)
    sequences = [_as_sequence(item[0] if with_fields else item) for item in batch]
    lengths = np.array([len(sequence) for sequence in sequences], dtype=np.int64)
    padded = pad_sequences(sequences, value=padding_value)
    result = [Tensor(padded), Tensor(lengths)]
    if with_fields:
        for field in range(1, len(batch[0])):
            values = [_as_sequence(item[field]) for item in batch]
            result.append(Tensor(np.ascontiguousarray(np.stack([np.asarray(v)
                                                                for v in values]))))
    return tuple(result)
