"""A GAN learns a 2-D mixture of Gaussians on a ring, trained with `fit()` through an
overridden `train_step` that runs two optimizers (critic, then generator).

Reported before/after training: the sliced Wasserstein distance between generated and real
points (lower is better) and how many of the mixture's modes the generator covers. GAN
training oscillates (the generator hops between modes early on), so these wobble with the
seed and the epoch count; longer runs settle.

    python examples/gan.py
"""
from __future__ import annotations

import argparse

import numpy as np

import ember
from ember import nn
from ember.nn import functional as F

MODES, RADIUS, SPREAD, NOISE = 8, 2.0, 0.1, 8
_ANGLES = 2 * np.pi * np.arange(MODES) / MODES
CENTERS = RADIUS * np.stack([np.cos(_ANGLES), np.sin(_ANGLES)], axis=1)


def ring_mixture(count: int, rng) -> np.ndarray:
    centers = CENTERS[rng.integers(0, MODES, count)]
    return (centers + rng.normal(0.0, SPREAD, (count, 2))).astype(np.float32)


class GAN(ember.Model):
    """A generator (noise -> point) and a critic (point -> real/fake logit)."""

    def __init__(self, width: int = 64):
        super().__init__()
        self.generator = nn.Sequential(nn.Linear(NOISE, width), nn.ReLU(),
                                       nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 2))
        self.critic = nn.Sequential(nn.Linear(2, width), nn.LeakyReLU(0.2),
                                    nn.Linear(width, width), nn.LeakyReLU(0.2), nn.Linear(width, 1))
        # Metrics held as attributes are reset by fit at the start of every epoch.
        self.d_loss, self.g_loss = ember.metrics.Mean("d_loss"), ember.metrics.Mean("g_loss")

    def compile(self, lr: float = 1e-3):
        super().compile(optimizer=None)  # train_step below owns the two optimizers
        self.opt_g = ember.optim.Adam(self.generator.parameters(), lr=lr, betas=(0.5, 0.999))
        self.opt_d = ember.optim.Adam(self.critic.parameters(), lr=lr, betas=(0.5, 0.999))

    def sample(self, count: int):
        return self.generator(ember.randn(count, NOISE))

    def train_step(self, batch) -> dict:
        real = batch[0]
        ones, zeros = ember.ones((real.shape[0], 1)), ember.zeros((real.shape[0], 1))
        # The critic learns to tell real from fake; detach keeps the generator out of it.
        fake = self.sample(real.shape[0])
        loss_d = (F.binary_cross_entropy_with_logits(self.critic(real), ones)
                  + F.binary_cross_entropy_with_logits(self.critic(fake.detach()), zeros))
        self.opt_d.zero_grad()
        loss_d.backward()
        self.opt_d.step()
        # The generator learns to make the critic say "real" (the non-saturating loss).
        loss_g = F.binary_cross_entropy_with_logits(self.critic(self.sample(real.shape[0])), ones)
        self.opt_g.zero_grad()
        loss_g.backward()
        self.opt_g.step()
        self.d_loss.update_state(loss_d.item())
        self.g_loss.update_state(loss_g.item())
        return {"d_loss": self.d_loss.result(), "g_loss": self.g_loss.result()}


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, projections: int = 64) -> float:
    """Mean 1-D Wasserstein-1 distance over random directions (equal sample counts)."""
    angles = np.random.default_rng(0).uniform(0, np.pi, projections)
    directions = np.stack([np.cos(angles), np.sin(angles)])
    return float(np.abs(np.sort(a @ directions, 0) - np.sort(b @ directions, 0)).mean())


def modes_covered(points: np.ndarray) -> int:
    """Modes that hold at least a quarter of their fair share of points within 3 spreads."""
    near = np.linalg.norm(points[:, None] - CENTERS[None], axis=-1) < 3 * SPREAD
    return int((near.sum(0) >= 0.25 * len(points) / MODES).sum())


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--limit", type=int, default=4096, help="training points")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=2, help="0 silent, 1 bar, 2 per epoch")
    args = parser.parse_args(argv)

    ember.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    real, held_out = ring_mixture(args.limit, rng), ring_mixture(2000, rng)
    gan = GAN()
    gan.compile()

    def measure():
        with ember.no_grad():
            fake = gan.sample(len(held_out)).numpy()
        return sliced_wasserstein(fake, held_out), modes_covered(fake)

    distance_before, modes_before = measure()
    gan.fit(real, batch_size=64, epochs=args.epochs, verbose=args.verbose)
    distance_after, modes_after = measure()
    print(f"sliced Wasserstein distance to the data: {distance_before:.3f} before training, "
          f"{distance_after:.3f} after; modes covered: {modes_before} -> {modes_after} "
          f"of {MODES}")
    return {"distance_before": distance_before, "distance_after": distance_after,
            "modes_before": modes_before, "modes_after": modes_after}


if __name__ == "__main__":
    main()
