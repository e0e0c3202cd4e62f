"""Scaled dot-product attention: one fused primitive, plus the mask conventions around it.

`ScaledDotProductAttention` computes softmax(q k^T * scale + bias) v in one forward pass (the
scale is folded into q, the bias and causal mask are added in place, the softmax runs in place)
and returns the attention weights as a second output. A plain backward runs one fused
primitive on the arrays (`ScaledDotProductAttentionGrad`); under `create_graph` the same rule
is written in ember ops reading the weights through `ctx.output(1)`, which stays linked to
the node, so double backward works without re-running the forward.
"""
from __future__ import annotations

import math

import numpy as np

from ember import random as ember_random
from ember._core.errors import DTypeError, user_frame
from ember._core.primitive import STATE, AbstractValue, Primitive, apply, shape_error
from ember._core.shapes import broadcast_shapes
from ember._core.tensor import Tensor
from ember.nn.functional.linear import linear
from ember.ops import _softmax_kernels
from ember.ops._fastmath import KERNEL_DTYPES
from ember.ops._util import cast
from ember.ops.elementwise import where
from ember.ops.linalg import matmul
from ember.ops.movement import (
    broadcast_to,
    concat,
    expand_dims,
    matrix_transpose,
    permute_dims,
    repeat,
    reshape,
    split,
    squeeze,
)
from ember.ops.reduce import mean
from ember.ops.reduce import sum as reduce_sum


class ScaledDotProductAttention(Primitive):
    """(out, weights) = (dropout(weights) @ v, softmax(q @ k^T * scale + bias [+ causal])).

    Inputs: query (..., L, E), key (..., S, E), value (..., S, Ev), `bias` (an additive float
    mask broadcastable to (..., L, S), or None) and `keep` (dropout's scaled keep mask of the
    weights' shape, or None). Params: `scale` and `causal` (mask j > i, top-left aligned).
    Rows with every key masked get zero weights instead of NaN.
    """

    accepts_missing_cotangents = True  # the weights are rarely used: no zeros to add

    def infer(self, query, key, value, bias, keep, scale, causal):
        batch = broadcast_shapes(query.shape[:-2], key.shape[:-2], value.shape[:-2],
                                 op=self.name)
        length, source = query.shape[-2], key.shape[-2]
        if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
            raise shape_error(self.name, "expected query (..., L, E), key (..., S, E) and "
                              "value (..., S, Ev)", query, key, value)
        weights = batch + (length, source)
        if bias is not None:
            weights = broadcast_shapes(weights, bias.shape, op=self.name)
        return (AbstractValue(weights[:-2] + (length, value.shape[-1]), query.dtype,
                              query.device),
                AbstractValue(weights, query.dtype, query.device))

    def forward(self, xp, query, key, value, bias, keep, scale, causal):
        dtype = query.dtype
        # NumPy float32/float64: the softmax (scale and causal mask included) is one row
        # kernel over the scores (ember/ops/_softmax_kernels.py)
        rows = xp is np and dtype in KERNEL_DTYPES
        if rows and bias is None:  # the kernel scales the scores as it reads them
            scores, row_scale = xp.matmul(query, _transposed(xp, key)), scale
        else:
            # Scaling q (L x E) is cheaper than scaling the scores (L x S) when E <= S.
            scores, row_scale = xp.matmul(query * dtype.type(scale), _transposed(xp, key)), 1.0
            if dtype.itemsize < 4:  # half-precision softmax sums lose small terms
                scores = scores.astype(xp.float32)
            if bias is not None:
                if broadcast_shapes(scores.shape, bias.shape) == scores.shape:
                    scores += bias
                else:
                    scores = scores + bias
        if rows:
            flat = xp.ascontiguousarray(scores).reshape((-1,) + scores.shape[-2:])
            _softmax_kernels.softmax_rows(flat, dtype.type(row_scale), bool(causal),
                                          *_softmax_kernels.sum_range(dtype))
            weights = flat.reshape(scores.shape)
        else:
            weights = _softmax_numpy(xp, scores, bias is not None, causal)
            weights = weights.astype(dtype, copy=False)
        out = xp.matmul(weights * keep if keep is not None else weights, value)
        return out.astype(dtype, copy=False), weights  # bfloat16 products come out float32

    def vjp(self, ctx, g_out, g_weights):
        query, key, value, bias, keep = ctx.inputs
        scale = ctx.params["scale"]
        needs = tuple(edge is not None for edge in ctx.node.edges[:4])
        weights = ctx.output(1)
        if g_out is None:  # only the weights were used
            g_out = Tensor(ctx.node.device.xp.zeros(*ctx.node.out_meta[0]), ctx.node.device)
        if not STATE.grad_enabled:  # no graph to record: one fused pass on the arrays
            grads = apply(SCALED_DOT_PRODUCT_ATTENTION_GRAD, g_out, g_weights, query, key,
                          value, weights, keep, scale=scale, needs=needs)
            return (*(grad if need else None for grad, need in zip(grads, needs)), None)
        # create_graph: the same rule in ember ops, so it can be differentiated again.
        dropped = weights * keep if keep is not None else weights
        g_value = matmul(matrix_transpose(dropped), g_out) if needs[2] else None
        g_dropped = matmul(g_out, matrix_transpose(value))
        g_probs = g_dropped * keep if keep is not None else g_dropped
        if g_weights is not None:
            g_probs = g_probs + g_weights
        # Softmax backward: J^T g = w * (g - <g, w>) along the key axis.
        g_scores = weights * (g_probs - reduce_sum(g_probs * weights, axis=-1, keepdims=True))
        g_query = matmul(g_scores, key) * scale if needs[0] else None
        g_key = matmul(matrix_transpose(g_scores), query) * scale if needs[1] else None
        return g_query, g_key, g_value, g_scores if needs[3] else None, None


