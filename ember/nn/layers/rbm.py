"""A Bernoulli-Bernoulli restricted Boltzmann machine trained by contrastive divergence.

Energy E(v, h) = -v.b_v - h.b_h - h.W v with binary v (n_visible) and h (n_hidden). Summing
out h gives the free energy F(v) = -v.b_v - sum_j softplus((W v + b_h)_j), and
d/dtheta [F(v_data) - F(v_model)] is the log-likelihood gradient with the model expectation
replaced by samples from a short Gibbs chain (CD-k), or by chains that persist across
updates (PCD, Tieleman 2008). So training is ordinary autograd on a surrogate loss.
"""
from __future__ import annotations

from ember import random as ember_random
from ember._core import dtypes
from ember._core.autograd import no_grad
from ember._core.tensor import Tensor
from ember.nn import init
from ember.nn.functional._checks import expect_float, expect_last_dim
from ember.nn.functional.linear import linear
from ember.nn.module import Module, Parameter
from ember.ops.creation import empty
from ember.ops.elementwise import astype, logaddexp, sigmoid
from ember.ops.linalg import matmul
from ember.ops.movement import expand_dims, matrix_transpose
from ember.ops.reduce import mean
from ember.ops.reduce import sum as reduce_sum
from ember.ops.scatter import take, take_along_axis


