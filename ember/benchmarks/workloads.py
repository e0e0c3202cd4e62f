"""The four training workloads of ../shared/BENCH.md, built the same way in ember and PyTorch.

Each builder takes the framework module (`ember` or `torch`) and returns (model, make_batch,
loss_fn, make_optimizer, flops_per_step); both frameworks get identical shapes, layers and
optimizer settings, so their step times compare directly.
"""
from __future__ import annotations

import numpy as np

# Forward FLOPs of one training batch (multiply-adds count 2); a training step is about 3x.


def _mlp_flops(batch=128):
    return 2 * batch * (784 * 512 + 512 * 512 + 512 * 10)


def _cnn_flops(batch=64):
    conv1 = 2 * 26 * 26 * 32 * 9
    conv2 = 2 * 24 * 24 * 64 * 32 * 9
    dense = 2 * (9216 * 128 + 128 * 10)
    return batch * (conv1 + conv2 + dense)


def _lstm_flops(batch=20, steps=35, hidden=256, vocab=10000):
    per_token = 2 * 2 * 4 * hidden * (hidden + hidden)  # 2 layers, 4 gates, input + hidden
    return batch * steps * (per_token + 2 * hidden * vocab)


def _gpt_flops(batch=16, steps=128, width=256, layers=4, vocab=256):
    per_token = layers * (2 * 4 * width * width + 2 * 2 * width * 4 * width
                          + 2 * 2 * steps * width)
    return batch * steps * (per_token + 2 * width * vocab)


def mlp(fw):
    nn = fw.nn
    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                          nn.Linear(512, 10))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((128, 784)).astype(np.float32)
    y = rng.integers(0, 10, 128)
    return dict(model=model, inputs=(x,), target=y, loss="cross_entropy",
                optimizer=("Adam", {"lr": 1e-3}), flops=_mlp_flops(), infer_inputs=(x[:1],))


def cnn(fw):
    nn = fw.nn
    model = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Dropout(0.25), nn.Flatten(), nn.Linear(9216, 128),
                          nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 64)
    return dict(model=model, inputs=(x,), target=y, loss="cross_entropy",
                optimizer=("SGD", {"lr": 0.01, "momentum": 0.9}), flops=_cnn_flops(),
                infer_inputs=(x[:1],))


def lstm(fw):
    nn = fw.nn

    class WordLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(10000, 256)
            self.rnn = nn.LSTM(256, 256, num_layers=2, batch_first=True)
            self.head = nn.Linear(256, 10000)

        def forward(self, tokens):
            hidden, _ = self.rnn(self.embed(tokens))
            return self.head(hidden.reshape(-1, 256)[:700])  # 700 targets of 20 x 35

    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 10000, (20, 35))
    y = rng.integers(0, 10000, 700)
    return dict(model=WordLM(), inputs=(tokens,), target=y, loss="cross_entropy",
                optimizer=("SGD", {"lr": 1.0}), flops=_lstm_flops(),
                infer_inputs=(tokens[:1],), infer_slice=35)


def gpt(fw):
    nn = fw.nn

    class CharGPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(256, 256)
            self.position = nn.Embedding(128, 256)
            self.blocks = nn.ModuleList([
                nn.TransformerEncoderLayer(256, 4, 1024, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
                for _ in range(4)])
            self.norm = nn.LayerNorm(256)
            self.head = nn.Linear(256, 256)

        def forward(self, tokens):
            length = tokens.shape[1]
            positions = fw.arange(length)
            h = self.embed(tokens) + self.position(positions)
            mask = fw.triu(fw.ones((length, length), dtype=fw.bool), 1) if fw.__name__ == \
                "torch" else fw.triu(fw.ones((length, length), dtype=fw.bool_), k=1)
            for block in self.blocks:
                h = block(h, src_mask=mask, is_causal=True)
            logits = self.head(self.norm(h))
            return logits.reshape(-1, 256)[:2048]  # 2048 targets of 16 x 128

    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 256, (16, 128))
    y = rng.integers(0, 256, 2048)
    return dict(model=CharGPT(), inputs=(tokens,), target=y, loss="cross_entropy",
                optimizer=("AdamW", {"lr": 3e-4}), flops=_gpt_flops(),
                infer_inputs=(tokens[:1],), infer_slice=128)


WORKLOADS = {"mlp": mlp, "cnn": cnn, "lstm": lstm, "gpt": gpt}
