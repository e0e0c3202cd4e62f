"""Learning tests: small models must actually learn (each well under 30 s on CPU).

Data are generated here, seeded, so every run sees the same problem.
"""
from __future__ import annotations

import numpy as np

import ember
from ember import nn
from ember.nn import functional as F


def _bar_images(count, rng, size=12):
    """Four classes of noisy 12x12 images: horizontal bar, vertical bar, diagonal, square."""
    labels = rng.integers(0, 4, count)
    images = rng.normal(0.0, 0.3, (count, 1, size, size)).astype(np.float32)
    for image, label in zip(images[:, 0], labels):
        r, c = rng.integers(2, size - 3, 2)
        if label == 0:
            image[r, 1:-1] += 1.0
        elif label == 1:
            image[1:-1, c] += 1.0
        elif label == 2:
            offset = rng.integers(-2, 3)
            image[np.arange(size), np.clip(np.arange(size) + offset, 0, size - 1)] += 1.0
        else:
            image[r - 1:r + 2, c - 1:c + 2] += 1.0
    return images, labels


def _fit_classifier(model, images, labels, epochs, lr=1e-2, batch=50):
    optimizer = ember.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(0)
    for _ in range(epochs):
        order = rng.permutation(len(images))
        for start in range(0, len(images), batch):
            index = order[start:start + batch]
            loss = F.cross_entropy(model(ember.asarray(images[index])),
                                   ember.asarray(labels[index]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


def _accuracy(model, images, labels):
    model.eval()
    with ember.no_grad():
        predicted = model(ember.asarray(images)).numpy().argmax(axis=1)
    return float((predicted == labels).mean())


def test_mlp_and_cnn_fit_a_separable_image_task():
    rng = np.random.default_rng(0)
    train_x, train_y = _bar_images(1200, rng)
    test_x, test_y = _bar_images(300, rng)
    ember.manual_seed(0)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(144, 64), nn.ReLU(), nn.Linear(64, 4))
    _fit_classifier(mlp, train_x, train_y, epochs=15)
    cnn = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3),
                        nn.ReLU(), nn.Flatten(), nn.Linear(144, 4))
    _fit_classifier(cnn, train_x, train_y, epochs=8)
    assert _accuracy(mlp, test_x, test_y) > 0.95
    assert _accuracy(cnn, test_x, test_y) > 0.95


def test_autoencoder_reduces_reconstruction_error_tenfold():
    rng = np.random.default_rng(1)
    latent = rng.normal(size=(512, 3))
    data = ember.asarray(np.tanh(latent @ rng.normal(size=(3, 16))).astype(np.float32))
    ember.manual_seed(1)
    model = nn.Sequential(nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 3),
                          nn.Linear(3, 32), nn.Tanh(), nn.Linear(32, 16))
    optimizer = ember.optim.Adam(model.parameters(), lr=1e-2)
    with ember.no_grad():
        before = F.mse_loss(model(data), data).item()
    for _ in range(400):
        loss = F.mse_loss(model(data), data)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with ember.no_grad():
        after = F.mse_loss(model(data), data).item()
    assert after < before / 10, (before, after)


def _wasserstein(a, b):
    return float(np.abs(np.sort(a) - np.sort(b)).mean())


def test_gan_moves_generator_toward_a_gaussian_mixture():
    rng = np.random.default_rng(2)

    def real(count):
        centers = rng.choice([-2.0, 2.0], size=(count, 1))
        return (centers + rng.normal(0, 0.25, (count, 1))).astype(np.float32)

    ember.manual_seed(2)
    generator = nn.Sequential(nn.Linear(4, 32), nn.LeakyReLU(0.2), nn.Linear(32, 32),
                              nn.LeakyReLU(0.2), nn.Linear(32, 1))
    critic = nn.Sequential(nn.Linear(1, 32), nn.LeakyReLU(0.2), nn.Linear(32, 32),
                           nn.LeakyReLU(0.2), nn.Linear(32, 1))
    opt_g = ember.optim.Adam(generator.parameters(), lr=2e-3, betas=(0.5, 0.999))
    opt_d = ember.optim.Adam(critic.parameters(), lr=2e-3, betas=(0.5, 0.999))
    noise = ember.random.Generator(3)

    def sample(count):
        return generator(noise.normal(size=(count, 4)))

    reference = real(4000)[:, 0]
    with ember.no_grad():
        before = _wasserstein(sample(4000).numpy()[:, 0], reference)
    batch = 128
    ones, zeros = ember.ones((batch, 1)), ember.zeros((batch, 1))
    for _ in range(1500):
        fake = sample(batch)
        loss_d = (F.binary_cross_entropy_with_logits(critic(ember.asarray(real(batch))), ones)
                  + F.binary_cross_entropy_with_logits(critic(fake.detach()), zeros))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        loss_g = F.binary_cross_entropy_with_logits(critic(sample(batch)), ones)
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
    with ember.no_grad():
        after = _wasserstein(sample(4000).numpy()[:, 0], reference)
    assert after < 0.3 * before, (before, after)