class RBM(Module):
    """Bernoulli-Bernoulli RBM with parameters `weight` (n_hidden, n_visible), `v_bias` and
    `h_bias`. `forward(v)` gives p(h = 1 | v); `contrastive_divergence_loss(v)` is the loss
    whose gradient is the CD-k (or, with `persistent=True`, PCD-k) estimate.

    >>> import ember
    >>> rbm = ember.nn.RBM(6, 3, generator=ember.random.Generator(0))
    >>> v = ember.random.Generator(1).bernoulli(0.5, size=(4, 6))
    >>> rbm(v).shape, rbm.free_energy(v).shape
    ((4, 3), (4,))
    >>> loss = rbm.contrastive_divergence_loss(v)
    >>> loss.backward(); rbm.weight.grad.shape
    (3, 6)
    """

    def __init__(self, n_visible: int, n_hidden: int, k: int = 1, persistent: bool = False,
                 generator: ember_random.Generator | None = None, dtype=None, device=None):
        super().__init__()
        if n_visible <= 0 or n_hidden <= 0 or k < 1:
            raise ValueError(f"RBM: need n_visible, n_hidden and k >= 1, got {n_visible}, "
                             f"{n_hidden}, k={k}")
        self.n_visible, self.n_hidden, self.k = n_visible, n_hidden, k
        self.persistent = persistent
        self.generator = generator
        dtype = dtypes.as_dtype(dtype) if dtype is not None else dtypes.default_float
        self.weight = Parameter(empty((n_hidden, n_visible), dtype=dtype, device=device))
        self.v_bias = Parameter(empty(n_visible, dtype=dtype, device=device))
        self.h_bias = Parameter(empty(n_hidden, dtype=dtype, device=device))
        # The PCD chains' visible states: model state, but not worth saving in checkpoints.
        self.register_buffer("chains", None, persistent=False)
        self.reset_parameters()

    def reset_parameters(self):
        # Hinton's practical guide: small Gaussian weights, zero biases.
        init.normal_(self.weight, 0.0, 0.01, generator=self.generator)
        init.zeros_(self.v_bias)
        init.zeros_(self.h_bias)
        self.chains = None

    def _check(self, v: Tensor, op: str):
        expect_float(f"RBM.{op}", v)
        expect_last_dim(f"RBM.{op}", v, self.n_visible, "n_visible")

    def _bernoulli(self, probabilities: Tensor) -> Tensor:
        generator = self.generator or ember_random.default_generator
        uniform = generator.random(probabilities.shape, dtype=probabilities.dtype,
                                   device=probabilities.device)
        return astype(uniform < probabilities, probabilities.dtype)

    def forward(self, v: Tensor) -> Tensor:
        """p(h = 1 | v), the hidden features."""
        self._check(v, "forward")
        return sigmoid(linear(v, self.weight, self.h_bias))

    def sample_h(self, v: Tensor) -> tuple[Tensor, Tensor]:
        """(p(h = 1 | v), a binary sample of h)."""
        probabilities = self.forward(v)
        return probabilities, self._bernoulli(probabilities)

    def sample_v(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """(p(v = 1 | h), a binary sample of v)."""
        expect_last_dim("RBM.sample_v", h, self.n_hidden, "n_hidden")
        probabilities = sigmoid(matmul(h, self.weight) + self.v_bias)
        return probabilities, self._bernoulli(probabilities)

    def gibbs(self, v: Tensor, steps: int | None = None) -> Tensor:
        """The visible sample after `steps` (default k) rounds of v -> h -> v, without grad."""
        self._check(v, "gibbs")
        with no_grad():
            for _ in range(self.k if steps is None else steps):
                _, h = self.sample_h(v)
                _, v = self.sample_v(h)
        return v

    def free_energy(self, v: Tensor) -> Tensor:
        """F(v) = -v.b_v - sum_j softplus((W v + b_h)_j), one value per row of v."""
        self._check(v, "free_energy")
        hidden = linear(v, self.weight, self.h_bias)
        return -matmul(v, self.v_bias) - reduce_sum(logaddexp(hidden, 0.0), axis=-1)

    def contrastive_divergence_loss(self, v: Tensor) -> Tensor:
        """mean F(v_data) - mean F(v_model): its gradient is the CD-k (PCD-k) estimate of the
        negative log-likelihood gradient. Persistent chains start from the first batch and
        continue from their last state on every later call (any batch size)."""
        self._check(v, "contrastive_divergence_loss")
        start = v.detach()
        if self.persistent and self.chains is not None:
            start = self.chains
        model_sample = self.gibbs(start)
        if self.persistent:
            self.chains = model_sample
        return mean(self.free_energy(v)) - mean(self.free_energy(model_sample))

    def pseudo_likelihood(self, v: Tensor, exact: bool = True) -> Tensor:
        """Mean over rows of sum_i log p(v_i | v_-i), the log pseudo-likelihood.

        log p(v_i | v_-i) = log sigmoid(F(v with bit i flipped) - F(v)). `exact` flips every
        bit at once (O(batch * n_visible * n_hidden) memory); otherwise one random bit per
        row is flipped and its term scaled by n_visible, an unbiased estimate (Bengio's
        deeplearning.net recipe) for large n_visible.
        """
        self._check(v, "pseudo_likelihood")
        with no_grad():
            hidden = linear(v, self.weight, self.h_bias)                    # (B, H)
            sign = 1.0 - 2.0 * v                                            # +1 turns 0 -> 1
            if exact:  # flipping bit i moves the hidden input by sign_i * W[:, i]: (B, V, H)
                flips = expand_dims(sign, 2) * matrix_transpose(self.weight)
                flipped_hidden, sign_terms = expand_dims(hidden, 1) + flips, sign * self.v_bias
            else:
                generator = self.generator or ember_random.default_generator
                bits = generator.integers(0, self.n_visible, (v.shape[0],), device=v.device)
                chosen = take_along_axis(sign, expand_dims(bits, 1), axis=1)      # (B, 1)
                flipped_hidden = hidden + chosen * matrix_transpose(take(self.weight, bits, axis=1))
                sign_terms = chosen * expand_dims(take(self.v_bias, bits), 1)
                flipped_hidden = expand_dims(flipped_hidden, 1)                 # (B, 1, H)
            softplus_gap = (reduce_sum(logaddexp(flipped_hidden, 0.0), axis=-1)
                            - expand_dims(reduce_sum(logaddexp(hidden, 0.0), axis=-1), 1))
            # F(v_flip) - F(v) = -sign * b_v - (softplus sum of flipped - of original)
            energy_gap = -sign_terms - softplus_gap
            log_conditional = reduce_sum(-logaddexp(-energy_gap, 0.0), axis=-1)
            scale = 1.0 if exact else float(self.n_visible)
            return mean(log_conditional) * scale

    def extra_repr(self):
        return (f"n_visible={self.n_visible}, n_hidden={self.n_hidden}, k={self.k}, "
                f"persistent={self.persistent}")

