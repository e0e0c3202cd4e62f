"""A small Transformer encoder learns to reverse (or sort) sequences of random tokens.

Each output position must find the right input token: for reversal, the mirrored position
(attention plus position embeddings); for sorting, the tokens' ranks (attention over all of
them). Trained with `compile`/`fit`; reported: token accuracy on held-out sequences.

    python examples/transformer_reverse.py
    python examples/transformer_reverse.py --task sort
"""
from __future__ import annotations

import argparse

import numpy as np

import ember
from ember import nn
from ember.nn import functional as F


class TokenTransformer(ember.Model):
    """Token + learned position embeddings, a Transformer encoder, a per-position classifier."""

    def __init__(self, vocab: int, length: int, d_model: int = 64, heads: int = 4,
                 layers: int = 2):
        super().__init__()
        self.tokens = nn.Embedding(vocab, d_model)
        self.positions = nn.Parameter(ember.randn(length, d_model) * 0.1)
        layer = nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=2 * d_model,
                                           dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers)
        self.head = nn.Linear(d_model, vocab)

    def forward(self, tokens):
        return self.head(self.encoder(self.tokens(tokens) + self.positions))  # (B, L, vocab)


def token_cross_entropy(logits, target):
    """Cross entropy over every position: (B, L, vocab) logits against (B, L) tokens."""
    return F.cross_entropy(logits.reshape((-1, logits.shape[-1])), target.reshape((-1,)))


def make_task(task: str, count: int, vocab: int, length: int, rng):
    source = rng.integers(0, vocab, (count, length))
    target = source[:, ::-1] if task == "reverse" else np.sort(source, axis=1)
    return source, np.ascontiguousarray(target)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=["reverse", "sort"], default="reverse")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--limit", type=int, default=8000, help="training sequences")
    parser.add_argument("--vocab", type=int, default=10)
    parser.add_argument("--length", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=2, help="0 silent, 1 bar, 2 per epoch")
    args = parser.parse_args(argv)

    ember.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    train_x, train_y = make_task(args.task, args.limit, args.vocab, args.length, rng)
    test_x, test_y = make_task(args.task, 1000, args.vocab, args.length, rng)
    model = TokenTransformer(args.vocab, args.length)
    model.compile(optimizer=ember.optim.Adam(model.parameters(), lr=2e-3),
                  loss=token_cross_entropy, metrics=["accuracy"])  # accuracy per token
    model.fit(train_x, train_y, batch_size=64, epochs=args.epochs, verbose=args.verbose)
    logs = model.evaluate(test_x, test_y, batch_size=500, verbose=0, return_dict=True)
    # Whole sequences right, from the predictions (argmax over the vocabulary).
    predicted = model.predict(test_x, batch_size=500).argmax(-1)
    exact = float((predicted == test_y).all(axis=1).mean())
    print(f"{args.task}: held-out token accuracy {logs['accuracy']:.4f}, "
          f"whole sequences right {exact:.4f} (chance per token {1 / args.vocab:.2f})")
    return {"loss": float(logs["loss"]), "token_accuracy": float(logs["accuracy"]),
            "sequence_accuracy": exact}


if __name__ == "__main__":
    main()
