"""Eager dispatch overhead: microseconds per small op, ember vs PyTorch, side by side.

Measures on small tensors (16x16 float32), where the time is all framework overhead:
  * `a + b`                            one primitive, no graph
  * `(a * b).sum().backward()`         two primitives forward, their vjps, leaf accumulation
Frameworks alternate inside each repeat and the median of per-repeat minima is reported, so
noise on a shared machine hits both alike. Run: `python bench/dispatch.py`.
"""
from __future__ import annotations

import argparse
import statistics
import timeit

import numpy as np

import ember


def _ember_cases(size):
    rng = np.random.default_rng(0)
    a = ember.asarray(rng.standard_normal((size, size)).astype(np.float32))
    b = ember.asarray(rng.standard_normal((size, size)).astype(np.float32))
    ga, gb = a.detach().requires_grad_(), b.detach().requires_grad_()

    def backward():
        (ga * gb).sum().backward()

    return {"a + b": lambda: a + b, "(a * b).sum().backward()": backward}


def _torch_cases(size):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(2)
    a, b = torch.randn(size, size), torch.randn(size, size)
    ga, gb = a.clone().requires_grad_(), b.clone().requires_grad_()

    def backward():
        (ga * gb).sum().backward()

    return {"a + b": lambda: a + b, "(a * b).sum().backward()": backward}


def _time(function, number):
    return min(timeit.repeat(function, number=number, repeat=3)) / number * 1e6


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="few iterations (CI smoke)")
    args = parser.parse_args(argv)
    number = {"a + b": 20000, "(a * b).sum().backward()": 3000}
    if args.quick:
        number = {key: 200 for key in number}
        args.repeats = 2
    frameworks = {"ember": _ember_cases(args.size)}
    torch_cases = _torch_cases(args.size)
    if torch_cases is not None:
        frameworks["torch"] = torch_cases
    results = {name: {case: [] for case in number} for name in frameworks}
    for _ in range(args.repeats):
        for case in number:
            for name, cases in frameworks.items():
                results[name][case].append(_time(cases[case], number[case]))
    print(f"eager dispatch overhead, {args.size}x{args.size} float32, median of "
          f"{args.repeats} repeats (µs per call)")
    header = f"{'case':<28}{'ember':>10}"
    if "torch" in frameworks:
        header += f"{'torch':>10}{'ember/torch':>13}"
    print(header)
    for case in number:
        ember_us = statistics.median(results["ember"][case])
        line = f"{case:<28}{ember_us:>10.2f}"
        if "torch" in frameworks:
            torch_us = statistics.median(results["torch"][case])
            line += f"{torch_us:>10.2f}{ember_us / torch_us:>13.2f}"
        print(line)
    if "torch" not in frameworks:
        print("(PyTorch not installed: `pip install torch==2.13.0` to compare)")


if __name__ == "__main__":
    main()
