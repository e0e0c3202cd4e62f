"""The Bernoulli-Bernoulli RBM: free energy, conditionals, the CD-k gradient against the
textbook formula, persistent chains and the exact pseudo-likelihood, each against NumPy."""
from __future__ import annotations

import numpy as np
import pytest

import ember
from ember._core.errors import ShapeError


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _free_energy(v, weight, v_bias, h_bias):
    return -v @ v_bias - np.logaddexp(0.0, v @ weight.T + h_bias).sum(-1)


def _rbm(n_visible=6, n_hidden=4, seed=0, **options):
    """A float64 RBM with random (not small) parameters, so every term matters."""
    rbm = ember.nn.RBM(n_visible, n_hidden, generator=ember.random.Generator(seed),
                       **options).to("float64")
    rng = np.random.default_rng(seed)
    params = {"weight": rng.standard_normal((n_hidden, n_visible)),
              "v_bias": rng.standard_normal(n_visible), "h_bias": rng.standard_normal(n_hidden)}
    rbm.load_state_dict(params)
    return rbm, params


def _binary(shape, seed=1):
    return (np.random.default_rng(seed).random(shape) < 0.5).astype(np.float64)


def test_parameters_state_dict_and_init():
    rbm = ember.nn.RBM(5, 3)
    assert {name: tuple(t.shape) for name, t in rbm.state_dict().items()} == {
        "weight": (3, 5), "v_bias": (5,), "h_bias": (3,)}
    assert np.abs(rbm.weight.numpy()).max() < 0.1
    assert np.all(rbm.v_bias.numpy() == 0) and np.all(rbm.h_bias.numpy() == 0)


def test_free_energy_and_conditionals_match_numpy():
    rbm, p = _rbm()
    v = _binary((5, 6))
    np.testing.assert_allclose(rbm.free_energy(ember.asarray(v)).numpy(),
                               _free_energy(v, **p), rtol=1e-12)
    np.testing.assert_allclose(rbm(ember.asarray(v)).numpy(),
                               _sigmoid(v @ p["weight"].T + p["h_bias"]), rtol=1e-12)
    h = _binary((5, 4), seed=2)
    p_v, sample = rbm.sample_v(ember.asarray(h))
    np.testing.assert_allclose(p_v.numpy(), _sigmoid(h @ p["weight"] + p["v_bias"]),
                               rtol=1e-12)
    assert set(np.unique(sample.numpy())) <= {0.0, 1.0}


def test_free_energy_is_the_marginal_of_the_energy():
    # exp(-F(v)) must equal sum_h exp(-E(v, h)) over all 2^n_hidden hidden states.
    rbm, p = _rbm(n_visible=3, n_hidden=3)
    v = _binary((4, 3))
    states = np.array(np.meshgrid(*[[0.0, 1.0]] * 3)).reshape(3, -1).T  # (8, 3)
    energy = -(v @ p["v_bias"])[:, None] - (states @ p["h_bias"])[None] - v @ p["weight"].T @ \
        states.T
    expected = np.log(np.exp(-energy).sum(1))
    np.testing.assert_allclose(-rbm.free_energy(ember.asarray(v)).numpy(), expected,
                               rtol=1e-12)


def test_samples_follow_their_probabilities():
    rbm, _ = _rbm()
    v = ember.asarray(np.tile(_binary((1, 6)), (20000, 1)))
    probabilities, samples = rbm.sample_h(v)
    np.testing.assert_allclose(samples.numpy().mean(0), probabilities.numpy()[0], atol=0.02)


def test_cd1_gradient_equals_the_analytic_estimate():
    rbm, p = _rbm(seed=3)
    v = _binary((8, 6), seed=4)
    rbm.contrastive_divergence_loss(ember.asarray(v)).backward()
    # Replay the same draws: one Gibbs step from the data gives the negative sample.
    replay, _ = _rbm(seed=3)
    model = replay.gibbs(ember.asarray(v), 1).numpy()
    h_data = _sigmoid(v @ p["weight"].T + p["h_bias"])
    h_model = _sigmoid(model @ p["weight"].T + p["h_bias"])
    # CD: dL/dW = -(<h v^T>_data - <h v^T>_model); the loss is minimized, so signs flip.
    expected_weight = -(h_data.T @ v - h_model.T @ model) / len(v)
    np.testing.assert_allclose(rbm.weight.grad.numpy(), expected_weight, rtol=1e-10,
                               atol=1e-12)
    np.testing.assert_allclose(rbm.v_bias.grad.numpy(), -(v.mean(0) - model.mean(0)),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(rbm.h_bias.grad.numpy(), -(h_data.mean(0) - h_model.mean(0)),
                               rtol=1e-10, atol=1e-12)


def test_cd_k_runs_k_gibbs_steps():
    rbm, _ = _rbm(seed=5, k=3)
    v = ember.asarray(_binary((4, 6), seed=6))
    loss = rbm.contrastive_divergence_loss(v)
    replay, _ = _rbm(seed=5, k=3)
    model = replay.gibbs(v, 3)
    expected = replay.free_energy(v).mean() - replay.free_energy(model).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)


def test_persistent_chains_continue_across_updates():
    rbm, _ = _rbm(seed=7, persistent=True)
    replay, _ = _rbm(seed=7)
    first = ember.asarray(_binary((4, 6), seed=8))
    second = ember.asarray(_binary((4, 6), seed=9))
    assert rbm.chains is None
    rbm.contrastive_divergence_loss(first)
    chains = rbm.chains.numpy().copy()
    np.testing.assert_array_equal(chains, replay.gibbs(first, 1).numpy())
    rbm.contrastive_divergence_loss(second)
    # The second negative phase starts from the chains, not from the second batch.
    np.testing.assert_array_equal(rbm.chains.numpy(),
                                  replay.gibbs(ember.asarray(chains), 1).numpy())
    assert "chains" not in rbm.state_dict()


def test_exact_pseudo_likelihood_matches_brute_force():
    rbm, p = _rbm()
    v = _binary((5, 6))
    total = np.zeros(len(v))
    for bit in range(6):
        flipped = v.copy()
        flipped[:, bit] = 1 - flipped[:, bit]
        # p(v_i | v_-i) = e^-F(v) / (e^-F(v) + e^-F(v flipped))
        total -= np.logaddexp(0.0, _free_energy(v, **p) - _free_energy(flipped, **p))
    assert rbm.pseudo_likelihood(ember.asarray(v)).item() == pytest.approx(total.mean(),
                                                                           rel=1e-12)


def test_stochastic_pseudo_likelihood_is_unbiased():
    rbm, _ = _rbm(seed=10)
    pattern = _binary((1, 6), seed=11)
    exact = rbm.pseudo_likelihood(ember.asarray(pattern)).item()
    # 30000 copies of one row: each draws its own bit, so the mean approaches the exact sum.
    estimate = rbm.pseudo_likelihood(ember.asarray(np.tile(pattern, (30000, 1))), exact=False)
    assert estimate.item() == pytest.approx(exact, abs=0.05 * abs(exact) + 0.02)


def test_wrong_sizes_raise_shape_errors():
    rbm = ember.nn.RBM(6, 4)
    with pytest.raises(ShapeError, match="n_visible=6"):
        rbm(ember.ones((2, 5)))
    with pytest.raises(ShapeError, match="n_hidden=4"):
        rbm.sample_v(ember.ones((2, 6)))
    with pytest.raises(ValueError, match="k >= 1"):
        ember.nn.RBM(6, 4, k=0)
