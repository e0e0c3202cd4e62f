"""Layer-table rows for attention and Transformer layers (ember/nn/layers/attention.py,
transformer.py). The NumPy references below are written from the papers' formulas and
PyTorch's documented conventions (bool masks block where True, (L, N, E) layout unless
batch_first), independent of the implementation. Rows run in eval mode, so the layers'
dropout (0.1 by default) is the identity."""
from __future__ import annotations

import functools
import math
import warnings

import numpy as np

import ember
from tests.nn.layertable import LayerSpec

_erf = np.vectorize(math.erf)  # the exact error function, elementwise (no SciPy)

try:
    import torch
except ImportError:
    torch = None

E, HEADS, L, S, N = 8, 2, 4, 5, 3  # embed dim, heads, target/source length, batch


# ---- NumPy references -----------------------------------------------------------------------
def _softmax(x):
    shifted = np.exp(x - x.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _blocked_as_bias(mask):
    """A PyTorch MHA mask as an additive bias: bool True blocks (-inf), floats are added."""
    return np.where(mask, -np.inf, 0.0) if mask.dtype == bool else mask


def np_mha(p, query, key, value, heads=HEADS, prefix="", batch_first=False, attn_mask=None,
           key_padding_mask=None, causal=False, need_weights=True, average=True,
           zero_attn=False):
    """Multi-head attention of Vaswani et al. with PyTorch's parameter names."""
    unbatched = query.ndim == 2
    if unbatched:
        query, key, value = (x[:, None] if not batch_first else x[None]
                             for x in (query, key, value))
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask[None]
    if not batch_first:  # work in (N, L, E)
        query, key, value = (x.swapaxes(0, 1) for x in (query, key, value))
    embed = query.shape[-1]
    if prefix + "in_proj_weight" in p:
        w_q, w_k, w_v = np.split(p[prefix + "in_proj_weight"], 3)
    else:
        w_q, w_k, w_v = (p[prefix + f"{name}_proj_weight"] for name in "qkv")
    b_q, b_k, b_v = (np.split(p[prefix + "in_proj_bias"], 3) if prefix + "in_proj_bias" in p
                     else (0.0, 0.0, 0.0))
    q, k, v = query @ w_q.T + b_q, key @ w_k.T + b_k, value @ w_v.T + b_v
    batch, length, source = q.shape[0], q.shape[1], k.shape[1]
    if prefix + "bias_k" in p:  # one learned key/value appended to every sequence
        k = np.concatenate([k, np.broadcast_to(p[prefix + "bias_k"], (batch, 1, embed))], 1)
        v = np.concatenate([v, np.broadcast_to(p[prefix + "bias_v"], (batch, 1, embed))], 1)
    head = embed // heads

    def split(x):
        return x.reshape(batch, x.shape[1], heads, head).transpose(0, 2, 1, 3)

    q, k, v = split(q), split(k), split(v)
    if zero_attn:  # one all-zero key/value appended per head
        k, v = (np.concatenate([x, np.zeros(x.shape[:2] + (1, head))], 2) for x in (k, v))
    scores = q @ k.swapaxes(-1, -2) / math.sqrt(head)
    bias = np.zeros((batch, heads, length, source))
    if attn_mask is not None:
        mask = _blocked_as_bias(attn_mask)
        bias = bias + (mask if mask.ndim == 2 else mask.reshape(batch, heads, length, source))
    if key_padding_mask is not None:
        bias = bias + _blocked_as_bias(key_padding_mask)[:, None, None, :]
    if causal:
        bias = bias + np.triu(np.full((length, source), -np.inf), 1)
    extra = k.shape[2] - source
    bias = np.concatenate([bias, np.zeros(bias.shape[:-1] + (extra,))], -1)
    weights = _softmax(scores + bias)
    out = (weights @ v).transpose(0, 2, 1, 3).reshape(batch, length, embed)
    out = out @ p[prefix + "out_proj.weight"].T + p.get(prefix + "out_proj.bias", 0.0)
    if not batch_first:
        out = out.swapaxes(0, 1)
    weights = weights.mean(axis=1) if average else weights
    if unbatched:
        out, weights = out.reshape(out.shape[0] * out.shape[1], embed), weights[0]
    return (out, weights) if need_weights else out


def np_layer_norm(x, weight, bias, eps=1e-5):
    centered = x - x.mean(axis=-1, keepdims=True)
    return centered / np.sqrt((centered ** 2).mean(axis=-1, keepdims=True) + eps) * weight + bias


_ACTIVATION = {"relu": lambda x: np.maximum(x, 0.0),
               "gelu": lambda x: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))}


