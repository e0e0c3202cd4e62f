"""Run a Graph on concrete arrays: an interpreter calling each node's `prim.forward`.

The plan is computed once per graph: for each node, the backend module (`xp`) and which
values die after it, so intermediate arrays are freed as soon as their last user has run
(peak memory follows the live set, not the whole graph). Fused kernels replace groups of
nodes later; this interpreter stays the reference they are tested against.
"""
from __future__ import annotations

import numpy as np

from ember._core.device import CPU
from ember._core.errors import EmberError
from ember._core.primitive import WithResiduals, explain_failure
from ember._core.tensor import Tensor
from ember.jit.ir import Graph, Value


class Executable:
    """A graph prepared for repeated runs: `Executable(graph)(*arrays) -> list of arrays`.

    >>> import numpy as np, ember
    >>> from ember.jit.trace import Tracer
    >>> from ember._core.primitive import AbstractValue, tracing
    >>> tracer = Tracer("double")
    >>> x = tracer.new_input(AbstractValue((3,), ember.float32))
    >>> with tracing(tracer):
    ...     y = x * 2
    >>> tracer.graph.outputs = [y._data.value]
    >>> Executable(tracer.graph)(np.ones(3, np.float32))
    [array([2., 2., 2.], dtype=float32)]
    """

    def __init__(self, graph: Graph, check_types: bool = False):
        self.graph = graph
        self.check_types = check_types  # compare every result with its Value's aval
        self._steps = []
        outputs = {value.id for value in graph.outputs}
        last_use: dict[int, int] = {}
        for position, node in enumerate(graph.nodes):
            for operand in node.inputs:
                if isinstance(operand, Value):
                    last_use[operand.id] = position
        dying: list[list[int]] = [[] for _ in graph.nodes]
        for value_id, position in last_use.items():
            if value_id not in outputs:
                dying[position].append(value_id)
        for node, dead in zip(graph.nodes, dying):
            device = next((operand.aval.device for operand in node.inputs
                           if isinstance(operand, Value)), CPU)
            # never-used outputs die at once (dead code elimination comes as a pass)
            unused = [value.id for value in node.outputs
                      if value.id not in last_use and value.id not in outputs]
            self._steps.append((node, device, tuple(dead) + tuple(unused)))

    def __call__(self, *arrays) -> list:
        graph = self.graph
        if len(arrays) != len(graph.inputs):
            raise EmberError(f"{graph.name}: expected {len(graph.inputs)} inputs, "
                             f"got {len(arrays)}")
        env = {value.id: array for value, array in zip(graph.inputs, arrays)}
        for value, tensor in graph.captures:
            env[value.id] = tensor._data  # read live: in-place updates are seen
        for node, device, dead in self._steps:
            raw = [env[operand.id] if isinstance(operand, Value) else operand
                   for operand in node.inputs]
            try:
                result = node.prim.forward(device.xp, *raw, **node.params)
            except EmberError:
                raise
            except Exception as error:
                args = [Tensor(array, device) if isinstance(operand, Value) else array
                        for operand, array in zip(node.inputs, raw)]
                raise explain_failure(node.prim, args, node.params, error) from error
            if type(result) is WithResiduals:
                saved = result.residuals if node.residuals else ()
                result = result.outputs
                results = (tuple(result) if node.multiple else (result,)) + tuple(saved)
            else:
                results = result if node.multiple else (result,)
            for value, array in zip(node.outputs, results):
                if device is CPU and type(array) is not np.ndarray:
                    array = np.asarray(array)  # NumPy returns scalars for 0-d results
                env[value.id] = array
            if self.check_types:
                _check_results(node, results)
            for value_id in dead:
                del env[value_id]
        return [env[value.id] for value in graph.outputs]


def _check_results(node, results) -> None:
    """Raise when a node's arrays differ from the shapes and dtypes its Values promise."""
    if len(results) != len(node.outputs):
        raise EmberError(f"{node.prim.name} returned {len(results)} arrays for "
                         f"{len(node.outputs)} graph values")
    for value, array in zip(node.outputs, results):
        if tuple(array.shape) != tuple(value.aval.shape) or array.dtype != value.aval.dtype.np:
            raise EmberError(f"{node.prim.name}: {value!r} should be {value.aval!r}, the "
                             f"forward gave {array.dtype}{list(array.shape)}")
