"""Convolution, pooling and upsampling beyond the tables: errors, lazy in_channels, default
initialisation, dtypes, the backend-generic code path and PyTorch's edge cases."""
from __future__ import annotations

import math

import numpy as np
import pytest

import ember
import ember.nn.functional as F
from ember._core.errors import EmberError, ShapeError
from ember.ops import _windows

try:
    import torch
except ImportError:  # PyTorch is an optional reference
    torch = None

needs_torch = pytest.mark.torch_reference


def _random(shape, seed=0, dtype=np.float32):
    return ember.asarray(np.random.default_rng(seed).standard_normal(shape).astype(dtype))


# ---- errors -------------------------------------------------------------------------------
def test_wrong_channel_count_names_op_shapes_and_expected_channels():
    model = ember.nn.Sequential(ember.nn.Conv2d(3, 4, 3))
    with pytest.raises(ShapeError) as caught:
        model(ember.ones((1, 5, 8, 8)))
    message = str(caught.value)
    assert "conv2d" in message and "expected input with 3 channels" in message
    assert "(1, 5, 8, 8)" in message and "(4, 3, 3, 3)" in message
    assert "has 5 channels" in message and "test_conv.py" in message
    assert "in module 0 (Conv2d)" in message


def test_grouped_and_transposed_channel_errors():
    with pytest.raises(ShapeError, match=r"expected input with 4 channels .*groups=2"):
        F.conv1d(ember.ones((1, 3, 8)), ember.ones((6, 2, 3)), groups=2)
    with pytest.raises(ShapeError, match=r"conv_transpose2d: expected input with 3 channels"):
        ember.nn.ConvTranspose2d(3, 4, 3)(ember.ones((1, 5, 8, 8)))
    with pytest.raises(ShapeError, match=r"conv3d: expected a 5-d input"):
        F.conv3d(ember.ones((8, 8)), ember.ones((1, 1, 1, 1, 1)))
    with pytest.raises(ShapeError, match="smaller than the dilated kernel"):
        F.conv2d(ember.ones((1, 1, 2, 2)), ember.ones((1, 1, 3, 3)))


@pytest.mark.parametrize("build, match", [
    (lambda: ember.nn.Conv2d(2, 2, 3, padding_mode="reflect"), "padding_mode='zeros'"),
    (lambda: ember.nn.Conv2d(2, 2, 3, stride=2, padding="same"), "not supported for strided"),
    (lambda: ember.nn.Conv2d(3, 4, 3, groups=2), "divisible by groups=2"),
    (lambda: ember.nn.Conv2d(2, 2, (3, 3, 3)), "kernel_size must be an int or a tuple of 2"),
    (lambda: ember.nn.ConvTranspose2d(2, 2, 3, padding="same"), "padding must be an int"),
])
def test_bad_layer_options_raise_at_construction(build, match):
    with pytest.raises(EmberError, match=match):
        build()


def test_bad_call_options_raise_ember_errors():
    x = ember.ones((1, 2, 6, 6))
    with pytest.raises(EmberError, match="output_padding"):
        F.conv_transpose2d(x, ember.ones((2, 2, 3, 3)), stride=2, output_padding=2)
    with pytest.raises(EmberError, match="at most half"):
        F.max_pool2d(x, 2, padding=2)
    with pytest.raises(EmberError, match="exactly one of size or scale_factor"):
        F.interpolate(x, size=3, scale_factor=2)
    with pytest.raises(EmberError, match="align_corners can only be set"):
        F.interpolate(x, scale_factor=2, align_corners=True)
    with pytest.raises(ShapeError, match="'bilinear' needs a 4-d input"):
        F.interpolate(ember.ones((1, 2, 6)), scale_factor=2, mode="bilinear")
    with pytest.raises(EmberError, match="mode 'bicubic' is not supported"):
        F.interpolate(x, scale_factor=2, mode="bicubic")
    with pytest.raises(ember.DTypeError, match="must share one dtype"):
        F.conv2d(x, ember.ones((2, 2, 3, 3), dtype=ember.float64))


# ---- lazy in_channels and initialisation --------------------------------------------------
def test_lazy_in_channels_are_inferred_on_first_call():
    layer = ember.nn.Conv2d(None, 4, 3, padding=1)
    assert layer.weight is None and "weight" not in layer.state_dict()
    y = layer(ember.ones((2, 5, 6, 6)))
    assert y.shape == (2, 4, 6, 6) and layer.in_channels == 5
    assert layer.weight.shape == (4, 5, 3, 3)
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    unbatched = ember.nn.Conv1d(None, 2, 3)
    assert unbatched(ember.ones((3, 7))).shape == (2, 5) and unbatched.weight.shape == (2, 3, 3)