def _feed_forward(p, prefix, x, activation):
    hidden = _ACTIVATION[activation](x @ p[prefix + "linear1.weight"].T
                                     + p[prefix + "linear1.bias"])
    return hidden @ p[prefix + "linear2.weight"].T + p[prefix + "linear2.bias"]


def _norm(p, name, x):
    return np_layer_norm(x, p[name + ".weight"], p[name + ".bias"])


def np_encoder_layer(p, x, prefix="", activation="relu", norm_first=False, batch_first=False,
                     mask=None, padding=None):
    def attend(y):
        return np_mha(p, y, y, y, prefix=prefix + "self_attn.", batch_first=batch_first,
                      attn_mask=mask, key_padding_mask=padding, need_weights=False)

    if norm_first:
        x = x + attend(_norm(p, prefix + "norm1", x))
        return x + _feed_forward(p, prefix, _norm(p, prefix + "norm2", x), activation)
    x = _norm(p, prefix + "norm1", x + attend(x))
    return _norm(p, prefix + "norm2", x + _feed_forward(p, prefix, x, activation))


def np_decoder_layer(p, x, memory, prefix="", activation="relu", norm_first=False,
                     batch_first=False, tgt_mask=None, memory_padding=None):
    def self_attend(y):
        return np_mha(p, y, y, y, prefix=prefix + "self_attn.", batch_first=batch_first,
                      attn_mask=tgt_mask, need_weights=False)

    def cross_attend(y):
        return np_mha(p, y, memory, memory, prefix=prefix + "multihead_attn.",
                      batch_first=batch_first, key_padding_mask=memory_padding,
                      need_weights=False)

    if norm_first:
        x = x + self_attend(_norm(p, prefix + "norm1", x))
        x = x + cross_attend(_norm(p, prefix + "norm2", x))
        return x + _feed_forward(p, prefix, _norm(p, prefix + "norm3", x), activation)
    x = _norm(p, prefix + "norm1", x + self_attend(x))
    x = _norm(p, prefix + "norm2", x + cross_attend(x))
    return _norm(p, prefix + "norm3", x + _feed_forward(p, prefix, x, activation))


# ---- parameter names and input makers -------------------------------------------------------
def mha_params(prefix="", embed=E, kdim=None, vdim=None, bias=True, bias_kv=False):
    names = {}
    if kdim is None and vdim is None:
        names[prefix + "in_proj_weight"] = (3 * embed, embed)
    else:
        names[prefix + "q_proj_weight"] = (embed, embed)
        names[prefix + "k_proj_weight"] = (embed, kdim or embed)
        names[prefix + "v_proj_weight"] = (embed, vdim or embed)
    if bias:
        names[prefix + "in_proj_bias"] = (3 * embed,)
    if bias_kv:
        names[prefix + "bias_k"] = (1, 1, embed)
        names[prefix + "bias_v"] = (1, 1, embed)
    names[prefix + "out_proj.weight"] = (embed, embed)
    if bias:
        names[prefix + "out_proj.bias"] = (embed,)
    return names


