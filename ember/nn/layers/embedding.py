"""The Embedding layer: a trainable lookup table of `num_embeddings` vectors."""
from __future__ import annotations

from ember._core.autograd import no_grad
from ember._core.errors import EmberError
from ember._core.primitive import shape_error
from ember._core.tensor import Tensor
from ember.nn import init
from ember.nn.functional.embedding import embedding, normalize_padding_idx
from ember.nn.module import Module, Parameter
from ember.ops.creation import empty


class Embedding(Module):
    """A (num_embeddings, embedding_dim) table looked up by integer ids.

    Initialized from N(0, 1) as in PyTorch; the row `padding_idx` (negative values count from
    the end) starts at zero and receives no gradient.

    >>> import ember
    >>> layer = ember.nn.Embedding(10, 3, padding_idx=0)
    >>> out = layer(ember.tensor([[0, 4], [9, 0]]))
    >>> out.shape, float(out[0, 0].abs().sum())
    ((2, 2, 3), 0.0)
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 max_norm: float | None = None, norm_type: float = 2.0,
                 scale_grad_by_freq: bool = False, sparse: bool = False,
                 _weight: Tensor | None = None, _freeze: bool = False, dtype=None,
                 device=None):
        super().__init__()
        if max_norm is not None or scale_grad_by_freq or sparse:
            raise EmberError("Embedding: max_norm, scale_grad_by_freq and sparse are not "
                             "supported")
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = normalize_padding_idx(padding_idx, num_embeddings)
        if _weight is None:
            self.weight = Parameter(empty((num_embeddings, embedding_dim), dtype=dtype,
                                          device=device), requires_grad=not _freeze)
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise shape_error("Embedding", f"expected _weight of shape "
                                  f"{(num_embeddings, embedding_dim)}", _weight)
            self.weight = Parameter(_weight, requires_grad=not _freeze)

    def reset_parameters(self):
        init.normal_(self.weight)
        if self.padding_idx is not None:
            with no_grad():
                self.weight[self.padding_idx] = 0.0

    @classmethod
    def from_pretrained(cls, embeddings: Tensor, freeze: bool = True,
                        padding_idx: int | None = None) -> Embedding:
        """An Embedding holding `embeddings` (2-d), frozen unless freeze=False."""
        if embeddings.ndim != 2:
            raise shape_error("Embedding.from_pretrained", "expected a 2-d tensor", embeddings)
        rows, dim = embeddings.shape
        return cls(rows, dim, padding_idx=padding_idx, _weight=embeddings.detach(),
                   _freeze=freeze)

    def forward(self, ids):
        return embedding(ids, self.weight, self.padding_idx)

    def extra_repr(self):
        padding = f", padding_idx={self.padding_idx}" if self.padding_idx is not None else ""
        return f"{self.num_embeddings}, {self.embedding_dim}{padding}"