@pytest.mark.parametrize("build, fan_in", [
    (lambda: ember.nn.Conv2d(6, 8, (3, 2), groups=2), 3 * 3 * 2),
    (lambda: ember.nn.Conv1d(4, 16, 5), 4 * 5),
    (lambda: ember.nn.ConvTranspose2d(8, 6, 3, groups=2), 3 * 3 * 3),
])
def test_default_init_matches_pytorch_bounds(build, fan_in):
    ember.manual_seed(0)
    layer = build()
    bound = 1 / math.sqrt(fan_in)  # kaiming_uniform(a=sqrt(5)) on the weight, same for bias
    weight, bias = layer.weight.numpy(), layer.bias.numpy()
    assert np.abs(weight).max() <= bound and np.abs(weight).max() > 0.8 * bound
    assert np.abs(bias).max() <= bound and weight.dtype == np.float32
    assert abs(weight.std() - bound / math.sqrt(3)) < 0.25 * bound


@needs_torch
def test_reprs_match_pytorch():
    for args, kwargs in [((3, 8, 3), dict(stride=2, padding=1)),
                         ((3, 3, 3), dict(padding="same", bias=False, groups=3)),
                         ((2, 4, (1, 3)), dict(dilation=2))]:
        assert repr(ember.nn.Conv2d(*args, **kwargs)) == repr(torch.nn.Conv2d(*args, **kwargs))
    assert repr(ember.nn.ConvTranspose2d(4, 2, 3, stride=2, output_padding=1)) == \
        repr(torch.nn.ConvTranspose2d(4, 2, 3, stride=2, output_padding=1))


# ---- dtypes and values --------------------------------------------------------------------
@pytest.mark.parametrize("run", [
    lambda x: ember.nn.Conv2d(3, 4, 3, padding=1)(x),
    lambda x: ember.nn.ConvTranspose2d(3, 2, 3, stride=2)(x),
    lambda x: F.max_pool2d(x, 2),
    lambda x: F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False),
    lambda x: F.adaptive_avg_pool2d(x, 3),
    lambda x: F.adaptive_max_pool2d(x, 3),
    lambda x: F.interpolate(x, scale_factor=1.5, mode="bilinear"),
])
def test_float32_stays_float32_forward_and_backward(run):
    x = _random((2, 3, 6, 6)).requires_grad_(True)
    y = run(x)
    y.sum().backward()
    assert y.dtype == ember.float32 and x.grad.dtype == ember.float32


def test_float16_runs_through_the_generic_path():
    x, w = _random((1, 2, 5, 5), dtype=np.float16), _random((3, 2, 3, 3), 1, np.float16)
    y = F.conv2d(x.requires_grad_(True), w.requires_grad_(True), padding=1)
    y.sum().backward()
    expected = F.conv2d(x.detach().to(ember.float64), w.detach().to(ember.float64), padding=1)
    assert y.dtype == ember.float16 and x.grad.dtype == ember.float16
    np.testing.assert_allclose(y.numpy().astype(np.float64), expected.numpy(), atol=0.05)


def test_max_pool_propagates_nan():
    x = ember.asarray(np.array([[[1.0, np.nan, 3.0, 0.0]]], dtype=np.float32))
    values = F.max_pool1d(x, 2).numpy().ravel()
    assert np.isnan(values[0]) and values[1] == 3.0


@pytest.mark.parametrize("kernel, stride", [((2, 2), (2, 2)), ((3, 2), (1, 2)), ((2, 3), (2, 1))])
def test_unpadded_max_pool_kernel_equals_the_general_kernel(kernel, stride):
    from ember.ops import _conv_kernels

    x = np.random.default_rng(5).standard_normal((2, 3, 1, 7, 8)).astype(np.float32)
    x[0, 1, 0, 2, 3] = np.nan
    x[1, 2, 0, 0, :3] = 1.5  # ties: the first maximum's index
    shape = (2, 3, 1, (7 - kernel[0]) // stride[0] + 1, (8 - kernel[1]) // stride[1] + 1)
    general = np.empty(shape, np.float32), np.empty(shape, np.int64)
    planes = np.empty(shape, np.float32), np.empty(shape, np.int64)
    _conv_kernels.max_pool(x, (1,) + kernel, (1,) + stride, (0, 0, 0), (1, 1, 1), *general)
    _conv_kernels.max_pool_planes(x.reshape(6, 7, 8), *kernel, *stride,
                                  planes[0].reshape(6, *shape[3:]),
                                  planes[1].reshape(6, *shape[3:]))
    np.testing.assert_array_equal(planes[0], general[0])  # NaN where the general has NaN
    np.testing.assert_array_equal(planes[1], general[1])
    assert np.isnan(planes[0]).any()


@needs_torch
def test_conv_transpose_output_size_picks_among_valid_sizes():
    ember.manual_seed(0)
    layer = ember.nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1)
    reference = torch.nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1).double()
    reference.load_state_dict({k: torch.from_numpy(v.numpy().astype(np.float64))
                               for k, v in layer.state_dict().items()})
    x = _random((1, 2, 4, 4))
    for size in [(7, 7), (8, 7), (1, 3, 8, 8)]:
        y = layer(x, output_size=size)
        expected = reference(torch.from_numpy(x.numpy().astype(np.float64)), output_size=size)
        np.testing.assert_allclose(y.numpy(), expected.detach().numpy(), atol=1e-5)
    with pytest.raises(EmberError, match="output_padding"):
        layer(x, output_size=(9, 9))


