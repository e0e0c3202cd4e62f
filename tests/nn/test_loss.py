"""Losses (ember/nn/functional/loss*.py) against NumPy references written here, float64
gradient checks, PyTorch agreement when torch is installed, and the strict-shape errors.

Each case calls the loss through `F`, which is `ember.nn.functional` or, for the optional
cross-check, `torch.nn.functional`: the two share names and keywords, so one lambda serves both.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

import ember
import ember.nn.functional as EF
from ember._core.errors import DTypeError, EmberError, ShapeError
from ember.autograd import gradcheck

try:
    import torch
    import torch.nn.functional as TF
except ImportError:  # PyTorch is an optional reference
    torch = TF = None

REDUCTIONS = ("none", "mean", "sum")
N, C = 6, 4


@dataclass
class LossCase:
    name: str
    fn: object          # fn(F, *tensors) with F = ember.nn.functional or torch.nn.functional
    ref: object         # ref(*float64/int arrays) -> NumPy array
    make: object        # make(rng) -> list of arrays (float64 for floating inputs)
    grad: tuple = (0,)  # input positions to gradient-check


# ---- NumPy references -------------------------------------------------------------------------
def _reduce(loss, reduction):
    return {"none": loss, "mean": np.mean(loss), "sum": np.sum(loss)}[reduction]


def _log_softmax(x, axis):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def _class_weight_view(weight, ndim):
    return weight.reshape((1, -1) + (1,) * (ndim - 2))


def _nll(log_probs, target, weight, ignore_index, reduction, smoothing=0.0):
    """Per-target -w[t] log p[t]; with smoothing, PyTorch's (1-eps) nll + eps/C sum_c -w_c log p_c.
    'mean' divides by the summed weights of the kept targets."""
    classes = log_probs.shape[1]
    flat = np.moveaxis(log_probs, 1, -1).reshape(-1, classes)
    targets = target.reshape(-1)
    kept = targets != ignore_index
    safe = np.where(kept, targets, 0)
    class_weight = weight if weight is not None else np.ones(classes)
    target_weight = class_weight[safe] * kept
    loss = -flat[np.arange(len(targets)), safe] * target_weight
    if smoothing:
        smooth = -(flat * class_weight).sum(axis=1) * kept
        loss = (1 - smoothing) * loss + smoothing / classes * smooth
    loss = loss.reshape(target.shape)
    if reduction == "mean":
        return loss.sum() / target_weight.sum()
    return _reduce(loss, reduction)


def _cross_entropy_probs(x, q, weight, reduction, smoothing=0.0):
    classes = x.shape[1]
    q = q * (1 - smoothing) + smoothing / classes
    weighted = _log_softmax(x, 1) * q
    if weight is not None:
        weighted = weighted * _class_weight_view(weight, x.ndim)
    loss = -weighted.sum(axis=1)
    return loss.sum() / loss.size if reduction == "mean" else _reduce(loss, reduction)


def _bce(p, t, w, reduction):
    loss = -(t * np.maximum(np.log(p), -100) + (1 - t) * np.maximum(np.log(1 - p), -100))
    return _reduce(loss * (1.0 if w is None else w), reduction)


def _bce_logits(x, t, w, pos_weight, reduction):
    probability = 1 / (1 + np.exp(-x))
    positive = 1.0 if pos_weight is None else pos_weight
    loss = -(positive * t * np.log(probability) + (1 - t) * np.log(1 - probability))
    return _reduce(loss * (1.0 if w is None else w), reduction)


def _kl(log_p, target, reduction, log_target):
    q = np.exp(target) if log_target else target
    loss = q * ((target if log_target else np.log(q)) - log_p)
    if reduction == "batchmean":
        return loss.sum() / log_p.shape[0]
    return _reduce(loss, reduction)


def _smooth_l1(x, t, reduction, beta):
    d = np.abs(x - t)
    return _reduce(np.where(d < beta, 0.5 * d ** 2 / beta, d - 0.5 * beta), reduction)


def _huber(x, t, reduction, delta):
    d = np.abs(x - t)
    return _reduce(np.where(d < delta, 0.5 * d ** 2, delta * (d - 0.5 * delta)), reduction)


def _cosine_embedding(a, b, y, margin, reduction):
    cosine = (a * b).sum(-1) / np.sqrt((a * a).sum(-1) * (b * b).sum(-1))
    return _reduce(np.where(y == 1, 1 - cosine, np.maximum(cosine - margin, 0)), reduction)


def _triplet(a, p, n, margin, norm, swap, reduction, eps=1e-6):
    def distance(u, v):
        return (np.abs(u - v + eps) ** norm).sum(-1) ** (1 / norm)

    negative = distance(a, n)
    if swap:
        negative = np.minimum(negative, distance(p, n))
    return _reduce(np.maximum(distance(a, p) - negative + margin, 0), reduction)


# ---- input makers -----------------------------------------------------------------------------
def _logits_targets(shape=(N, C), ignore=True):
    def make(rng):
        x = rng.standard_normal(shape)
        target = rng.integers(0, shape[1], size=shape[:1] + shape[2:])
        if ignore:
            target.reshape(-1)[1] = -100
        return [x, target, rng.uniform(0.5, 2.0, shape[1])]

    return make


def _logits_probs(shape):
    def make(rng):
        probabilities = np.exp(_log_softmax(rng.standard_normal(shape), 1))
        return [rng.standard_normal(shape), probabilities, rng.uniform(0.5, 2.0, shape[1])]

    return make


def _pairs(rng):
    return [rng.standard_normal((N, C)), rng.standard_normal((N, C)),
            rng.uniform(0.5, 2.0, (C,))]


def _probabilities(rng):
    return [rng.uniform(0.05, 0.95, (N, C)), rng.uniform(0, 1, (N, C)),
            rng.uniform(0.5, 2.0, (C,)), rng.uniform(0.5, 3.0, (C,))]


def _distributions(rng):
    log_p = _log_softmax(rng.standard_normal((N, C)), 1)
    return [log_p, rng.dirichlet(np.ones(C), N), _log_softmax(rng.standard_normal((N, C)), 1)]


def _embedding_pairs(rng):
    return [rng.standard_normal((N, C)), rng.standard_normal((N, C)),
            np.where(rng.random(N) < 0.5, 1, -1)]


def _ranking(rng):
    return [rng.standard_normal(N), rng.standard_normal(N),
            np.where(rng.random(N) < 0.5, 1.0, -1.0)]


def _triplets(rng):
    return [rng.standard_normal((N, C)) for _ in range(3)]


# ---- the table --------------------------------------------------------------------------------
def _cases():
    cases = []
    for r in REDUCTIONS:
        kd = (3, C, 2, 2)
        cases += [
            LossCase(f"cross_entropy-{r}", lambda F, x, t, w, r=r: F.cross_entropy(
                x, t, reduction=r), lambda x, t, w, r=r: _nll(_log_softmax(x, 1), t, None,
                                                               -100, r), _logits_targets()),
            LossCase(f"cross_entropy_kd_all_kept-{r}", lambda F, x, t, w, r=r: F.cross_entropy(
                x, t, reduction=r), lambda x, t, w, r=r: _nll(_log_softmax(x, 1), t, None,
                                                               -100, r),
                _logits_targets(kd, ignore=False)),
            LossCase(f"cross_entropy_weight-{r}", lambda F, x, t, w, r=r: F.cross_entropy(
                x, t, w, reduction=r), lambda x, t, w, r=r: _nll(_log_softmax(x, 1), t, w,
                                                                  -100, r), _logits_targets()),
            LossCase(f"cross_entropy_ignore3_smooth-{r}", lambda F, x, t, w, r=r:
                     F.cross_entropy(x, t, w, ignore_index=3, reduction=r,
                                     label_smoothing=0.2),
                     lambda x, t, w, r=r: _nll(_log_softmax(x, 1), t, w, 3, r, 0.2),
                     _logits_targets(ignore=False)),
            LossCase(f"cross_entropy_smooth-{r}", lambda F, x, t, w, r=r: F.cross_entropy(
                x, t, reduction=r, label_smoothing=0.1),
                lambda x, t, w, r=r: _nll(_log_softmax(x, 1), t, None, -100, r, 0.1),
                _logits_targets()),
            LossCase(f"cross_entropy_kd_weight-{r}", lambda F, x, t, w, r=r: F.cross_entropy(
                x, t, w, reduction=r), lambda x, t, w, r=r: _nll(_log_softmax(x, 1), t, w,
                                                                  -100, r), _logits_targets(kd)),
            LossCase(f"cross_entropy_probs-{r}", lambda F, x, q, w, r=r: F.cross_entropy(
                x, q, w, reduction=r, label_smoothing=0.1),
                lambda x, q, w, r=r: _cross_entropy_probs(x, q, w, r, 0.1),
                _logits_probs((N, C)), grad=(0, 1)),
            LossCase(f"cross_entropy_probs_kd-{r}", lambda F, x, q, w, r=r: F.cross_entropy(
                x, q, reduction=r), lambda x, q, w, r=r: _cross_entropy_probs(x, q, None, r),
                _logits_probs(kd), grad=(0, 1)),
            LossCase(f"nll_loss_weight-{r}", lambda F, x, t, w, r=r: F.nll_loss(
                x, t, w, reduction=r), lambda x, t, w, r=r: _nll(x, t, w, -100, r),
                _logits_targets()),
            LossCase(f"nll_loss_kd-{r}", lambda F, x, t, w, r=r: F.nll_loss(x, t, reduction=r),
                     lambda x, t, w, r=r: _nll(x, t, None, -100, r), _logits_targets(kd)),
            LossCase(f"binary_cross_entropy-{r}", lambda F, p, t, w, pw, r=r:
                     F.binary_cross_entropy(p, t, w, reduction=r),
                     lambda p, t, w, pw, r=r: _bce(p, t, w, r), _probabilities, grad=(0, 1)),
            LossCase(f"bce_with_logits-{r}", lambda F, x, t, w, pw, r=r:
                     F.binary_cross_entropy_with_logits(x, t, reduction=r),
                     lambda x, t, w, pw, r=r: _bce_logits(x, t, None, None, r),
                     _probabilities, grad=(0, 1)),
            LossCase(f"bce_with_logits_weights-{r}", lambda F, x, t, w, pw, r=r:
                     F.binary_cross_entropy_with_logits(x, t, w, reduction=r, pos_weight=pw),
                     lambda x, t, w, pw, r=r: _bce_logits(x, t, w, pw, r),
                     _probabilities, grad=(0, 1)),
            LossCase(f"mse_loss-{r}", lambda F, x, t, w, r=r: F.mse_loss(x, t, reduction=r),
                     lambda x, t, w, r=r: _reduce((x - t) ** 2, r), _pairs, grad=(0, 1)),
            LossCase(f"l1_loss-{r}", lambda F, x, t, w, r=r: F.l1_loss(x, t, reduction=r),
                     lambda x, t, w, r=r: _reduce(np.abs(x - t), r), _pairs, grad=(0, 1)),
            LossCase(f"smooth_l1_loss-{r}", lambda F, x, t, w, r=r: F.smooth_l1_loss(
                x, t, reduction=r, beta=0.7), lambda x, t, w, r=r: _smooth_l1(x, t, r, 0.7),
                _pairs, grad=(0, 1)),
            LossCase(f"huber_loss-{r}", lambda F, x, t, w, r=r: F.huber_loss(
                x, t, reduction=r, delta=0.7), lambda x, t, w, r=r: _huber(x, t, r, 0.7),
                _pairs, grad=(0, 1)),
            LossCase(f"kl_div-{r}", lambda F, x, q, lq, r=r: F.kl_div(x, q, reduction=r),
                     lambda x, q, lq, r=r: _kl(x, q, r, False), _distributions, grad=(0, 1)),
            LossCase(f"kl_div_log_target-{r}", lambda F, x, q, lq, r=r: F.kl_div(
                x, lq, reduction=r, log_target=True), lambda x, q, lq, r=r: _kl(x, lq, r, True),
                _distributions, grad=(0, 2)),
            LossCase(f"cosine_embedding_loss-{r}", lambda F, a, b, y, r=r:
                     F.cosine_embedding_loss(a, b, y, margin=0.2, reduction=r),
                     lambda a, b, y, r=r: _cosine_embedding(a, b, y, 0.2, r), _embedding_pairs,
                     grad=(0, 1)),
            LossCase(f"margin_ranking_loss-{r}", lambda F, a, b, y, r=r:
                     F.margin_ranking_loss(a, b, y, margin=0.3, reduction=r),
                     lambda a, b, y, r=r: _reduce(np.maximum(-y * (a - b) + 0.3, 0), r),
                     _ranking, grad=(0, 1)),
        ]
        for norm, swap in ((2, False), (1, True), (3, True)):
            cases.append(LossCase(
                f"triplet_margin_loss_p{norm}_swap{swap}-{r}",
                lambda F, a, p, n, r=r, norm=norm, swap=swap: F.triplet_margin_loss(
                    a, p, n, margin=1.5, p=norm, swap=swap, reduction=r),
                lambda a, p, n, r=r, norm=norm, swap=swap: _triplet(a, p, n, 1.5, norm, swap,
                                                                    r), _triplets,
                grad=(0, 1, 2)))
    cases.append(LossCase("kl_div-batchmean", lambda F, x, q, lq: F.kl_div(
        x, q, reduction="batchmean"), lambda x, q, lq: _kl(x, q, "batchmean", False),
        _distributions, grad=(0, 1)))
    return cases


CASES = [pytest.param(case, id=case.name) for case in _cases()]
TORCH_CASES = CASES if torch is not None else []


def _inputs(case, dtype, seed=0):
    arrays = case.make(np.random.default_rng(seed))
    return [a.astype(dtype) if a.dtype.kind == "f" else a for a in arrays]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matches_numpy_reference(case, dtype):
    arrays = _inputs(case, dtype)
    got = case.fn(EF, *[ember.asarray(a) for a in arrays])
    expected = case.ref(*[a.astype(np.float64) if a.dtype.kind == "f" else a for a in arrays])
    assert got.shape == np.shape(expected)
    assert got.numpy().dtype == np.dtype(dtype)  # float32 stays float32
    tolerance = 1e-12 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(got.numpy(), expected, rtol=tolerance * 10, atol=tolerance)


@pytest.mark.parametrize("case", CASES)
def test_gradients_match_finite_differences(case):
    tensors = [ember.asarray(a) for a in _inputs(case, "float64", seed=1)]
    for position in case.grad:
        tensors[position].requires_grad_(True)
    assert gradcheck(lambda *t: case.fn(EF, *t), tensors)


@pytest.mark.torch_reference
@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")  # torch's kl_div notice
@pytest.mark.parametrize("case", TORCH_CASES)
def test_agrees_with_pytorch(case):
    arrays = _inputs(case, "float64", seed=2)
    ours = [ember.asarray(a) for a in arrays]
    theirs = [torch.from_numpy(a.copy()) for a in arrays]
    for position in case.grad:
        ours[position].requires_grad_(True)
        theirs[position].requires_grad_(True)
    got, expected = case.fn(EF, *ours), case.fn(TF, *theirs)
    np.testing.assert_allclose(got.numpy(), expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    cotangent = np.random.default_rng(3).standard_normal(got.shape)
    got.backward(ember.asarray(cotangent))
    expected.backward(torch.from_numpy(cotangent))
    for position in case.grad:
        np.testing.assert_allclose(ours[position].grad.numpy(),
                                   theirs[position].grad.numpy(), rtol=1e-8, atol=1e-12)


# ---- properties beyond the table --------------------------------------------------------------
def test_cross_entropy_keeps_float32_and_is_stable_for_huge_logits():
    logits = np.array([[1e4, 0.0, -1e4], [0.0, 3e4, 0.0]], dtype=np.float32)
    x = ember.asarray(logits).requires_grad_(True)
    loss = EF.cross_entropy(x, ember.tensor([1, 1]))
    loss.backward()
    assert loss.dtype == ember.float32 and x.grad.dtype == ember.float32
    np.testing.assert_allclose(loss.numpy(), 5e3, rtol=1e-6)  # (1e4 + 0) / 2
    np.testing.assert_allclose(x.grad.numpy(), [[0.5, -0.5, 0], [0, 0, 0]], atol=1e-7)


def test_cross_entropy_double_backward_with_weights_ignore_and_kd_input():
    rng = np.random.default_rng(4)
    x = ember.asarray(rng.standard_normal((2, 3, 2))).requires_grad_(True)
    target = ember.tensor([[0, 2], [-100, 1]])
    weight = ember.asarray(rng.uniform(0.5, 2.0, 3))

    def first_derivative(logits):
        if not logits.requires_grad:  # the finite-difference probes arrive without grad
            logits = logits.detach().requires_grad_(True)
        loss = EF.cross_entropy(logits, target, weight)
        (gx,) = ember.autograd.grad(loss, logits, create_graph=True)
        return gx

    assert gradcheck(first_derivative, [x])


def test_binary_cross_entropy_at_exact_zero_and_one_is_finite():
    p = ember.tensor([0.0, 1.0, 0.0, 1.0], dtype=ember.float64, requires_grad=True)
    target = ember.tensor([1.0, 0.0, 0.0, 1.0], dtype=ember.float64)
    loss = EF.binary_cross_entropy(p, target, reduction="none")
    np.testing.assert_allclose(loss.numpy(), [100.0, 100.0, 0.0, 0.0])  # logs floored at -100
    loss.sum().backward()
    assert np.isfinite(p.grad.numpy()).all()


def test_bce_with_logits_is_stable_for_extreme_logits():
    x = ember.tensor([1000.0, -1000.0, 1000.0], requires_grad=True)
    loss = EF.binary_cross_entropy_with_logits(x, ember.tensor([1.0, 0.0, 0.0]),
                                               reduction="none")
    loss.sum().backward()
    np.testing.assert_allclose(loss.numpy(), [0.0, 0.0, 1000.0])
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 0.0, 1.0])


def test_softmax_accepts_python_numbers_and_keeps_float32():
    assert EF.softmax([1.0, 2.0]).dtype == ember.float32
    np.testing.assert_allclose(EF.log_softmax([0.0, 0.0], dim=0).numpy(), np.log([0.5, 0.5]))


# ---- errors -----------------------------------------------------------------------------------
POINTWISE = {
    "mse_loss": EF.mse_loss, "l1_loss": EF.l1_loss, "smooth_l1_loss": EF.smooth_l1_loss,
    "huber_loss": EF.huber_loss, "binary_cross_entropy": EF.binary_cross_entropy,
    "binary_cross_entropy_with_logits": EF.binary_cross_entropy_with_logits,
    "kl_div": EF.kl_div,
}


@pytest.mark.parametrize("name", sorted(POINTWISE))
@pytest.mark.parametrize("input_shape, target_shape", [((5, 1), (5,)), ((5,), (5, 1)),
                                                       ((5, 2), (2,))])
def test_broadcasting_target_is_a_shape_error(name, input_shape, target_shape):
    x = ember.full(input_shape, 0.5)
    with pytest.raises(ShapeError) as info:
        POINTWISE[name](x, ember.full(target_shape, 0.5))
    message = str(info.value)
    assert name in message and str(input_shape) in message and str(target_shape) in message


def test_float_class_target_is_a_dtype_error_with_a_fix():
    with pytest.raises(DTypeError, match=r"cross_entropy.*integer.*astype\(ember.int64\)"):
        EF.cross_entropy(ember.zeros((3, 4)), ember.tensor([0.0, 1.0, 2.0]))


@pytest.mark.parametrize("target_shape", [(3, 1), (1, 3), (4,)])
def test_class_target_of_the_wrong_shape_is_a_shape_error(target_shape):
    with pytest.raises(ShapeError, match=r"cross_entropy.*\(3,\)"):
        EF.cross_entropy(ember.zeros((3, 4)), ember.zeros(target_shape, dtype=ember.int64))


@pytest.mark.parametrize("loss", [EF.cross_entropy, EF.nll_loss])
@pytest.mark.parametrize("bad", [4, 7, -1])
def test_out_of_range_class_index_names_the_value(loss, bad):
    with pytest.raises(IndexError, match=rf"indices \[{bad}\] outside \[0, 4\)") as info:
        loss(ember.zeros((3, 4)), ember.tensor([0, bad, 2]))
    assert isinstance(info.value, EmberError)


def test_ignore_index_may_lie_outside_the_class_range():
    loss = EF.cross_entropy(ember.zeros((3, 4)), ember.tensor([0, -1, 2]), ignore_index=-1)
    np.testing.assert_allclose(loss.numpy(), np.log(4.0), rtol=1e-6)


@pytest.mark.parametrize("call, error, pattern", [
    (lambda: EF.cross_entropy(ember.zeros((3, 4)), ember.tensor([0, 1, 2]), ember.ones(3)),
     ShapeError, r"cross_entropy.*\(4,\)"),
    (lambda: EF.nll_loss(ember.zeros((3, 4)), ember.tensor([0, 1, 2]), reduction="avg"),
     EmberError, r"nll_loss.*'avg'"),
    (lambda: EF.mse_loss(ember.ones(3), ember.ones(3), reduction="batchmean"),
     EmberError, r"mse_loss.*'batchmean'"),
    (lambda: EF.cross_entropy(ember.zeros((3, 4)), ember.tensor([0, 1, 2]),
                              label_smoothing=1.5), EmberError, r"label_smoothing"),
    (lambda: EF.binary_cross_entropy(ember.tensor([0.5, 1.5]), ember.ones(2)),
     EmberError, r"\[0, 1\].*sigmoid"),
    (lambda: EF.binary_cross_entropy_with_logits(ember.zeros((2, 3)), ember.zeros((2, 3)),
                                                 pos_weight=ember.ones(2)),
     ShapeError, r"pos_weight"),
    (lambda: EF.triplet_margin_loss(ember.ones((2, 3)), ember.ones((2, 3)), ember.ones(3)),
     ShapeError, r"triplet_margin_loss.*negative"),
    (lambda: EF.cosine_embedding_loss(ember.ones((2, 3)), ember.ones((2, 3)), ember.ones(3)),
     ShapeError, r"cosine_embedding_loss.*\(2,\)"),
    (lambda: EF.margin_ranking_loss(ember.ones(3), ember.ones(3), ember.ones((3, 1))),
     ShapeError, r"margin_ranking_loss"),
    (lambda: EF.nll_loss(ember.zeros((3, 4), dtype=ember.int64), ember.tensor([0, 1, 2])),
     DTypeError, r"nll_loss.*floating"),
])
def test_bad_arguments_raise_clear_errors(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


@pytest.mark.parametrize("loss, options", [
    ("cross_entropy", {}), ("cross_entropy", {"label_smoothing": 0.1}),
    ("cross_entropy", {"weight": "ones"}), ("nll_loss", {}), ("nll_loss", {"weight": "ones"})])
def test_all_ignored_batch_gives_nan_loss_but_zero_gradient(loss, options):
    options = {k: ember.ones(5, dtype=ember.float64) if v == "ones" else v
               for k, v in options.items()}
    x = ember.asarray(np.random.default_rng(0).standard_normal((4, 5))).requires_grad_()
    value = getattr(EF, loss)(x, ember.asarray(np.full(4, -100)), **options)
    value.backward()
    assert np.isnan(value.item())
    np.testing.assert_array_equal(x.grad.numpy(), 0.0)


def test_bce_pushes_saturated_wrong_predictions_like_pytorch():
    p = ember.asarray(np.array([0.0, 1.0, 0.3])).requires_grad_()
    target = ember.asarray(np.array([1.0, 0.0, 1.0]))
    loss = EF.binary_cross_entropy(p, target, reduction="none")
    loss.sum().backward()
    np.testing.assert_allclose(loss.numpy(), [100.0, 100.0, -np.log(0.3)])
    # PyTorch: (p - t) / max(p (1 - p), 1e-12)
    np.testing.assert_allclose(p.grad.numpy(), [-1e12, 1e12, -1 / 0.3])
