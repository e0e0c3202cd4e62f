"""Bias folding: a dense layer's bias add moves into the softmax cross-entropy that reads it.

`dense(x, W, b)` adds b over its whole (M, C) output in a pass of its own after the GEMM: for
a language model's decoder (700 x 10000 float32 logits) that is 2-3 ms of a step. When the
loss is the only reader of the logits, which holds after differentiation (the loss's
backward reads its saved exponentials, not the logits), the pass rewrites the pair to
`dense(x, W, None)` and `softmax_cross_entropy_bias(z, b, target)`, whose row kernel adds the
bias as it reads each row. The bias gradient is untouched: it is the sum of the logits'
gradient either way.
"""
from __future__ import annotations

from ember.jit.ir import Graph, Value
from ember.jit.passes._rewrite import output_ids, reader_positions, rebuild
from ember.ops.dense import DENSE
from ember.ops.softmax import SOFTMAX_CE, SOFTMAX_CE_BIAS


def fold_bias(graph: Graph) -> Graph:
    """A copy of `graph` with dense biases folded into the cross-entropies reading them.

    >>> import ember
    >>> from ember._core.primitive import AbstractValue
    >>> g = Graph("f")
    >>> x = g.add_input(AbstractValue((4, 3), ember.float32))
    >>> w = g.add_input(AbstractValue((5, 3), ember.float32))
    >>> b = g.add_input(AbstractValue((5,), ember.float32))
    >>> t = g.add_input(AbstractValue((4,), ember.int64))
    >>> (y,) = g.add_node(DENSE, (x, w, b), {}).outputs
    >>> (loss,) = g.add_node(SOFTMAX_CE, (y, t), {"ignore_index": -100}).outputs
    >>> g.outputs = [loss]
    >>> print(fold_bias(g))
    graph f(%0: float32[4, 3], %1: float32[5, 3], %2: float32[5], %3: int64[4]):
      %4 = dense(%0, %1, None) : float32[4, 5]
      %5 = softmax_cross_entropy_bias(%4, %2, %3, ignore_index=-100) : float32[4]
      return %5
    """
    readers = reader_positions(graph)
    results = output_ids(graph)
    made_at = {value.id: position for position, node in enumerate(graph.nodes)
               for value in node.outputs}
    nodes = list(graph.nodes)
    changed = False
    for position, node in enumerate(graph.nodes):
        if node.prim is not SOFTMAX_CE or not isinstance(node.inputs[0], Value):
            continue
        logits = node.inputs[0]
        at = made_at.get(logits.id)
        producer = None if at is None else graph.nodes[at]
        if producer is None or producer.prim is not DENSE or \
                readers.get(logits.id) != [position] or logits.id in results:
            continue
        bias = producer.inputs[2]
        if not isinstance(bias, Value) or bias.aval.dtype != logits.aval.dtype:
            continue  # none, a constant, or another dtype (the dense add casts it)
        nodes[at] = producer.copy(producer.inputs[:2] + (None,))
        folded = node.copy((logits, bias) + tuple(node.inputs[1:]))
        folded.prim = SOFTMAX_CE_BIAS
        nodes[position] = folded
        changed = True
    return rebuild(graph, nodes, {}) if changed else graph
