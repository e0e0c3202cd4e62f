"""scaled_dot_product_attention, MultiheadAttention and the Transformer modules beyond the
layer table: NumPy references for the functional form, gradients (also of second order),
dropout, masks, initialization, layer cloning and errors."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest

import ember
from ember._core.errors import DTypeError, ShapeError
from ember.autograd import gradcheck
from ember.nn.functional import scaled_dot_product_attention as sdpa

try:
    import torch
except ImportError:
    torch = None


def np_sdpa(q, k, v, allowed=None, bias=None, causal=False, scale=None, keep=None):
    """softmax(q k^T * scale + mask) v; `allowed` is a bool mask (True = may attend)."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = q @ np.swapaxes(k, -1, -2) * scale
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf)
    if bias is not None:
        scores = scores + bias
    if causal:
        scores = np.where(np.tril(np.ones(scores.shape[-2:], bool)), scores, -np.inf)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    return (weights * keep if keep is not None else weights) @ v


def _draw(rng, *shapes, dtype="float64"):
    return [rng.standard_normal(shape).astype(dtype) for shape in shapes]


# ---- scaled_dot_product_attention -------------------------------------------------------------
SDPA_CASES = {
    "plain": {},
    "causal": {"causal": True},
    "bool_mask": {"allowed": "bool"},
    "float_mask": {"bias": "float"},
    "scale": {"scale": 0.3},
    "causal_and_mask": {"causal": True, "bias": "float"},
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", list(SDPA_CASES))
def test_sdpa_matches_numpy(case, dtype):
    rng = np.random.default_rng(0)
    q, k, v = _draw(rng, (2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 6, 5), dtype=dtype)
    options = dict(SDPA_CASES[case])
    kwargs = {"is_causal": options.get("causal", False), "scale": options.get("scale")}
    if options.get("allowed") == "bool":
        options["allowed"] = rng.random((4, 6)) > 0.3
        options["allowed"][:, 0] = True  # every query keeps one key
        kwargs["attn_mask"] = ember.asarray(options["allowed"])
    if options.get("bias") == "float":
        options["bias"] = rng.standard_normal((3, 4, 6)).astype(dtype)
        kwargs["attn_mask"] = ember.asarray(options["bias"])
    got = sdpa(ember.asarray(q), ember.asarray(k), ember.asarray(v), **kwargs)
    expected = np_sdpa(*(x.astype(np.float64) for x in (q, k, v)), **options)
    assert got.numpy().dtype == np.dtype(dtype)
    tolerance = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got.numpy(), expected, rtol=tolerance, atol=tolerance)


def test_sdpa_broadcasts_batch_dims_and_groups_query_heads():
    rng = np.random.default_rng(1)
    q, k, v = _draw(rng, (2, 4, 3, 8), (2, 2, 5, 8), (2, 2, 5, 8))
    got = sdpa(*map(ember.asarray, (q, k, v)), enable_gqa=True)
    # Query heads 0,1 share key/value head 0; heads 2,3 share head 1.
    expected = np_sdpa(q, np.repeat(k, 2, axis=1), np.repeat(v, 2, axis=1))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)
    shared = sdpa(*map(ember.asarray, (q, k[:, :1], v[:, :1])))  # broadcast over heads
    np.testing.assert_allclose(shared.numpy(), np_sdpa(q, k[:, :1], v[:, :1]), rtol=1e-12)


def test_sdpa_gradients_of_inputs_and_float_mask():
    rng = np.random.default_rng(2)
    tensors = [ember.asarray(x).requires_grad_(True)
               for x in _draw(rng, (2, 3, 4), (2, 5, 4), (2, 5, 3), (3, 5))]

    def attend(q, k, v, mask):
        return sdpa(q, k, v, attn_mask=mask, is_causal=True)

    assert gradcheck(attend, tensors)


def test_sdpa_second_order_gradients():
    rng = np.random.default_rng(3)
    q, k, v = (ember.asarray(x).requires_grad_(True)
               for x in _draw(rng, (2, 3, 4), (2, 5, 4), (2, 5, 3)))

    def gradient_norm(*inputs):
        # The numeric pass hands in plain tensors: make them leaves so grad() can run.
        q, k, v = (x if x.requires_grad else x.detach().requires_grad_(True) for x in inputs)
        out = sdpa(q, k, v)
        grads = ember.autograd.grad((out * out).sum(), [q, k, v], create_graph=True)
        return sum((g * g).sum() for g in grads)

    assert gradcheck(gradient_norm, [q, k, v])


