"""A character-level LSTM language model on Tiny Shakespeare: it learns to predict the next
character, reports loss and perplexity on held-out text, and writes a short sample.

    python examples/text_char_lm.py                    # 3 epochs, ~4 min: perplexity ~5.5
    python examples/text_char_lm.py --epochs 1 --limit 256 --seq-len 32
"""
from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

import numpy as np

import ember
from ember import nn
from ember.data import Subset
from ember.datasets import TextFile


def default_data() -> str:
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    return os.environ.get("EMBER_DATA", str(shared))


class CharLSTM(ember.Model):
    def __init__(self, vocab_size: int, embed: int = 64, hidden: int = 256):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed)
        self.lstm = nn.LSTM(embed, hidden, batch_first=True)
        self.head = nn.Linear(hidden, vocab_size)

    def step(self, ids, state=None):
        """Logits (batch, vocab, time) and the LSTM state (h, c) to continue from."""
        out, state = self.lstm(self.embed(ids), state)    # out: (batch, time, hidden)
        # cross_entropy wants the classes on axis 1: (batch, vocab, time) vs (batch, time).
        return self.head(out).permute(0, 2, 1), state

    def forward(self, ids):
        return self.step(ids)[0]

    def train_step(self, batch):
        # The default step plus gradient clipping, which keeps rare exploding LSTM gradients
        # from undoing training: override train_step when one loss + one step is not enough.
        x, y, _ = batch
        logits = self(x)
        loss = self.compute_loss(x, y, logits)
        self.optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.parameters(), max_norm=1.0)
        self.optimizer.step()
        return self.compute_metrics(x, y, logits, loss=loss)


def sample(model, text: TextFile, prompt: str, length: int, temperature: float, rng) -> str:
    """Feed the prompt, then one character at a time, carrying the LSTM state along.
    temperature 0 is greedy (always the likeliest next character)."""
    model.eval()
    ids, state, out = text.vocab.lookup(list(prompt)), None, []
    with ember.no_grad():
        for _ in range(length):
            logits, state = model.step(ember.tensor([ids]), state)
            scores = logits.numpy()[0, :, -1].astype(np.float64)
            if temperature == 0:
                next_id = int(scores.argmax())
            else:  # softmax(scores / T): T < 1 sharpens, T > 1 flattens the distribution
                weights = np.exp((scores - scores.max()) / temperature)
                next_id = int(rng.choice(len(weights), p=weights / weights.sum()))
            out.append(next_id)
            ids = [next_id]
    return prompt + text.decode(out)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=default_data(), help="folder holding tinyshakespeare/")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seq-len", type=int, default=100)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--limit", type=int, default=None,
                        help="use only the first N training sequences (and N for validation)")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    ember.manual_seed(args.seed)

    # Items are (ids[s:s+L], ids[s+1:s+L+1]): every position predicts the next character.
    text = TextFile(Path(args.data) / "tinyshakespeare" / "input.txt", seq_len=args.seq_len)
    split = int(0.9 * len(text))  # the last 10% of the play is held out (split by position)
    train = Subset(text, range(split)[:args.limit])
    valid = Subset(text, range(split, len(text))[:args.limit])
    print(f"{len(text.vocab)} symbols, {len(train)} training and {len(valid)} validation "
          f"sequences of {args.seq_len} characters")

    model = CharLSTM(len(text.vocab), hidden=args.hidden)
    model.compile(optimizer=ember.optim.Adam(model.parameters(), lr=3e-3), loss="cross_entropy")
    model.fit(train, batch_size=args.batch_size, epochs=args.epochs, validation_data=valid,
              verbose=2)
    loss = model.evaluate(valid, batch_size=args.batch_size, verbose=0)
    # Perplexity exp(loss): the model is as unsure as a uniform choice among that many chars.
    print(f"validation loss {loss:.3f} nats/char, perplexity {math.exp(loss):.2f} "
          f"(chance: {len(text.vocab)})")
    rng = np.random.default_rng(args.seed)
    print("greedy:", sample(model, text, "ROMEO:", 80, 0.0, rng))
    print(f"T={args.temperature}:", sample(model, text, "ROMEO:", 200, args.temperature, rng))
    return {"val_loss": float(loss), "perplexity": math.exp(loss),
            "vocab_size": len(text.vocab)}


if __name__ == "__main__":
    main()