def _softmax_numpy(xp, scores, has_bias: bool, causal: bool):
    """softmax over the last axis of `scores`, in place, with the causal mask; a fully
    masked row gets zero weights."""
    masked = has_bias or causal
    if causal:
        length, source = scores.shape[-2:]
        scores += xp.triu(xp.full((length, source), -xp.inf, scores.dtype), 1)
    peak = scores.max(axis=-1, keepdims=True)
    if masked:  # a fully masked row has peak -inf; shifting by it would give NaN
        peak[peak == -xp.inf] = 0
    scores -= peak
    xp.exp(scores, out=scores)
    total = scores.sum(axis=-1, keepdims=True)
    if masked:
        total[total == 0] = 1
    scores /= total
    return scores


def _transposed(xp, matrix):
    """matrix^T over the last two axes, as BLAS can read it: NumPy's matmul falls back to a
    slow loop (about 13x slower, measured on (16, 4, 64, 128) float32) for a transposed
    operand whose rows are not contiguous, e.g. one head sliced out of packed projections."""
    if not matrix.flags.c_contiguous:
        matrix = xp.ascontiguousarray(matrix)
    return xp.swapaxes(matrix, -1, -2)


class ScaledDotProductAttentionGrad(Primitive):
    """The backward of `ScaledDotProductAttention` on raw arrays: (g_query, g_key, g_value,
    g_scores). Used only when no graph is being recorded, hence not differentiable itself;
    `needs` flags which of the first three are wanted (g_scores is always computed)."""

    differentiable = False

    def infer(self, g_out, g_weights, query, key, value, weights, keep, scale, needs):
        batch = weights.shape[:-2]
        return tuple(AbstractValue(batch + x.shape[-2:] if need else (0,), weights.dtype,
                                   weights.device)
                     for x, need in zip((query, key, value), needs)) + (weights,)

    def forward(self, xp, g_out, g_weights, query, key, value, weights, keep, scale, needs):
        dropped = weights * keep if keep is not None else weights
        g_value = xp.matmul(xp.swapaxes(dropped, -1, -2), g_out) if needs[2] else None
        g_scores = xp.matmul(g_out, _transposed(xp, value))
        if keep is not None:
            g_scores *= keep
        if g_weights is not None:  # None: nothing used the weights
            g_scores += g_weights
        scale = g_scores.dtype.type(scale)
        rows = xp is np and g_scores.dtype in KERNEL_DTYPES and \
            g_scores.shape == weights.shape and g_scores.flags.c_contiguous
        if rows:
            # one row kernel; the scale goes in too unless g_scores is wanted (a bias's
            # gradient is the unscaled one)
            folded = scale if not needs[3] else g_scores.dtype.type(1.0)
            weight_rows = np.ascontiguousarray(weights).reshape((-1,) + weights.shape[-2:])
            _softmax_kernels.softmax_rows_backward(
                g_scores.reshape((-1,) + g_scores.shape[-2:]), weight_rows, folded)
            scale = None if not needs[3] else scale
        else:
            # Softmax backward in place: w * (g - <g, w>) along the key axis.
            g_scores -= (g_scores * weights).sum(axis=-1, keepdims=True)
            g_scores *= weights
        g_query = _scaled(xp.matmul(g_scores, key), scale) if needs[0] else None
        g_key = _scaled(xp.matmul(xp.swapaxes(g_scores, -1, -2), query), scale) \
            if needs[1] else None
        empty = xp.zeros((0,), weights.dtype)  # stands in for an output nobody asked for
        return tuple(empty if grad is None else grad.astype(weights.dtype, copy=False)
                     for grad in (g_query, g_key, g_value, g_scores))