def test_sdpa_fully_masked_row_gives_zeros_not_nan():
    rng = np.random.default_rng(4)
    q, k, v = map(ember.asarray, _draw(rng, (3, 4), (5, 4), (5, 2)))
    allowed = np.ones((3, 5), bool)
    allowed[1] = False
    out = sdpa(q, k, v, attn_mask=ember.asarray(allowed))
    assert np.all(out.numpy()[1] == 0.0)
    np.testing.assert_allclose(out.numpy()[[0, 2]], np_sdpa(q.numpy(), k.numpy(), v.numpy())[
        [0, 2]], rtol=1e-12)


def test_sdpa_dropout_uses_the_generator_mask():
    rng = np.random.default_rng(5)
    q, k, v = _draw(rng, (2, 3, 4), (2, 5, 4), (2, 5, 3))
    out = sdpa(*map(ember.asarray, (q, k, v)), dropout_p=0.4,
               generator=ember.random.Generator(7))
    kept = ember.random.Generator(7).bernoulli(0.6, size=(2, 3, 5), dtype=ember.float64)
    expected = np_sdpa(q, k, v, keep=kept.numpy() / 0.6)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12)
    assert not np.allclose(out.numpy(), np_sdpa(q, k, v))
    dropped = sdpa(*map(ember.asarray, (q, k, v)), dropout_p=1.0)
    assert np.all(dropped.numpy() == 0.0)


@pytest.mark.torch_reference
@pytest.mark.parametrize("mask", ["none", "bool", "float", "causal"])
def test_sdpa_agrees_with_pytorch(mask):
    rng = np.random.default_rng(6)
    q, k, v = _draw(rng, (2, 2, 4, 8), (2, 2, 4, 8), (2, 2, 4, 6))
    extra = {}
    if mask == "bool":
        extra["attn_mask"] = np.tril(np.ones((4, 4), bool))
    elif mask == "float":
        extra["attn_mask"] = rng.standard_normal((2, 1, 4, 4))
    elif mask == "causal":
        extra["is_causal"] = True
    mine = sdpa(*map(ember.asarray, (q, k, v)),
                **{name: ember.asarray(value) if isinstance(value, np.ndarray) else value
                   for name, value in extra.items()})
    theirs = torch.nn.functional.scaled_dot_product_attention(
        *map(torch.from_numpy, (q, k, v)),
        **{name: torch.from_numpy(value) if isinstance(value, np.ndarray) else value
           for name, value in extra.items()})
    np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-10, atol=1e-12)


def test_sdpa_errors_name_the_problem():
    q, k = ember.ones((2, 3, 4)), ember.ones((2, 5, 6))
    with pytest.raises(ShapeError, match="attention"):
        sdpa(q, k, k)
    with pytest.raises(DTypeError, match="mask"):
        sdpa(q, q, q, attn_mask=ember.ones((3, 3), dtype=ember.int32))
    with pytest.raises(DTypeError, match="query"):
        sdpa(ember.ones((2, 3), dtype=ember.int64), q, q)


# ---- MultiheadAttention -----------------------------------------------------------------------
def test_mha_initialization_follows_pytorch():
    ember.manual_seed(0)
    layer = ember.nn.MultiheadAttention(64, 4)
    assert np.all(layer.in_proj_bias.numpy() == 0) and np.all(layer.out_proj.bias.numpy() == 0)
    weight = layer.in_proj_weight.numpy()
    bound = math.sqrt(6.0 / (64 + 3 * 64))  # xavier_uniform over the packed (3E, E) matrix
    assert np.abs(weight).max() <= bound and np.abs(weight).max() > 0.9 * bound
    out_bound = 1.0 / math.sqrt(64)  # Linear's default for out_proj
    assert np.abs(layer.out_proj.weight.numpy()).max() <= out_bound
    separate = ember.nn.MultiheadAttention(8, 2, kdim=3, vdim=5)
    assert separate.in_proj_weight is None and separate.k_proj_weight.shape == (8, 3)


def test_mha_is_causal_without_mask_equals_explicit_causal_mask():
    ember.manual_seed(1)
    layer = ember.nn.MultiheadAttention(8, 2, batch_first=True).to("float64")
    x = ember.asarray(np.random.default_rng(0).standard_normal((2, 5, 8)))
    hinted, hinted_weights = layer(x, x, x, is_causal=True)
    bool_mask = ember.asarray(np.triu(np.ones((5, 5), bool), 1))
    float_mask = ember.nn.Transformer.generate_square_subsequent_mask(5, dtype=ember.float64)
    for mask in (bool_mask, float_mask):
        out, weights = layer(x, x, x, attn_mask=mask)
        np.testing.assert_allclose(hinted.numpy(), out.numpy(), rtol=1e-12)
        np.testing.assert_allclose(hinted_weights.numpy(), weights.numpy(), rtol=1e-12)
    assert np.all(np.triu(hinted_weights.numpy()[0], 1) == 0)


