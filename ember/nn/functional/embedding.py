"""Embedding lookup as a function: checks ids and padding_idx, then the `Embedding` primitive."""
from __future__ import annotations

from ember._core.errors import DTypeError, user_frame
from ember._core.primitive import STATE, shape_error
from ember._core.tensor import Tensor
from ember.ops._util import as_tensor
from ember.ops.embedding import embedding_lookup
from ember.ops.indexing import IndexOutOfRange


def normalize_padding_idx(padding_idx: int | None, num_embeddings: int) -> int | None:
    """padding_idx in [0, num_embeddings): negative values count from the end."""
    if padding_idx is None:
        return None
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise IndexOutOfRange(f"embedding: padding_idx={padding_idx} must be within "
                              f"[-{num_embeddings}, {num_embeddings}) for num_embeddings="
                              f"{num_embeddings} at {user_frame()}")
    return padding_idx + num_embeddings if padding_idx < 0 else padding_idx


def _check_ids(ids: Tensor, num_embeddings: int):
    if ids._data.dtype.kind not in "iu":
        raise DTypeError(f"embedding: ids must be integers (int32 or int64), got "
                         f"{ids.dtype.name} at {user_frame()}")
    if STATE.tracer is not None or ids._data.size == 0:
        return
    low, high = int(ids._data.min()), int(ids._data.max())
    if low < 0 or high >= num_embeddings:
        bad = low if low < 0 else high
        raise IndexOutOfRange(f"embedding: id {bad} is out of range for num_embeddings="
                              f"{num_embeddings}; ids must be in [0, {num_embeddings - 1}] "
                              f"at {user_frame()}")


def embedding(input, weight, padding_idx: int | None = None) -> Tensor:
    """Rows of `weight` (num_embeddings, dim) for the integer ids in `input` (any shape).

    The row `padding_idx` receives no gradient. Ids outside [0, num_embeddings) raise
    IndexOutOfRange.

    >>> import ember
    >>> table = ember.arange(6.0).reshape(3, 2)
    >>> ember.nn.functional.embedding(ember.tensor([[2, 0]]), table)
    tensor([[[4., 5.],
             [0., 1.]]])
    """
    ids = input if isinstance(input, Tensor) else as_tensor(input)
    if weight.ndim != 2:
        raise shape_error("embedding", "expected a 2-d weight (num_embeddings, "
                          "embedding_dim)", weight)
    num_embeddings = weight.shape[0]
    _check_ids(ids, num_embeddings)
    return embedding_lookup(weight, ids, normalize_padding_idx(padding_idx, num_embeddings))