def _scaled(array, scale):
    if scale is None:  # already folded into g_scores
        return array
    array *= scale
    return array


SCALED_DOT_PRODUCT_ATTENTION = ScaledDotProductAttention()
SCALED_DOT_PRODUCT_ATTENTION_GRAD = ScaledDotProductAttentionGrad()


def attention_with_weights(query: Tensor, key: Tensor, value: Tensor, bias=None, keep=None,
                           scale: float | None = None, causal: bool = False):
    """(output, weights) of attention with an additive float `bias` and a dropout `keep` mask
    (the building block of `scaled_dot_product_attention` and multi-head attention)."""
    for name, tensor in (("query", query), ("key", key), ("value", value)):
        if tensor.dtype.kind != "f":
            raise DTypeError(f"attention: {name} must be floating, got {tensor.dtype.name} "
                             f"at {user_frame()}")
        if tensor.ndim < 2:
            raise shape_error("attention", f"{name} needs at least 2 dimensions (..., L, E)",
                              tensor)
    if scale is None:
        scale = 1.0 / math.sqrt(query.shape[-1])
    if bias is not None:
        bias = cast(bias, query.dtype)
    return apply(SCALED_DOT_PRODUCT_ATTENTION, query, key, value, bias, keep,
                 scale=float(scale), causal=bool(causal))


def mask_to_bias(mask, dtype, allowed_when_true: bool, op: str) -> Tensor | None:
    """An additive float mask: a float mask is used as is; a bool mask becomes 0 / -inf.

    `allowed_when_true` picks the bool convention: True keeps a position in
    `scaled_dot_product_attention`, True blocks it in `MultiheadAttention` (as in PyTorch).
    """
    if mask is None:
        return None
    if not isinstance(mask, Tensor):
        mask = Tensor(np.asarray(mask))
    kind = mask.dtype.kind
    if kind == "b":
        blocked, allowed = (-math.inf, 0.0) if not allowed_when_true else (0.0, -math.inf)
        zero = Tensor(mask.device.xp.zeros((), dtype.np), mask.device)
        return where(mask, zero + blocked, zero + allowed)
    if kind != "f":
        raise DTypeError(f"{op}: a mask must be bool or floating, got {mask.dtype.name} at "
                         f"{user_frame()}")
    return cast(mask, dtype)


def dropout_keep_mask(shape: tuple, p: float, like: Tensor, generator=None) -> Tensor:
    """1/(1-p) where an element is kept, 0 where it is dropped (inverted dropout's mask)."""
    generator = generator or ember_random.default_generator
    if p >= 1.0:
        return Tensor(like.device.xp.zeros(shape, like._data.dtype), like.device)
    keep = generator.bernoulli(1.0 - p, size=shape, dtype=like.dtype, device=like.device)
    keep._data *= keep._data.dtype.type(1.0 / (1.0 - p))  # a fresh array: scaled in place
    return keep


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask=None,
                                 dropout_p: float = 0.0, is_causal: bool = False,
                                 scale: float | None = None, enable_gqa: bool = False,
                                 generator=None) -> Tensor:
    """softmax(query @ key^T * scale + mask) @ value, as `torch.nn.functional`'s.

    A bool `attn_mask` marks with True the positions that may be attended to; a float mask is
    added to the scores. `is_causal` masks every key after the query's position. `enable_gqa`
    lets key/value have fewer heads (dimension -3) than the query, shared by groups.

    >>> import ember
    >>> q = ember.ones((2, 3, 4)); kv = ember.ones((2, 5, 4))
    >>> ember.nn.functional.scaled_dot_product_attention(q, kv, kv, is_causal=True).shape
    (2, 3, 4)
    """
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"scaled_dot_product_attention: dropout_p must be in [0, 1], "
                         f"got {dropout_p}")
    if enable_gqa and key.ndim >= 3 and key.shape[-3] != query.shape[-3]:
        if query.shape[-3] % key.shape[-3]:
            raise shape_error("scaled_dot_product_attention", "with enable_gqa the query's "
                              "heads must be a multiple of the key's heads", query, key)
        groups = query.shape[-3] // key.shape[-3]
        key = repeat(key, groups, axis=key.ndim - 3)
        value = repeat(value, groups, axis=value.ndim - 3)
    bias = mask_to_bias(attn_mask, query.dtype, True, "scaled_dot_product_attention")
    keep = None
    if dropout_p > 0.0:
        shape = broadcast_shapes(query.shape[:-2], key.shape[:-2]) + (query.shape[-2],
                                                                      key.shape[-2])
        if bias is not None:
            shape = broadcast_shapes(shape, bias.shape)
        keep = dropout_keep_mask(shape, dropout_p, query, generator)
    return attention_with_weights(query, key, value, bias, keep, scale, is_causal)[0]