def test_mha_dropout_only_in_training():
    ember.manual_seed(2)
    layer = ember.nn.MultiheadAttention(8, 2, dropout=0.5)
    x = ember.randn(4, 3, 8)
    layer.eval()
    first, weights = layer(x, x, x, average_attn_weights=False)
    assert np.allclose(layer(x, x, x)[0].numpy(), first.numpy())
    np.testing.assert_allclose(weights.numpy().sum(-1), 1.0, rtol=1e-5)
    layer.train()
    out, dropped = layer(x, x, x, average_attn_weights=False)
    assert not np.allclose(out.numpy(), first.numpy())
    kept = dropped.numpy() != 0
    assert 0.2 < kept.mean() < 0.8  # about half dropped, the rest scaled by 1 / (1 - p)
    np.testing.assert_allclose(dropped.numpy()[kept], 2 * weights.numpy()[kept], rtol=1e-5)


def test_mha_mask_errors_name_the_module_and_shapes():
    layer = ember.nn.MultiheadAttention(8, 2)
    x = ember.ones((4, 3, 8))
    with pytest.raises(ShapeError, match=r"attn_mask.*\(4, 4\)"):
        layer(x, x, x, attn_mask=ember.ones((4, 5)))
    with pytest.raises(ShapeError, match=r"key_padding_mask.*\(3, 4\)"):
        layer(x, x, x, key_padding_mask=ember.ones((4, 3), dtype=ember.bool))
    with pytest.raises(ShapeError, match="embed_dim"):
        layer(ember.ones((4, 3, 6)), x, x)
    with pytest.raises(ValueError, match="multiple of num_heads"):
        ember.nn.MultiheadAttention(10, 3)
    encoder_layer = ember.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16)
    with pytest.raises(ShapeError, match="self_attn"):
        encoder_layer(x, src_mask=ember.ones((2, 2)))


# ---- Transformer modules ----------------------------------------------------------------------
def test_encoder_layers_are_independent_copies():
    layer = ember.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16)
    encoder = ember.nn.TransformerEncoder(layer, 3)
    copies = list(encoder.layers)
    for clone in copies:
        for (name, original), (_, cloned) in zip(layer.named_parameters(),
                                                 clone.named_parameters()):
            assert original is not cloned and np.array_equal(original.numpy(), cloned.numpy())
            assert not np.shares_memory(original.numpy(), cloned.numpy()), name
    with ember.no_grad():
        copies[0].linear1.weight[...] = 0.0
    assert not np.all(copies[1].linear1.weight.numpy() == 0)
    assert copies[1].activation is layer.activation
    assert len(list(encoder.parameters())) == 3 * len(list(layer.parameters()))


def test_deepcopy_copies_buffers_and_options():
    module = ember.nn.Sequential(ember.nn.Linear(2, 3), ember.nn.LayerNorm(3, eps=0.1))
    module.register_buffer("steps", ember.zeros(1))
    cloned = copy.deepcopy(module)
    assert cloned[1].eps == 0.1 and cloned.steps is not module.steps
    assert list(cloned.state_dict()) == list(module.state_dict())
    x = ember.ones((1, 2))
    assert np.array_equal(cloned(x).numpy(), module(x).numpy())


def test_transformer_init_and_square_subsequent_mask():
    ember.manual_seed(3)
    model = ember.nn.Transformer(16, 4, 1, 1, dim_feedforward=32)
    for name, parameter in model.named_parameters():
        if parameter.ndim > 1:
            fan_out, fan_in = parameter.shape
            assert np.abs(parameter.numpy()).max() <= math.sqrt(6.0 / (fan_in + fan_out)), name
    assert model.encoder.norm is not None and model.decoder.norm is not None
    mask = ember.nn.Transformer.generate_square_subsequent_mask(4).numpy()
    assert mask.dtype == np.float32
    assert np.array_equal(np.isinf(mask), np.triu(np.ones((4, 4), bool), 1))
    assert np.all(mask[np.tril_indices(4)] == 0)


def test_transformer_checks_batch_and_feature_sizes():
    model = ember.nn.Transformer(8, 2, 1, 1, dim_feedforward=16, batch_first=True)
    with pytest.raises(ValueError, match="batch size"):
        model(ember.ones((2, 3, 8)), ember.ones((3, 3, 8)))
    with pytest.raises(ValueError, match="d_model=8"):
        model(ember.ones((2, 3, 4)), ember.ones((2, 3, 4)))


def test_activation_option():
    def halve(x):
        return x * 0.5

    layer = ember.nn.TransformerEncoderLayer(8, 2, 16, activation=halve)
    assert layer.activation is halve
    with pytest.raises(ValueError, match="relu"):
        ember.nn.TransformerEncoderLayer(8, 2, 16, activation="tanh")


