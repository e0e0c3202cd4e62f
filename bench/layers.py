"""Per-layer speed: forward + backward of single layers, ember vs PyTorch, side by side.

Shapes are the hot layers of the BENCH.md workloads:
  * conv2d     Conv2d(32, 64, 3) on 64 x 32 x 26 x 26 (the `cnn` workload's second conv)
  * maxpool2d  MaxPool2d(2) on 64 x 64 x 24 x 24
  * lstm       2-layer LSTM(256, 256, batch_first) on 20 x 35 x 256 (the `lstm` workload)
  * attention  MultiheadAttention(256, 4, batch_first), causal, on 16 x 128 x 256 (`gpt`)
  * layernorm  LayerNorm(256) on 16 x 128 x 256
  * embedding  Embedding(10000, 256) on 20 x 35 ids
  * cross_entropy  700 x 10000 logits (the `lstm` workload's loss)
Each step is forward, a sum-of-outputs loss, and backward into inputs and parameters.
Frameworks alternate inside each repeat; the median over repeats is reported, as a ratio.
Run: `python bench/layers.py [--quick] [--only conv2d,lstm]`.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import ember


def _inputs(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _ids(shape, high, seed=0):
    return np.random.default_rng(seed).integers(0, high, shape)


CASES = {
    "conv2d": dict(input=lambda: _inputs((64, 32, 26, 26)),
                   ember=lambda: ember.nn.Conv2d(32, 64, 3),
                   torch=lambda torch: torch.nn.Conv2d(32, 64, 3)),
    "maxpool2d": dict(input=lambda: _inputs((64, 64, 24, 24)),
                      ember=lambda: ember.nn.MaxPool2d(2),
                      torch=lambda torch: torch.nn.MaxPool2d(2)),
    "lstm": dict(input=lambda: _inputs((20, 35, 256)),
                 ember=lambda: ember.nn.LSTM(256, 256, num_layers=2, batch_first=True),
                 torch=lambda torch: torch.nn.LSTM(256, 256, num_layers=2, batch_first=True),
                 pick=lambda out: out[0]),
    "attention": dict(input=lambda: _inputs((16, 128, 256)),
                      ember=lambda: ember.nn.MultiheadAttention(256, 4, batch_first=True),
                      torch=lambda torch: torch.nn.MultiheadAttention(256, 4,
                                                                      batch_first=True),
                      call=lambda layer, x, mask: layer(x, x, x, attn_mask=mask,
                                                        need_weights=False)[0],
                      causal=True),
    "layernorm": dict(input=lambda: _inputs((16, 128, 256)),
                      ember=lambda: ember.nn.LayerNorm(256),
                      torch=lambda torch: torch.nn.LayerNorm(256)),
    "embedding": dict(input=lambda: _ids((20, 35), 10000), integer=True,
                      ember=lambda: ember.nn.Embedding(10000, 256),
                      torch=lambda torch: torch.nn.Embedding(10000, 256)),
    "cross_entropy": dict(input=lambda: _inputs((700, 10000)),
                          target=lambda: _ids((700,), 10000),
                          ember=lambda: ember.nn.CrossEntropyLoss(),
                          torch=lambda torch: torch.nn.CrossEntropyLoss()),
}


def _step(case, layer, x, extra, backward):
    if "call" in case:
        out = case["call"](layer, x, extra)
    elif extra is not None:
        out = layer(x, extra)
    else:
        out = layer(x)
    out = case.get("pick", lambda value: value)(out)
    backward(out.sum())


def _make_step(case, layer, as_tensor):
    """One forward + backward of `layer` on the case's input; `as_tensor` turns NumPy arrays
    into the framework's tensors (ember.asarray or torch.from_numpy)."""
    data = case["input"]()
    x = as_tensor(data)
    if not case.get("integer"):
        x.requires_grad_(True)
    extra = None
    if case.get("causal"):
        n = data.shape[1]
        extra = as_tensor(np.triu(np.ones((n, n), bool), 1))
    if "target" in case:
        extra = as_tensor(case["target"]())

    def run():
        x.grad = None
        layer.zero_grad()
        _step(case, layer, x, extra, lambda loss: loss.backward())

    return run


def _ember_step(case):
    return _make_step(case, case["ember"](), ember.asarray)


def _torch_step(case, torch):
    return _make_step(case, case["torch"](torch), torch.from_numpy)


def _time(function, number):
    function()  # warm up (Numba compiles, caches fill)
    best = float("inf")
    for _ in range(number):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--number", type=int, default=5, help="calls per repeat (min taken)")
    parser.add_argument("--only", default="", help="comma-separated case names")
    parser.add_argument("--quick", action="store_true", help="one short repeat (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.number = 1, 1
    names = [n for n in CASES if not args.only or n in args.only.split(",")]
    try:
        import torch

        torch.set_num_threads(2)
    except ImportError:
        torch = None
    print(f"per-layer forward+backward, float32, ms (median over {args.repeats} repeats of "
          f"the best of {args.number})")
    print(f"{'layer':<16}{'ember':>10}" + (f"{'torch':>10}{'ember/torch':>13}" if torch else ""))
    for name in names:
        case = CASES[name]
        steps = {"ember": _ember_step(case)}
        if torch is not None:
            steps["torch"] = _torch_step(case, torch)
        times = {key: [] for key in steps}
        for _ in range(args.repeats):
            for key, step in steps.items():
                times[key].append(_time(step, args.number))
        ember_ms = statistics.median(times["ember"])
        line = f"{name:<16}{ember_ms:>10.2f}"
        if torch is not None:
            torch_ms = statistics.median(times["torch"])
            line += f"{torch_ms:>10.2f}{ember_ms / torch_ms:>12.2f}x"
        print(line, flush=True)


if __name__ == "__main__":
    main()