def layer_params(prefix, embed, feedforward, decoder=False):
    names = mha_params(prefix + "self_attn.", embed)
    if decoder:
        names.update(mha_params(prefix + "multihead_attn.", embed))
    names.update({prefix + "linear1.weight": (feedforward, embed),
                  prefix + "linear1.bias": (feedforward,),
                  prefix + "linear2.weight": (embed, feedforward),
                  prefix + "linear2.bias": (embed,)})
    for norm in ("norm1", "norm2", "norm3") if decoder else ("norm1", "norm2"):
        names.update({prefix + f"{norm}.weight": (embed,), prefix + f"{norm}.bias": (embed,)})
    return names


def _uniform(*shapes):
    def make(rng, dtype):
        return [rng.uniform(-1.0, 1.0, size=shape).astype(dtype) for shape in shapes]

    return make


def _with(make, *extras):
    """Inputs from `make` plus fixed extra inputs (masks), each made by fn(rng, dtype)."""
    def combined(rng, dtype):
        return make(rng, dtype) + [extra(rng, dtype) for extra in extras]

    return combined


def _causal_bool(length, source):
    return lambda rng, dtype: np.triu(np.ones((length, source), bool), 1)


def _causal_float(length):
    return lambda rng, dtype: np.triu(np.full((length, length), -np.inf), 1).astype(dtype)


def _padding(rows):
    return lambda rng, dtype: np.array(rows, bool)


PADDING = [[0, 0, 0, 1, 1], [0, 0, 0, 0, 0], [0, 1, 0, 0, 1]]  # (N, S), True = padded


def _slow_torch(call):
    """Run the torch layer with its fast paths off: in eval mode PyTorch otherwise switches
    to fused kernels (and nested tensors for padded batches) whose outputs at padded
    positions differ by design; its documented math path is the reference."""
    def run(module, *inputs):
        previous = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)
        try:
            return call(module, *inputs)
        finally:
            torch.backends.mha.set_fastpath_enabled(previous)

    return run


def _positional(build, call):
    """The layer built so that `module(*inputs)` means `call(module, *inputs)`: every check of
    the table, the gradient check included, then passes the masks and options of the row."""
    def built():
        module = build()
        forward = functools.partial(type(module).forward, module)
        object.__setattr__(module, "forward", lambda *inputs: call(forward, *inputs))
        return module

    return built


def _row(name, build, ref, make, params, call, torch_build=None, torch_call=None, **options):
    return LayerSpec(name, _positional(build, call), ref, (), params, make=make,
                     torch=torch_build,
                     torch_call=_slow_torch(torch_call or call) if torch_build else None,
                     **options)


def _mha(**options):
    return lambda: ember.nn.MultiheadAttention(E, HEADS, **options)


def _torch_mha(**options):
    return lambda: torch.nn.MultiheadAttention(E, HEADS, **options)


def _encoder_layer(**options):
    return lambda: ember.nn.TransformerEncoderLayer(E, HEADS, 12, **options)


def _torch_encoder_layer(**options):
    return lambda: torch.nn.TransformerEncoderLayer(E, HEADS, 12, **options)


def _decoder_layer(**options):
    return lambda: ember.nn.TransformerDecoderLayer(E, HEADS, 12, **options)


def _torch_decoder_layer(**options):
    return lambda: torch.nn.TransformerDecoderLayer(E, HEADS, 12, **options)


def _encoder_stack(nn):
    return lambda: nn.TransformerEncoder(nn.TransformerEncoderLayer(E, HEADS, 12), 2,
                                         nn.LayerNorm(E), enable_nested_tensor=False)


def _small_transformer(nn):
    def build():
        with warnings.catch_warnings():  # PyTorch notes it skips nested tensors (seq-first)
            warnings.simplefilter("ignore", UserWarning)
            return nn.Transformer(4, 2, 1, 1, dim_feedforward=6)

    return build


def _transformer_ref(p, src, tgt, tgt_mask):
    memory = np_encoder_layer(p, src, prefix="encoder.layers.0.")
    memory = _norm(p, "encoder.norm", memory)
    out = np_decoder_layer(p, tgt, memory, prefix="decoder.layers.0.", tgt_mask=tgt_mask)
    return _norm(p, "decoder.norm", out)