def test_encoder_layer_training_mode_applies_dropout():
    ember.manual_seed(4)
    layer = ember.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.5, batch_first=True)
    x = ember.randn(2, 5, 8)
    layer.eval()
    assert np.array_equal(layer(x).numpy(), layer(x).numpy())
    layer.train()
    assert not np.allclose(layer(x).numpy(), layer(x).numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("causal, with_bias", [(True, False), (False, True), (True, True)])
def test_row_kernels_match_the_numpy_formulas(dtype, causal, with_bias):
    """The Numba softmax rows (forward and backward, scale folded in or not) against the
    NumPy formulation in float64, with L != S and a row whose keys are all -inf."""
    from ember.nn.functional.attention import (
        SCALED_DOT_PRODUCT_ATTENTION,
        SCALED_DOT_PRODUCT_ATTENTION_GRAD,
    )

    rng = np.random.default_rng(11)
    q, k, v = (a.astype(dtype) for a in _draw(rng, (2, 3, 6, 4), (2, 3, 7, 4), (2, 3, 7, 5)))
    bias = None
    if with_bias:
        bias = rng.standard_normal((6, 7)).astype(dtype)
        bias[2] = -np.inf  # a row with every key masked: zero weights
    scale = 0.37
    out, weights = SCALED_DOT_PRODUCT_ATTENTION.forward(np, q, k, v, bias, None, scale=scale,
                                                        causal=causal)
    wide = [a.astype(np.float64) for a in (q, k, v)]
    allowed = np.tril(np.ones((6, 7), bool)) if causal else None
    expected = np_sdpa(*wide, allowed=allowed, bias=bias, scale=scale)
    if with_bias:
        expected[..., 2, :] = 0.0
    tol = dict(rtol=2e-5, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(out, expected, **tol)

    g_out = rng.standard_normal(out.shape).astype(dtype)
    g_weights = np.zeros_like(weights)
    needs = (True, True, True, with_bias)
    g_q, g_k, g_v, g_scores = SCALED_DOT_PRODUCT_ATTENTION_GRAD.forward(
        np, g_out, g_weights, q, k, v, weights, None, scale=scale, needs=needs)
    w = weights.astype(np.float64)
    g_w = g_out.astype(np.float64) @ np.swapaxes(wide[2], -1, -2)
    g_s = w * (g_w - (g_w * w).sum(-1, keepdims=True))
    np.testing.assert_allclose(g_v, np.swapaxes(w, -1, -2) @ g_out, **tol)
    np.testing.assert_allclose(g_q, g_s @ wide[1] * scale, **tol)
    np.testing.assert_allclose(g_k, np.swapaxes(g_s, -1, -2) @ wide[0] * scale, **tol)
    if with_bias:
        np.testing.assert_allclose(g_scores, g_s, **tol)


def test_gradients_through_the_weights_alone_and_the_output_alone():
    """The vjp takes a missing gradient for either output (no zeros are materialized)."""
    from ember.nn.functional.attention import attention_with_weights

    rng = np.random.default_rng(12)
    q, k, v = (ember.asarray(a).requires_grad_(True)
               for a in _draw(rng, (2, 3, 4), (2, 5, 4), (2, 5, 3)))
    probe = ember.asarray(rng.standard_normal((2, 3, 5)))
    assert gradcheck(lambda q, k, v: (attention_with_weights(q, k, v, causal=True)[1]
                                      * probe).sum(), [q, k, v])
    assert gradcheck(lambda q, k, v: (attention_with_weights(q, k, v)[0] ** 2).sum(),
                     [q, k, v])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_kernel_shifts_only_rows_whose_unshifted_sum_leaves_range(dtype):
    """The forward kernel exponentiates unshifted first; rows whose scores overflow (about
    +-3000 here) or all underflow (bias -1000) are redone shifted by their maximum, and
    match the shifted float64 formula like the ordinary rows."""
    from ember.nn.functional.attention import SCALED_DOT_PRODUCT_ATTENTION

    rng = np.random.default_rng(12)
    q, k, v = (a.astype(dtype) for a in _draw(rng, (2, 2, 5, 4), (2, 2, 5, 4), (2, 2, 5, 3)))
    q[0, 0] *= 1000.0  # overflowing rows (for float64 too: exp(3000) is inf)
    for causal, bias in ((True, None), (False, np.full((5, 5), -1000.0, dtype))):
        out, weights = SCALED_DOT_PRODUCT_ATTENTION.forward(np, q, k, v, bias, None,
                                                            scale=1.0, causal=causal)
        wide = [a.astype(np.float64) for a in (q, k, v)]
        allowed = np.tril(np.ones((5, 5), bool)) if causal else None
        expected = np_sdpa(*wide, allowed=allowed, bias=bias, scale=1.0)
        assert np.isfinite(out).all()
        tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10,
                                                                           atol=1e-12)
        np.testing.assert_allclose(out, expected, **tol)
        np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