def _check_mask_shape(mask, expected: tuple, what: str):
    if mask is not None and tuple(mask.shape) != expected:
        raise shape_error("multi_head_attention", f"{what} must have shape {expected}", mask)


def _pad_key_column(bias):
    """One more key column that every query may attend to (for bias_k / the zero key)."""
    if bias is None:
        return None
    zeros = Tensor(bias.device.xp.zeros(bias.shape[:-1] + (1,), bias._data.dtype), bias.device)
    return concat([bias, zeros], axis=-1)


def _masks_as_bias(attn_mask, key_padding_mask, is_causal, shape: tuple, like: Tensor,
                   extra_keys: int):
    """The additive (N|1, H|1, L, S) bias from PyTorch's MHA masks (bool True = blocked) and
    whether the primitive should apply the causal mask itself."""
    batch, heads, length, source = shape
    dtype = like.dtype
    causal = is_causal and attn_mask is None
    if causal and extra_keys:  # extra key columns shift the diagonal: build the mask here
        xp = like.device.xp
        attn_mask = Tensor(xp.triu(xp.ones((length, source), bool), 1), like.device)
        causal = False
    bias = mask_to_bias(attn_mask, dtype, False, "multi_head_attention")
    if bias is not None:
        if bias.ndim == 2:
            _check_mask_shape(bias, (length, source), "a 2-d attn_mask")
        else:
            _check_mask_shape(bias, (batch * heads, length, source), "a 3-d attn_mask")
            bias = reshape(bias, (batch, heads, length, source))
    padding = mask_to_bias(key_padding_mask, dtype, False, "multi_head_attention")
    if padding is not None:
        _check_mask_shape(padding, (batch, source), "key_padding_mask")
        padding = reshape(padding, (batch, 1, 1, source))
        bias = padding if bias is None else bias + padding
    for _ in range(extra_keys):
        bias = _pad_key_column(bias)
    return bias, causal


def _rows_linear(x, weight, bias):
    """linear over the last axis as one 2-d GEMM: a batched (N, L, E) product would run N
    small GEMMs forward and, for the weight gradient, N products plus a sum over N."""
    out = linear(reshape(x, (-1, x.shape[-1])), weight, bias)
    return reshape(out, x.shape[:-1] + (weight.shape[0],))


