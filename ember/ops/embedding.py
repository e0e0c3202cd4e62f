"""Embedding lookup: rows of a (num_embeddings, dim) table picked by integer ids.

Forward is a row gather (`take` along axis 0). Backward scatter-adds the gradient rows into a
zero table; ids repeat (the same word many times in a batch), so the adds must accumulate.
On CPU a Numba loop does it row by row: one pass over the gradient with contiguous row adds,
where NumPy's `add.at` on a 2-d table takes its slow generic path. The scatter is its own
primitive whose vjp is the gather again, so the gradient stays differentiable.
"""
from __future__ import annotations

import numba
import numpy as np

from ember._core.primitive import AbstractValue, Primitive, apply
from ember._core.tensor import Tensor
from ember.ops.elementwise import where
from ember.ops.movement import expand_dims

_NO_PADDING = -1  # ids are checked to be >= 0, so -1 never matches


@numba.njit(cache=True, nogil=True)
def _scatter_rows_kernel(grad_rows, ids, padding_idx, out):  # pragma: no cover - compiled
    width = grad_rows.shape[1]
    for i in range(ids.shape[0]):
        row = ids[i]
        if row == padding_idx:
            continue
        for j in range(width):
            out[row, j] += grad_rows[i, j]


def _scatter_rows_sorted(xp, grad_rows, ids, padding_idx, out):
    """Sort the ids and add runs of equal ids with `add.reduceat` (dtypes Numba lacks)."""
    order = xp.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    starts = xp.flatnonzero(xp.concatenate([xp.ones(1, bool), sorted_ids[1:] != sorted_ids[:-1]]))
    sums = xp.add.reduceat(grad_rows[order].astype(xp.float32), starts, axis=0)
    out[sorted_ids[starts]] = sums.astype(out.dtype)
    if padding_idx != _NO_PADDING:
        out[padding_idx] = 0


def scatter_rows(xp, grad_rows, ids, num_rows: int, padding_idx: int):
    """zeros((num_rows, dim)) with grad_rows[i] added into row ids[i] (except padding_idx)."""
    out = xp.zeros((num_rows, grad_rows.shape[1]), dtype=grad_rows.dtype)
    if ids.size == 0:
        return out
    if xp is np:
        if grad_rows.dtype in (np.float32, np.float64):
            _scatter_rows_kernel(np.ascontiguousarray(grad_rows), ids.astype(np.int64),
                                 padding_idx, out)
        else:
            _scatter_rows_sorted(xp, grad_rows, ids, padding_idx, out)
        return out
    # Other backends (CuPy) have atomic scatter-add kernels behind add.at.
    keep = ids != padding_idx
    xp.add.at(out, ids[keep], grad_rows[keep])
    return out


class Embedding(Primitive):
    """weight[ids]: ids of any shape give ids.shape + (dim,); padding_idx gets no gradient."""

    def infer(self, weight, ids, padding_idx):
        return AbstractValue(tuple(ids.shape) + tuple(weight.shape[1:]), weight.dtype,
                             weight.device)

    def forward(self, xp, weight, ids, padding_idx):
        return xp.take(weight, ids, axis=0)

    def vjp(self, ctx, gy):
        weight, ids = ctx.inputs
        return apply(EMBEDDING_GRAD, gy, ids, num_rows=weight.shape[0],
                     padding_idx=ctx.params["padding_idx"]), None


class EmbeddingGrad(Primitive):
    """The gradient of the table: rows of gy summed into the rows their ids name."""

    def infer(self, gy, ids, num_rows, padding_idx):
        return AbstractValue((num_rows,) + tuple(gy.shape[ids.ndim:]), gy.dtype, gy.device)

    def forward(self, xp, gy, ids, num_rows, padding_idx):
        flat_ids = ids.reshape(-1)
        grad_rows = gy.reshape(flat_ids.shape[0], -1)
        return scatter_rows(xp, grad_rows, flat_ids, num_rows, padding_idx).reshape(
            (num_rows,) + gy.shape[ids.ndim:])

    def vjp(self, ctx, ggw):
        # Linear in gy: its transpose gathers the rows back (none for padding ids).
        ids = ctx.inputs[1]
        padding_idx = ctx.params["padding_idx"]
        rows = apply(EMBEDDING, ggw, ids, padding_idx=padding_idx)
        if padding_idx != _NO_PADDING:
            real = Tensor(ids._data != padding_idx, ids._device)
            rows = where(expand_dims(real, axis=-1), rows, 0.0)
        return rows, None


EMBEDDING, EMBEDDING_GRAD = Embedding(), EmbeddingGrad()


def embedding_lookup(weight: Tensor, ids: Tensor, padding_idx: int | None = None) -> Tensor:
    """weight[ids] with the gradient of row padding_idx held at zero (ids already checked:
    integers in [0, num_embeddings)).

    >>> import ember
    >>> from ember.ops.embedding import embedding_lookup
    >>> embedding_lookup(ember.eye(3), ember.tensor([2, 0]))
    tensor([[0., 0., 1.],
            [1., 0., 0.]])
    """
    padding = _NO_PADDING if padding_idx is None else int(padding_idx)
    return apply(EMBEDDING, weight, ids, padding_idx=padding)