def test_unbatched_inputs_for_pooling_and_convolution():
    x = _random((3, 6, 6))
    batched = ember.asarray(x.numpy()[None])
    np.testing.assert_array_equal(F.max_pool2d(x, 2).numpy(),
                                  F.max_pool2d(batched, 2).numpy()[0])
    w = _random((4, 3, 3, 3), seed=1)
    np.testing.assert_allclose(F.conv2d(x, w).numpy(), F.conv2d(batched, w).numpy()[0])
    assert F.avg_pool1d(_random((2, 7)), 2).shape == (2, 3)


# ---- the backend-generic path (CuPy, float16/bfloat16) equals the Numba kernels ------------
def _all_grads(run, *shapes):
    tensors = [_random(shape, seed=i, dtype=np.float64).requires_grad_(True)
               for i, shape in enumerate(shapes)]
    outputs = run(*tensors)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    cotangents = [_random(o.shape, seed=9, dtype=np.float64) for o in outputs]
    grads = ember.autograd.grad(list(outputs), tensors, cotangents)
    return [o.numpy() for o in outputs] + [g.numpy() for g in grads]


@pytest.mark.parametrize("run, shapes", [
    (lambda x, w: F.conv2d(x, w, stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2),
     [(2, 4, 7, 6), (4, 2, 3, 2)]),
    (lambda x, w: F.conv1d(x, w, padding="same"), [(2, 3, 7), (2, 3, 4)]),
    (lambda x, w: F.conv3d(x, w, stride=2, padding=1), [(1, 2, 4, 5, 4), (2, 2, 2, 3, 2)]),
    (lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1),
     [(1, 2, 3, 4), (2, 3, 3, 3)]),
    (lambda x: F.max_pool2d(x, 3, stride=2, padding=1, dilation=(1, 2), ceil_mode=True),
     [(2, 2, 7, 8)]),
    (lambda x: F.max_pool3d(x, 2, stride=1), [(1, 2, 3, 4, 3)]),
    (lambda x: F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True), [(1, 2, 6, 7)]),
    (lambda x: F.adaptive_max_pool2d(x, (3, 4)), [(2, 2, 7, 5)]),
])
def test_generic_path_matches_numba_kernels(monkeypatch, run, shapes):
    kernels = _all_grads(run, *shapes)
    monkeypatch.setattr(_windows, "_use_kernels", lambda xp, *arrays: False)
    generic = _all_grads(run, *shapes)
    for a, b in zip(kernels, generic):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


# ---- upsampling details -------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("mode, align_corners, kwargs", [
    ("nearest", None, dict(size=(7, 3))),
    ("nearest-exact", None, dict(scale_factor=1.7)),
    ("nearest", None, dict(scale_factor=(0.5, 2.5))),
    ("bilinear", False, dict(scale_factor=1.7, recompute_scale_factor=True)),
    ("bilinear", True, dict(size=(1, 9))),
    ("area", None, dict(size=(3, 2))),
])
def test_interpolate_matches_pytorch(mode, align_corners, kwargs):
    x = _random((2, 3, 5, 4))
    got = F.interpolate(x, mode=mode, align_corners=align_corners, **kwargs)
    expected = torch.nn.functional.interpolate(torch.from_numpy(x.numpy()), mode=mode,
                                               align_corners=align_corners, **kwargs)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-6, atol=1e-6)


def test_integer_nearest_upscale_repeats_and_sums_back():
    x = ember.arange(6.0).reshape((1, 1, 2, 3)).requires_grad_(True)
    y = F.interpolate(x, scale_factor=(2, 3))
    np.testing.assert_array_equal(y.numpy()[0, 0], np.repeat(np.repeat(
        np.arange(6.0).reshape(2, 3), 2, axis=0), 3, axis=1))
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full((1, 1, 2, 3), 6.0))


@pytest.mark.parametrize("nd, scale, expected", [
    (1, 1.1, [0, 0, 1, 2, 3]), (3, 1.1, [0, 0, 1, 2, 3]), (2, 1.1, [0, 1, 2, 3, 4]),
    (1, 2.1, [0, 0, 0, 1, 1, 2, 2, 3, 3, 4]), (2, 2.1, [0, 0, 1, 1, 2, 2, 3, 3, 4, 4])])
def test_nearest_scale_factor_follows_pytorch_per_rank(nd, scale, expected):
    # PyTorch's 2-d nearest kernel copies or doubles an axis whatever the factor; its 1-d and
    # 3-d kernels sample at floor(i / factor). Values from torch 2.13.
    x = ember.arange(5.0).reshape((1, 1) + (1,) * (nd - 1) + (5,))
    out = F.interpolate(x, scale_factor=scale).numpy().reshape(-1)[-len(expected):]
    np.testing.assert_array_equal(out, expected)


def test_linear_interpolation_copies_an_axis_that_keeps_its_size():
    x = ember.arange(5.0).reshape(1, 1, 5)
    np.testing.assert_allclose(F.interpolate(x, scale_factor=1.1, mode="linear").numpy(),
                               x.numpy())