def _heads(x, num_heads: int, order: tuple):
    """(A, B, E) -> (A, B, H, D) -> permuted by `order` to (N, H, L, D), a strided view
    that BLAS reads without a copy."""
    return permute_dims(reshape(x, x.shape[:2] + (num_heads, x.shape[2] // num_heads)), order)


def _project_heads(query, key, value, in_proj_weight, in_proj_bias, separate_weights,
                   num_heads: int, batch_first: bool):
    """q, k, v split into heads as (N, H, L|S, D); one GEMM when query, key and value are
    one tensor (self-attention), as PyTorch's packed in_proj_weight allows."""
    order = (0, 2, 1, 3) if batch_first else (1, 2, 0, 3)
    if separate_weights is None and query is key and key is value:
        packed = _rows_linear(query, in_proj_weight, in_proj_bias)      # (A, B, 3E)
        split_shape = packed.shape[:2] + (3, num_heads, packed.shape[2] // (3 * num_heads))
        # (A, B, 3, H, D) -> (3, N, H, L, D): the three projections become views.
        stacked = permute_dims(reshape(packed, split_shape), (2,) + tuple(
            axis if axis < 2 else axis + 1 for axis in order))
        return tuple(reshape(part, part.shape[1:]) for part in split(stacked, 3))
    weights = separate_weights if separate_weights is not None else split(in_proj_weight, 3)
    biases = split(in_proj_bias, 3) if in_proj_bias is not None else (None, None, None)
    return tuple(_heads(_rows_linear(x, w, b), num_heads, order)
                 for x, w, b in zip((query, key, value), weights, biases))


def multi_head_attention_forward(query, key, value, embed_dim_to_check: int, num_heads: int,
                                 in_proj_weight, in_proj_bias, bias_k, bias_v,
                                 add_zero_attn: bool, dropout_p: float, out_proj_weight,
                                 out_proj_bias, training: bool = True, key_padding_mask=None,
                                 need_weights: bool = True, attn_mask=None,
                                 use_separate_proj_weight: bool = False, q_proj_weight=None,
                                 k_proj_weight=None, v_proj_weight=None, static_k=None,
                                 static_v=None, average_attn_weights: bool = True,
                                 is_causal: bool = False, batch_first: bool = False):
    """Multi-head attention with PyTorch's arguments; inputs are (L, N, E), or (N, L, E) with
    `batch_first=True` (an ember extension that saves two transposes), or unbatched (L, E).

    Returns (output, weights): weights are (N, L, S) averaged over heads, (N, H, L, S) with
    `average_attn_weights=False`, or None when `need_weights` is False. Bool masks block the
    positions marked True; float masks are added to the scores. `is_causal` without an
    `attn_mask` applies the causal mask (PyTorch requires the mask as well).

    >>> import ember
    >>> x = ember.ones((5, 2, 8)); w = ember.ones((24, 8)) * 0.1; o = ember.eye(8)
    >>> out, weights = ember.nn.functional.multi_head_attention_forward(
    ...     x, x, x, 8, 2, w, None, None, None, False, 0.0, o, None)
    >>> out.shape, weights.shape
    ((5, 2, 8), (2, 5, 5))
    """
    if static_k is not None or static_v is not None:
        raise NotImplementedError("multi_head_attention_forward: static_k/static_v are not "
                                  "supported")
    unbatched = query.ndim == 2
    batch_axis, seq_axis = (0, 1) if batch_first else (1, 0)
    if unbatched:
        query, key, value = (expand_dims(x, axis=batch_axis) for x in (query, key, value))
        if key_padding_mask is not None:
            key_padding_mask = expand_dims(key_padding_mask, axis=0)
    if query.ndim != 3 or key.ndim != 3 or value.ndim != 3:
        layout = "(N, L, E)" if batch_first else "(L, N, E)"
        raise shape_error("multi_head_attention", f"expected query, key and value laid out as "
                          f"{layout} (or unbatched (L, E))", query, key, value)
    batch, length, embed_dim = query.shape[batch_axis], query.shape[seq_axis], query.shape[2]
    if embed_dim != embed_dim_to_check or embed_dim % num_heads:
        raise shape_error("multi_head_attention", f"expected embed_dim {embed_dim_to_check} "
                          f"divisible by num_heads={num_heads}", query)
    if (key.shape[batch_axis] != batch or value.shape[batch_axis] != batch
            or key.shape[seq_axis] != value.shape[seq_axis]):
        raise shape_error("multi_head_attention", "key and value must share the batch and "
                          "source length of the query's batch", query, key, value)
    source = key.shape[seq_axis]
    separate = ((q_proj_weight, k_proj_weight, v_proj_weight) if use_separate_proj_weight
                else None)
    q, k, v = _project_heads(query, key, value, in_proj_weight, in_proj_bias, separate,
                             num_heads, batch_first)
    head_dim = embed_dim // num_heads
    extra_keys = 0
    if bias_k is not None and bias_v is not None:  # a learned key/value for every sequence
        shape = (batch, num_heads, 1, head_dim)
        k = concat([k, broadcast_to(reshape(bias_k, (1, num_heads, 1, head_dim)), shape)],
                   axis=2)
        v = concat([v, broadcast_to(reshape(bias_v, (1, num_heads, 1, head_dim)), shape)],
                   axis=2)
        extra_keys += 1
    if add_zero_attn:
        zeros = Tensor(k.device.xp.zeros((batch, num_heads, 1, head_dim), k._data.dtype),
                       k.device)
        k, v = concat([k, zeros], axis=2), concat([v, zeros], axis=2)
        extra_keys += 1
    bias, causal = _masks_as_bias(attn_mask, key_padding_mask, is_causal,
                                  (batch, num_heads, length, source), q, extra_keys)
    keep = None
    if training and dropout_p > 0.0:
        keep = dropout_keep_mask((batch, num_heads, length, source + extra_keys), dropout_p, q)
    out, weights = attention_with_weights(q, k, v, bias, keep, None, causal)
    from_heads = (0, 2, 1, 3) if batch_first else (2, 0, 1, 3)
    out = reshape(permute_dims(out, from_heads), query.shape[:2] + (embed_dim,))
    out = _rows_linear(out, out_proj_weight, out_proj_bias)
    if unbatched:
        out = squeeze(out, axis=batch_axis)
    if not need_weights:
        return out, None
    if keep is not None:
        weights = weights * keep
    if average_attn_weights:
        weights = mean(weights, axis=1)
    return out, squeeze(weights, axis=0) if unbatched else weights
