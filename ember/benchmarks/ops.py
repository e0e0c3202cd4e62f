"""Per-op microbench: the hot ops of the BENCH.md workloads, ember eager vs PyTorch eager.

Each case runs the op forward, and forward + backward (a sum of the output as the loss, so
the backward is the op's own vjp plus one broadcast), on the shapes the workloads use:

  conv2d         F.conv2d, 64 x 32 x 26 x 26 by 64 x 32 x 3 x 3 (`cnn`'s second conv)
  matmul         128 x 784 @ 784 x 512 (`mlp`'s first layer)
  lstm step      one LSTMCell(256, 256) step on batch 20 (`lstm`'s time loop)
  attention      causal scaled_dot_product_attention, 16 x 4 heads x 128 x 64 (`gpt`)
  layernorm      F.layer_norm over 256 on 16 x 128 x 256 (`gpt`)
  softmax-ce     F.cross_entropy on 700 x 10000 logits (`lstm`'s loss)
  adam update    Adam.step() on one 1M-float parameter (forward column; no backward)
  dispatch add   a + b on 8 floats: framework overhead per op

The frameworks alternate (order rotating) inside each repeat; each timing calls the op
enough times to fill about 20 ms; the median over repeats is reported in µs per call.
Run: `python bench/ops.py [--quick] [--only conv2d,matmul]` or `python bench/run.py --ops`.

>>> "dispatch add" in CASES and "adam update" in CASES
True
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def _arrays(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(np.float32) for shape in shapes]


def _conv2d(fw, tensor):
    x, w, b = (tensor(a) for a in _arrays((64, 32, 26, 26), (64, 32, 3, 3), (64,)))
    return [x, w, b], lambda: fw.nn.functional.conv2d(x, w, b)


def _matmul(fw, tensor):
    x, w = (tensor(a) for a in _arrays((128, 784), (784, 512)))
    return [x, w], lambda: x @ w


def _lstm_step(fw, tensor):
    fw.manual_seed(0)
    cell = fw.nn.LSTMCell(256, 256)
    x, h, c = (tensor(a) for a in _arrays((20, 256), (20, 256), (20, 256)))
    return [x, h, c], lambda: cell(x, (h, c))[0]


def _attention(fw, tensor):
    q, k, v = (tensor(a) for a in _arrays(*[(16, 4, 128, 64)] * 3))
    return [q, k, v], lambda: fw.nn.functional.scaled_dot_product_attention(
        q, k, v, is_causal=True)


def _layernorm(fw, tensor):
    x, w, b = (tensor(a) for a in _arrays((16, 128, 256), (256,), (256,)))
    return [x, w, b], lambda: fw.nn.functional.layer_norm(x, (256,), w, b)


def _softmax_ce(fw, tensor):
    (logits,) = (tensor(a) for a in _arrays((700, 10000)))
    target = tensor(np.random.default_rng(1).integers(0, 10000, 700))
    return [logits], lambda: fw.nn.functional.cross_entropy(logits, target)


def _adam(fw, tensor):
    param, grad = _arrays((1 << 20,), (1 << 20,))
    weight = fw.nn.Parameter(tensor(param))
    weight.grad = tensor(grad)
    optimizer = fw.optim.Adam([weight], lr=1e-3)
    return None, optimizer.step


def _add(fw, tensor):
    a, b = (tensor(x) for x in _arrays((8,), (8,)))
    return None, lambda: a + b


CASES = {"conv2d": _conv2d, "matmul": _matmul, "lstm step": _lstm_step,
         "attention": _attention, "layernorm": _layernorm, "softmax-ce": _softmax_ce,
         "adam update": _adam, "dispatch add": _add}


def _calls(fw, tensor, case):
    """(forward, forward + backward or None) of `case` in framework `fw`."""
    leaves, forward = CASES[case](fw, tensor)
    if leaves is None:
        return forward, None
    for leaf in leaves:
        leaf.requires_grad_(True)

    def backward():
        for leaf in leaves:
            leaf.grad = None
        forward().sum().backward()

    def no_grad_forward():
        with fw.no_grad():
            return forward()

    return no_grad_forward, backward


def _frameworks():
    import ember

    frameworks = {"ember": (ember, ember.asarray)}
    try:
        import torch

        torch.set_num_threads(2)
        frameworks["torch"] = (torch, lambda a: torch.from_numpy(np.ascontiguousarray(a)))
    except ImportError:
        pass
    return frameworks


def _per_call(function, budget: float) -> tuple[float, int]:
    """(seconds per call, calls) with the call count sized to fill about `budget` seconds."""
    start = time.perf_counter()
    function()
    once = max(time.perf_counter() - start, 1e-7)
    number = max(1, min(100_000, int(budget / once)))
    start = time.perf_counter()
    for _ in range(number):
        function()
    return (time.perf_counter() - start) / number, number


def bench_case(case: str, repeats: int, budget: float, frameworks=None) -> dict:
    """{framework: (forward µs, forward+backward µs or None)} for one case, alternating."""
    frameworks = frameworks or _frameworks()
    calls = {name: _calls(fw, tensor, case) for name, (fw, tensor) in frameworks.items()}
    for forward, backward in calls.values():  # warm-up: Numba compiles, caches, allocator
        for function in filter(None, (forward, backward)):
            function()
            function()
    times = {name: ([], []) for name in calls}
    names = list(calls)
    for round_ in range(repeats):
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            for slot, function in enumerate(calls[name]):
                if function is not None:
                    times[name][slot].append(_per_call(function, budget)[0])
    return {name: tuple(statistics.median(v) * 1e6 if v else None for v in values)
            for name, values in times.items()}


def _cell(value, width=11, digits=1):
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


def _ratio(a, b):
    return f"{'-':>8}" if a is None or b is None else f"{a / b:>7.2f}x"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated case names")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="one short repeat (smoke run)")
    args = parser.parse_args(argv)
    repeats, budget = (1, 0.002) if args.quick else (args.repeats, 0.02)
    names = [n for n in CASES if not args.only or n in args.only.split(",")]
    frameworks = _frameworks()
    torch = "torch" in frameworks
    print(f"per-op µs per call, float32, median of {repeats} repeats, frameworks alternating "
          "(fwd: forward under no_grad; fwd+bwd: forward, sum, backward)")
    header = f"{'op':<14}{'ember fwd':>11}" + (f"{'torch fwd':>11}{'ratio':>8}" if torch else "")
    header += f"{'ember f+b':>11}" + (f"{'torch f+b':>11}{'ratio':>8}" if torch else "")
    print(header)
    for name in names:
        result = bench_case(name, repeats, budget, frameworks)
        (ember_f, ember_b), (torch_f, torch_b) = result["ember"], result.get("torch",
                                                                             (None, None))
        line = f"{name:<14}{_cell(ember_f)}"
        line += f"{_cell(torch_f)}{_ratio(ember_f, torch_f)}" if torch else ""
        line += _cell(ember_b)
        line += f"{_cell(torch_b)}{_ratio(ember_b, torch_b)}" if torch else ""
        print(line, flush=True)
    if not torch:
        print("(PyTorch not installed: ember only)")
    return 0


if __name__ == "__main__":
    main()
