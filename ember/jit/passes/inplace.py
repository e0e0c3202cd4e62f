"""In-place planning for fused kernels: which outputs may be written into an operand's array.

Two cases, both decided once per compiled graph, before its kernels are generated (a kernel
that writes in place is generated that way, so LLVM sees one array read and written at the
same index and still vectorizes the loop):

- state updates (`plan_state_updates`): a parameter's or optimizer state's new value is
  computed straight into the tensor's storage instead of a new array copied back after the
  run (an Adam step then touches each of its arrays once);
- buffer reuse (`plan_buffer_reuse`): an intermediate array whose last reader is a fused
  kernel of the same shape and dtype becomes that kernel's output, so the step allocates
  less and its peak memory falls.

Writing output element i into operand element i is safe in an elementwise loop: element i of
every operand is read before it is written, and no other element depends on it.
"""
from __future__ import annotations

from ember.jit.ir import Graph, Value
from ember.jit.kernels import FusedElementwise
from ember.jit.passes._rewrite import output_ids, reader_positions


def _candidate(node, operand, value) -> bool:
    """`value` (an output of fused `node`) may be written into `operand`'s array."""
    prim = node.prim
    return (isinstance(prim, FusedElementwise) and prim._plan is None
            and (prim.region.reduce is None or value is not prim.region.reduce.outputs[0])
            and operand.aval == value.aval and tuple(operand.aval.shape) == prim.region.shape
            and sum(item is operand for item in node.inputs) == 1
            and list(node.outputs).index(value) not in prim.inplace
            and list(node.inputs).index(operand) not in prim.inplace.values()
            and not any(_reads(item, operand) for item in node.inputs if item is not operand))


def _reads(operand, value) -> bool:
    """True when `operand` is computed directly from `value` (it may be a view of it)."""
    producer = getattr(operand, "producer", None)
    return producer is not None and any(item is value for item in producer.inputs)


def _assign(node, operand, value) -> None:
    node.prim.inplace[list(node.outputs).index(value)] = list(node.inputs).index(operand)


def state_finals(graph: Graph, state_targets) -> list:
    """The graph values holding the new contents of `state_targets` (its last outputs)."""
    return graph.outputs[len(graph.outputs) - len(state_targets):]


def plan_state_updates(graph: Graph, state_targets) -> int:
    """Fused kernels computing a state tensor's new value from its captured value (read once,
    elementwise, nothing reading the old value later) write it into the tensor's storage.
    `state_targets` are the tensors whose new values are the last graph outputs. Returns how
    many outputs were planned in place."""
    if not state_targets:
        return 0
    capture_of = {id(tensor): value for value, tensor in graph.captures}
    position_of = {id(node): position for position, node in enumerate(graph.nodes)}
    readers = reader_positions(graph)
    outputs = [value.id for value in graph.outputs]
    finals = state_finals(graph, state_targets)
    planned = 0
    for tensor, value in zip(state_targets, finals):
        node, old = value.producer, capture_of.get(id(tensor))
        if node is None or old is None or not _candidate(node, old, value):
            continue
        if (outputs.count(value.id) != 1 or old.id in outputs
                or readers.get(old.id, [None])[-1] != position_of.get(id(node))):
            continue
        _assign(node, old, value)
        planned += 1
    return planned


def plan_buffer_reuse(graph: Graph) -> int:
    """Fused kernels write an output into an operand array that dies with them: one made by
    another fused kernel (a fresh array, not a view, not written into state), read only by
    fused kernels (no view of it can outlive its last reader), and not a graph output.
    Returns how many outputs reuse a buffer."""
    outputs = output_ids(graph)
    readers = reader_positions(graph)
    planned = 0
    for position, node in enumerate(graph.nodes):
        if not isinstance(node.prim, FusedElementwise):
            continue
        for operand in node.inputs:
            producer = getattr(operand, "producer", None)
            if (not isinstance(operand, Value) or producer is None
                    or not isinstance(producer.prim, FusedElementwise)
                    or operand.id in outputs
                    or list(producer.outputs).index(operand) in producer.prim.inplace
                    or readers[operand.id][-1] != position
                    or not all(isinstance(graph.nodes[p].prim, FusedElementwise)
                               for p in readers[operand.id])):
                continue
            value = next((value for value in node.outputs
                          if _candidate(node, operand, value)), None)
            if value is not None:
                _assign(node, operand, value)
                planned += 1
    return planned


# Primitives whose results never share memory with their operands (others may return views).
FRESH_RESULTS = frozenset({
    "dense", "matmul", "matmul_t", "sum", "convolution", "softmax", "softmax_cross_entropy",
    "softmax_cross_entropy_bias", "softmax_cross_entropy_grad", "normalize", "normalize_grad",
    "scaled_dot_product_attention", "scaled_dot_product_attention_grad", "lstm_sequence",
    "lstm_sequence_grad", "gru_sequence", "gru_sequence_grad", "embedding", "embedding_grad"})


def plan_persistent_buffers(graph: Graph) -> int:
    """Fused kernel outputs that cannot escape a run (no graph output is, or may be a view
    of, them) get buffers allocated once and reused by every run. Returns how many."""
    escaping = set(output_ids(graph))
    for node in reversed(graph.nodes):
        if not any(value.id in escaping for value in node.outputs):
            continue
        if isinstance(node.prim, FusedElementwise):
            for out_index, operand_index in node.prim.inplace.items():
                if node.outputs[out_index].id in escaping:  # written over that operand
                    escaping.add(node.inputs[operand_index].id)
        elif node.prim.name not in FRESH_RESULTS:  # a result may be a view of an operand
            escaping.update(operand.id for operand in node.inputs if isinstance(operand, Value))
    planned = 0
    for node in graph.nodes:
        prim = node.prim
        if not isinstance(prim, FusedElementwise) or prim._plan is not None:
            continue
        reduced = prim.region.reduce.outputs[0].id if prim.region.reduce is not None else None
        for index, value in enumerate(node.outputs):
            if value.id not in escaping and index not in prim.inplace and value.id != reduced:
                prim.persistent.add(index)
                planned += 1
    return planned
