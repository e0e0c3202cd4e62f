"""The op table: one `OpSpec` row per op; `test_optable.py` derives every check from it.

A row names the ember function, a NumPy reference, the input shapes of each case, the
dtypes for the forward check, and how inputs are drawn. From each row the suite derives:
forward vs NumPy per case and dtype, a float64 central-difference gradient check for every
differentiable input, and (when `double=True`) a double-backward check. Rows live in the
`table_*.py` modules beside this file, one per op family; `collect_rows()` gathers them.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from tests._tables import collect_table_rows


@dataclass
class OpSpec:
    name: str
    fn: Callable                      # ember: fn(*tensors) -> Tensor or tuple of Tensors
    ref: Callable                     # NumPy: ref(*arrays) -> array or tuple of arrays
    shapes: list                      # cases: each a tuple of input shapes
    dtypes: tuple = ("float32", "float64")
    domain: tuple = (-2.0, 2.0)       # uniform range for floating inputs
    make: Callable | None = None      # make(rng, shapes, dtype) -> list of arrays (overrides)
    grad: tuple | None = None         # inputs to gradient-check (None: every floating input)
    double: bool = False              # also check double backward
    check_dtype: bool = True          # compare the result dtype with the reference's
    rtol: float = 1e-5
    atol: float = 1e-6
    grad_atol: float = 1e-5
    grad_rtol: float = 1e-3
    marks: list = field(default_factory=list)


def draw_inputs(spec: OpSpec, shapes, dtype: str, seed: int = 0) -> list:
    """Inputs for one case: `spec.make` when given, else uniform draws in `spec.domain`."""
    rng = np.random.default_rng(seed)
    if spec.make is not None:
        return spec.make(rng, shapes, dtype)
    np_dtype = np.dtype(dtype) if dtype != "bfloat16" else np.dtype("float32")
    arrays = []
    for shape in shapes:
        if np_dtype.kind == "f":
            arrays.append(rng.uniform(*spec.domain, size=shape).astype(np_dtype))
        elif np_dtype.kind == "b":
            arrays.append(rng.random(size=shape) < 0.5)
        else:
            low = 0 if np_dtype.kind == "u" else -5
            arrays.append(rng.integers(low, 6, size=shape).astype(np_dtype))
    return arrays


def collect_rows() -> list:
    """Every row of every `table_*.py` module beside this one."""
    return collect_table_rows("tests.ops")

