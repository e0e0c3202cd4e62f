"""The layer table: one `LayerSpec` row per layer configuration; `test_layertable.py` derives
every check from it.

A row builds the ember layer with the options under test, names the parameters and buffers
as PyTorch names them (with their shapes), and gives a NumPy reference written here in the
tests, independent of the implementation: `ref(params, *inputs)` with `params` a dict of
float64 arrays keyed by those names. From each row the suite derives: state-dict names and
shapes equal the PyTorch ones; forward vs the reference in float32 and float64 with
parameters loaded from a dict of NumPy arrays; float64 central-difference gradients for the
inputs and every parameter; a bit-exact state-dict round trip; and, when PyTorch is
installed and the row says how to build the same torch layer, agreement with PyTorch.
Rows live in `table_*.py` beside this file, one per layer family; `collect_rows()` gathers them.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from tests._tables import collect_table_rows


@dataclass
class LayerSpec:
    name: str
    build: Callable                   # () -> ember Module (float32)
    ref: Callable                     # ref(params: dict of float64 arrays, *inputs) -> array(s)
    inputs: tuple                     # input shapes
    params: dict                      # state-dict name -> shape, exactly as PyTorch names them
    make: Callable | None = None      # make(rng, dtype) -> list of input arrays (overrides)
    make_params: dict = field(default_factory=dict)  # name -> fn(rng, shape) for special ones
    grad: tuple | None = None         # input positions to gradient-check (None: floating ones)
    param_grad: bool = True           # also gradient-check every floating parameter
    train: bool = False               # run in training mode
    call: Callable | None = None      # call(module, *inputs) -> output(s); default module(*x)
    torch: Callable | None = None     # () -> the equivalent torch.nn layer (optional check)
    torch_call: Callable | None = None  # call for the torch layer; default: same as call
    domain: tuple = (-1.0, 1.0)       # uniform range for floating inputs
    rtol: float = 1e-5
    atol: float = 1e-6
    grad_atol: float = 1e-5
    grad_rtol: float = 1e-3


def draw_inputs(spec: LayerSpec, dtype: str, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    if spec.make is not None:
        return spec.make(rng, dtype)
    return [rng.uniform(*spec.domain, size=shape).astype(dtype) for shape in spec.inputs]


def draw_params(spec: LayerSpec, module, dtype: str, seed: int = 1) -> dict:
    """Random values for every state-dict entry (floating ones in `dtype`), as NumPy arrays."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, tensor in module.state_dict().items():
        current = tensor.numpy()
        if name in spec.make_params:
            out[name] = np.asarray(spec.make_params[name](rng, current.shape)).astype(
                dtype if current.dtype.kind == "f" else current.dtype)
        elif current.dtype.kind == "f":
            out[name] = rng.uniform(-0.5, 0.5, size=current.shape).astype(dtype)
        else:
            out[name] = current.copy()
    return out


def collect_rows() -> list:
    """Every row of every `table_*.py` module beside this one."""
    return collect_table_rows("tests.nn")

