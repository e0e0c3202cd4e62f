"""Learning tests: small recurrent models must actually learn sequence tasks (CPU, seeded).

Each task draws random token sequences; the models read them one-hot and are scored by
per-step accuracy on held-out sequences drawn separately from the training ones.
"""
from __future__ import annotations

import numpy as np

import ember
from ember.nn.functional import cross_entropy
from ember.optim import Adam

IGNORE = -100  # cross_entropy's default ignore_index: a target that is neither trained nor scored


class Tagger(ember.nn.Module):
    """A recurrent layer followed by a per-step linear classifier."""

    def __init__(self, recurrent: ember.nn.Module, features: int, classes: int):
        super().__init__()
        self.recurrent = recurrent
        self.head = ember.nn.Linear(features, classes)

    def forward(self, x):
        output, _ = self.recurrent(x)
        return self.head(output)


def _one_hot(tokens: np.ndarray, classes: int) -> ember.Tensor:
    return ember.asarray(np.eye(classes, dtype=np.float32)[tokens])


def _train_and_score(model, task, *, classes, steps, batch=64, length=12, lr=0.02):
    """Train with Adam on fresh batches; return per-step accuracy on held-out sequences."""
    train_rng, test_rng = np.random.default_rng(0), np.random.default_rng(1)
    optimizer = Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        tokens, targets = task(train_rng.integers(0, classes, (batch, length)))
        logits = model(_one_hot(tokens, classes))
        loss = cross_entropy(logits.reshape((-1, classes)),
                             ember.asarray(targets.reshape(-1)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    tokens, targets = task(test_rng.integers(0, classes, (500, length)))
    with ember.no_grad():
        predictions = model.eval()(_one_hot(tokens, classes)).numpy().argmax(-1)
    scored = targets != IGNORE
    return float((predictions == targets)[scored].mean())


def _running_sum_mod(tokens):
    return tokens, np.cumsum(tokens, axis=1) % 3


def _delayed_copy(tokens, delay=2):
    # Targets at the first `delay` steps are 0: the model must learn those too.
    targets = np.zeros_like(tokens)
    targets[:, delay:] = tokens[:, :-delay]
    return tokens, targets


def _next_token(tokens):
    # Predict x[t + 1]; the last step has no next token and is left out (IGNORE).
    targets = np.full_like(tokens, IGNORE)
    targets[:, :-1] = tokens[:, 1:]
    return tokens, targets


def test_lstm_learns_running_sum_mod_3():
    ember.manual_seed(0)
    model = Tagger(ember.nn.LSTM(3, 24, batch_first=True), 24, 3)
    accuracy = _train_and_score(model, _running_sum_mod, classes=3, steps=200)
    assert accuracy > 0.95, accuracy


def test_gru_learns_delayed_copy():
    ember.manual_seed(0)
    model = Tagger(ember.nn.GRU(4, 24, batch_first=True), 24, 4)
    accuracy = _train_and_score(model, _delayed_copy, classes=4, steps=150)
    assert accuracy > 0.95, accuracy


def test_bidirectional_lstm_uses_future_context():
    scores = {}
    for bidirectional in (False, True):
        ember.manual_seed(0)
        directions = 2 if bidirectional else 1
        recurrent = ember.nn.LSTM(4, 16, batch_first=True, bidirectional=bidirectional)
        model = Tagger(recurrent, 16 * directions, 4)
        scores[bidirectional] = _train_and_score(model, _next_token, classes=4, steps=120)
    # A left-to-right model cannot see x[t + 1]: it stays near chance (1/4).
    assert scores[True] > 0.95, scores
    assert scores[False] < 0.4, scores