def _transformer_params():
    names = layer_params("encoder.layers.0.", 4, 6)
    names.update({"encoder.norm.weight": (4,), "encoder.norm.bias": (4,)})
    names.update(layer_params("decoder.layers.0.", 4, 6, decoder=True))
    names.update({"decoder.norm.weight": (4,), "decoder.norm.bias": (4,)})
    return names


def _torch_causal(length):
    return torch.triu(torch.ones(length, length, dtype=torch.bool), 1)


_STACK_PARAMS = {**layer_params("layers.0.", E, 12), **layer_params("layers.1.", E, 12),
                 "norm.weight": (E,), "norm.bias": (E,)}


ROWS = [
    # ---- MultiheadAttention ----
    _row("mha_self_attention", _mha(), lambda p, x: np_mha(p, x, x, x),
         _uniform((L, N, E)), mha_params(), lambda m, x: m(x, x, x), _torch_mha()),
    _row("mha_kdim_vdim_batch_first", _mha(kdim=3, vdim=5, batch_first=True),
         lambda p, q, k, v: np_mha(p, q, k, v, batch_first=True),
         _uniform((N, L, E), (N, S, 3), (N, S, 5)), mha_params(kdim=3, vdim=5),
         lambda m, q, k, v: m(q, k, v), _torch_mha(kdim=3, vdim=5, batch_first=True)),
    _row("mha_is_causal_batch_first", _mha(batch_first=True),
         lambda p, x: np_mha(p, x, x, x, batch_first=True, causal=True),
         _uniform((N, L, E)), mha_params(), lambda m, x: m(x, x, x, is_causal=True),
         _torch_mha(batch_first=True),  # PyTorch wants the mask along with the hint
         torch_call=lambda m, x: m(x, x, x, attn_mask=_torch_causal(L), is_causal=True)),
    _row("mha_causal_bool_attn_mask", _mha(),
         lambda p, x, mask: np_mha(p, x, x, x, attn_mask=mask),
         _with(_uniform((L, N, E)), _causal_bool(L, L)), mha_params(),
         lambda m, x, mask: m(x, x, x, attn_mask=mask), _torch_mha()),
    _row("mha_key_padding_mask", _mha(),
         lambda p, q, kv, mask: np_mha(p, q, kv, kv, key_padding_mask=mask),
         _with(_uniform((L, N, E), (S, N, E)), _padding(PADDING)), mha_params(),
         lambda m, q, kv, mask: m(q, kv, kv, key_padding_mask=mask), _torch_mha()),
    _row("mha_float_masks_3d", _mha(),
         lambda p, q, k, v, mask, padding: np_mha(p, q, k, v, attn_mask=mask,
                                                  key_padding_mask=padding),
         _uniform((L, N, E), (S, N, E), (S, N, E), (N * HEADS, L, S), (N, S)), mha_params(),
         lambda m, q, k, v, mask, padding: m(q, k, v, attn_mask=mask,
                                             key_padding_mask=padding), _torch_mha()),
    _row("mha_weights_per_head", _mha(),
         lambda p, q, k, v, mask: np_mha(p, q, k, v, attn_mask=mask, average=False),
         _uniform((L, N, E), (S, N, E), (S, N, E), (L, S)), mha_params(),
         lambda m, q, k, v, mask: m(q, k, v, attn_mask=mask, average_attn_weights=False),
         _torch_mha()),
    _row("mha_need_weights_false", _mha(batch_first=True),
         lambda p, x: np_mha(p, x, x, x, batch_first=True, need_weights=False),
         _uniform((N, L, E)), mha_params(), lambda m, x: m(x, x, x, need_weights=False),
         _torch_mha(batch_first=True)),
    _row("mha_unbatched", _mha(),
         lambda p, q, kv, mask: np_mha(p, q, kv, kv, key_padding_mask=mask),
         _with(_uniform((L, E), (S, E)), _padding(PADDING[0])), mha_params(),
         lambda m, q, kv, mask: m(q, kv, kv, key_padding_mask=mask), _torch_mha()),
    _row("mha_bias_kv_zero_attn_no_bias", _mha(bias=False, add_bias_kv=True,
                                               add_zero_attn=True),
         lambda p, q, kv, mask: np_mha(p, q, kv, kv, key_padding_mask=mask, zero_attn=True),
         _with(_uniform((L, N, E), (S, N, E)), _padding(PADDING)),
         mha_params(bias=False, bias_kv=True),
         lambda m, q, kv, mask: m(q, kv, kv, key_padding_mask=mask),
         _torch_mha(bias=False, add_bias_kv=True, add_zero_attn=True)),
    # ---- Transformer layers (eval mode: dropout 0.1 is the identity) ----
    _row("encoder_layer_relu_post_norm", _encoder_layer(),
         lambda p, x, padding: np_encoder_layer(p, x, padding=padding),
         _with(_uniform((S, N, E)), _padding(PADDING)), layer_params("", E, 12),
         lambda m, x, padding: m(x, src_key_padding_mask=padding), _torch_encoder_layer()),
    _row("encoder_layer_gelu_norm_first_batch_first",
         _encoder_layer(activation="gelu", norm_first=True, batch_first=True),
         lambda p, x, mask: np_encoder_layer(p, x, activation="gelu", norm_first=True,
                                             batch_first=True, mask=mask),
         _with(_uniform((N, L, E)), _causal_float(L)), layer_params("", E, 12),
         lambda m, x, mask: m(x, src_mask=mask),
         _torch_encoder_layer(activation="gelu", norm_first=True, batch_first=True),
         grad=(0,)),
    _row("decoder_layer_relu_post_norm", _decoder_layer(),
         lambda p, t, mem, mask, padding: np_decoder_layer(p, t, mem, tgt_mask=mask,
                                                           memory_padding=padding),
         _with(_uniform((L, N, E), (S, N, E)), _causal_float(L), _padding(PADDING)),
         layer_params("", E, 12, decoder=True),
         lambda m, t, mem, mask, padding: m(t, mem, tgt_mask=mask,
                                            memory_key_padding_mask=padding),
         _torch_decoder_layer(), grad=(0, 1)),
    _row("decoder_layer_gelu_norm_first_batch_first",
         _decoder_layer(activation="gelu", norm_first=True, batch_first=True),
         lambda p, t, mem, mask: np_decoder_layer(p, t, mem, activation="gelu",
                                                  norm_first=True, batch_first=True,
                                                  tgt_mask=mask),
         _with(_uniform((N, L, E), (N, S, E)), _causal_bool(L, L)),
         layer_params("", E, 12, decoder=True),
         lambda m, t, mem, mask: m(t, mem, tgt_mask=mask),
         _torch_decoder_layer(activation="gelu", norm_first=True, batch_first=True)),
    _row("encoder_two_layers_with_norm", _encoder_stack(ember.nn),
         lambda p, x, padding: _norm(p, "norm", np_encoder_layer(
             p, np_encoder_layer(p, x, "layers.0.", padding=padding), "layers.1.",
             padding=padding)),
         _with(_uniform((S, N, E)), _padding(PADDING)), _STACK_PARAMS,
         lambda m, x, padding: m(x, src_key_padding_mask=padding),
         _encoder_stack(torch.nn) if torch else None),
    _row("transformer_small", _small_transformer(ember.nn), _transformer_ref,
         _with(_uniform((S, N, 4), (L, N, 4)), _causal_float(L)), _transformer_params(),
         lambda m, src, tgt, mask: m(src, tgt, tgt_mask=mask),
         _small_transformer(torch.nn) if torch else None, grad=(0, 1)),
]
