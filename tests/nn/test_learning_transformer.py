"""Acceptance: small models learn real tasks (seeded, a few seconds each on CPU).

- An encoder-only Transformer learns to reverse token sequences (attention must route each
  output position to the mirrored input position, which needs positions and attention).
- An encoder-decoder `nn.Transformer` learns the same task and decodes held-out sequences
  greedily, one token at a time under the causal target mask.
- An RBM trained with CD-1 and with PCD-1 models noisy binary prototypes: the exact
  pseudo-likelihood of held-out patterns rises far above its untrained value.
"""
from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.nn.functional import cross_entropy

VOCAB, LENGTH, D_MODEL = 10, 8, 32


class Reverser(ember.nn.Module):
    """Token + learned position embeddings, a 2-layer encoder, a per-position classifier."""

    def __init__(self):
        super().__init__()
        self.tokens = ember.nn.Embedding(VOCAB, D_MODEL)
        self.positions = ember.nn.Parameter(ember.randn(LENGTH, D_MODEL) * 0.1)
        layer = ember.nn.TransformerEncoderLayer(D_MODEL, 4, dim_feedforward=64, dropout=0.0,
                                                 batch_first=True)
        self.encoder = ember.nn.TransformerEncoder(layer, 2)
        self.head = ember.nn.Linear(D_MODEL, VOCAB)

    def forward(self, tokens):
        return self.head(self.encoder(self.tokens(tokens) + self.positions))


class Seq2SeqReverser(ember.nn.Module):
    """nn.Transformer over embedded source and shifted target (BOS = VOCAB)."""

    def __init__(self):
        super().__init__()
        self.tokens = ember.nn.Embedding(VOCAB + 1, D_MODEL)
        self.positions = ember.nn.Parameter(ember.randn(LENGTH, D_MODEL) * 0.1)
        self.transformer = ember.nn.Transformer(D_MODEL, 4, 1, 1, dim_feedforward=64,
                                                dropout=0.0, batch_first=True)
        self.head = ember.nn.Linear(D_MODEL, VOCAB)

    def embed(self, tokens):
        return self.tokens(tokens) + self.positions[: tokens.shape[1]]

    def forward(self, source, target_in):
        mask = ember.nn.Transformer.generate_square_subsequent_mask(target_in.shape[1])
        decoded = self.transformer(self.embed(source), self.embed(target_in), tgt_mask=mask)
        return self.head(decoded)


def _train(model, loss_of_batch, rng, steps=300, batch=64):
    optimizer = ember.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        source = rng.integers(0, VOCAB, (batch, LENGTH))
        loss = loss_of_batch(model, source)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return loss.item()


def _token_loss(logits, target):
    return cross_entropy(ember.reshape(logits, (-1, VOCAB)),
                         ember.asarray(np.ascontiguousarray(target).reshape(-1)))


def _shifted(target):
    return np.concatenate([np.full((len(target), 1), VOCAB), target[:, :-1]], axis=1)


def test_encoder_transformer_learns_to_reverse_sequences():
    ember.manual_seed(0)
    rng = np.random.default_rng(0)
    model = Reverser()
    final_loss = _train(model, lambda m, x: _token_loss(m(ember.asarray(x)), x[:, ::-1]), rng)
    held_out = np.random.default_rng(100).integers(0, VOCAB, (500, LENGTH))
    model.eval()
    with ember.no_grad():
        predicted = model(ember.asarray(held_out)).numpy().argmax(-1)
    accuracy = (predicted == held_out[:, ::-1]).mean()
    assert final_loss < 0.1
    assert accuracy > 0.95, f"token accuracy {accuracy:.3f} on held-out sequences"


def test_encoder_decoder_transformer_reverses_with_greedy_decoding():
    ember.manual_seed(1)
    rng = np.random.default_rng(1)
    model = Seq2SeqReverser()

    def loss_of_batch(m, source):
        target = source[:, ::-1]
        return _token_loss(m(ember.asarray(source), ember.asarray(_shifted(target))), target)

    _train(model, loss_of_batch, rng)
    held_out = np.random.default_rng(101).integers(0, VOCAB, (300, LENGTH))
    decoded = np.full((len(held_out), 1), VOCAB)
    model.eval()
    with ember.no_grad():
        for _ in range(LENGTH):  # each step sees only its own earlier predictions
            logits = model(ember.asarray(held_out), ember.asarray(decoded)).numpy()
            decoded = np.concatenate([decoded, logits[:, -1].argmax(-1)[:, None]], axis=1)
    accuracy = (decoded[:, 1:] == held_out[:, ::-1]).mean()
    assert accuracy > 0.95, f"greedy-decoding token accuracy {accuracy:.3f}"


def _noisy_prototypes(count, rng, prototypes, flip=0.05):
    patterns = prototypes[rng.integers(0, len(prototypes), count)]
    return np.where(rng.random(patterns.shape) < flip, 1 - patterns, patterns).astype(
        np.float32)


@pytest.mark.parametrize("persistent", [False, True], ids=["cd1", "pcd1"])
def test_rbm_pseudo_likelihood_improves_on_noisy_prototypes(persistent):
    rng = np.random.default_rng(0)
    prototypes = rng.integers(0, 2, (4, 16))
    train = _noisy_prototypes(512, rng, prototypes)
    held_out = ember.asarray(_noisy_prototypes(256, np.random.default_rng(1), prototypes))
    rbm = ember.nn.RBM(16, 8, k=1, persistent=persistent, generator=ember.random.Generator(0))
    optimizer = ember.optim.SGD(rbm.parameters(), lr=0.1, momentum=0.5)
    before = rbm.pseudo_likelihood(held_out).item()
    for _ in range(30):
        order = rng.permutation(len(train))
        for start in range(0, len(train), 32):
            loss = rbm.contrastive_divergence_loss(ember.asarray(train[order[start:start + 32]]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    after = rbm.pseudo_likelihood(held_out).item()
    # Untrained, every bit is a coin flip: 16 log(1/2) = -11.1 nats. The noise alone costs
    # 16 H(0.05) = 3.2 nats, so a model that found the prototypes lands near -3 to -5.
    assert before == pytest.approx(16 * np.log(0.5), abs=0.2)
    assert after > -5.5 and after - before > 5.0, (before, after)
