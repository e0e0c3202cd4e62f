"""The computation graph of a model or function, recorded from one run, drawn as Graphviz DOT.

How the graph is recorded, and why: the compiler's IR does not exist yet, so the graph comes
from running the model once under ember's tracer hook (`ember._core.primitive.tracing`), which
routes every primitive application to `_Recorder.process`. The recorder computes each value
eagerly (it calls `apply` with tracing switched off) and notes one node per application, so
the graph shows the real ops (`dense`, `relu`, `conv2d`, ...) rather than one box per layer,
and it sees ops written inline in a `forward` that module hooks alone would miss. Forward
pre/post hooks on every submodule keep a stack of module paths, so each op lands in the
cluster of the module that ran it (`encoder.layers.0`). When the compiler lands, `record`
should read its IR instead; `draw` and `SummaryWriter.add_graph` only consume the `Graph`.

Nodes, in the order they are first needed: one per example input, one per parameter or buffer
an op reads (in its module's cluster), one per other tensor an op reads that no recorded op
made ('constant'), one per primitive application or in-place write ('op'), and one per
output tensor. Edges carry the tensor's shape.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from dataclasses import dataclass, field

from ember._core.autograd import no_grad
from ember._core.errors import EmberError
from ember._core.primitive import apply, tracing
from ember._core.tensor import Tensor

_KIND_STYLE = {
    "input": 'shape=ellipse, fillcolor="#d9f2d9"',
    "output": 'shape=ellipse, fillcolor="#f9e0c7"',
    "parameter": 'shape=note, fillcolor="#eeeeee"',
    "buffer": 'shape=note, fillcolor="#f5f5dc"',
    "constant": 'shape=note, fillcolor="#ffffff"',
    "op": 'fillcolor="#dbe8f6"',
}


@dataclass
class GraphNode:
    """One node: `kind` is input/parameter/buffer/constant/op/output; `scope` the path of the
    module it belongs to ('' at top level); `inputs` (node id, shape) per incoming edge;
    `shapes`/`dtypes` per output."""

    id: str
    kind: str
    label: str
    scope: str
    inputs: list = field(default_factory=list)
    shapes: list = field(default_factory=list)
    dtypes: list = field(default_factory=list)


@dataclass
class Graph:
    """The recorded graph: nodes in creation order and `scopes` (module path -> class name)."""

    name: str
    nodes: list
    scopes: dict

    def to_dot(self) -> str:
        """Graphviz DOT text, module scopes as nested clusters."""
        lines = [f"digraph {_quote(self.name)} {{",
                 '  graph [rankdir=TB, fontname="Helvetica", fontsize=10];',
                 '  node [shape=box, style="rounded,filled", fontname="Helvetica", '
                 'fontsize=10];',
                 '  edge [fontname="Helvetica", fontsize=9];']
        by_scope: dict[str, list] = {}
        first_seen: dict[str, int] = {}  # clusters in the order the run entered them
        for index, node in enumerate(self.nodes):
            by_scope.setdefault(node.scope, []).append(node)
            scope = node.scope
            while scope and scope not in first_seen:
                first_seen[scope] = index
                scope = _parent(scope)
        ordered = sorted(first_seen, key=lambda scope: (first_seen[scope], scope.count(".")))
        cluster_ids = {scope: f"cluster_{index}" for index, scope in enumerate(ordered)}

        def emit(scope: str, indent: str):
            for node in by_scope.get(scope, []):
                lines.append(f"{indent}{node.id} [label={_quote(_node_label(node))}, "
                             f"{_KIND_STYLE[node.kind]}];")
            for child in (s for s in ordered if _parent(s) == scope):
                kind = self.scopes.get(child, "")
                title = f"{child}: {kind}" if kind else child
                lines.append(f"{indent}subgraph {cluster_ids[child]} {{")
                lines.append(f"{indent}  label={_quote(title)};")
                emit(child, indent + "  ")
                lines.append(f"{indent}}}")

        emit("", "  ")
        for node in self.nodes:
            for source, shape in node.inputs:
                lines.append(f"  {source} -> {node.id} [label={_quote(_shape_text(shape))}];")
        lines.append("}")
        return "\n".join(lines) + "\n"


@dataclass
class Drawing:
    """What `draw` wrote: the DOT file always; `image` (SVG/PNG/PDF) only when Graphviz's
    `dot` is installed, else None with `message` saying so."""

    graph: Graph
    dot: str
    image: str | None
    message: str


def _quote(text: str) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _shape_text(shape) -> str:
    return "[" + ", ".join(str(size) for size in shape) + "]"


def _node_label(node: GraphNode) -> str:
    if node.kind in ("op", "output"):
        return node.label + "\n" + ", ".join(_shape_text(shape) for shape in node.shapes)
    return f"{node.label}\n{node.dtypes[0]}{_shape_text(node.shapes[0])}"


def _parent(scope: str) -> str:
    return scope.rpartition(".")[0]


class _Recorder:
    """The tracer: computes every primitive eagerly and records one node per application."""

    def __init__(self, named: dict):
        self.named = named      # id(tensor) -> (kind, name, scope) for params and buffers
        self.nodes: list[GraphNode] = []
        self.produced: dict[int, str] = {}  # id(tensor) -> id of the node that made it
        self.alive: list = []   # every tensor seen, kept alive so ids are never reused
        self.stack: list[str] = [""]

    def node(self, kind: str, label: str, scope: str, inputs, outputs) -> GraphNode:
        edges = [(self.source(tensor), tuple(tensor.shape)) for tensor in inputs]
        node = GraphNode(f"n{len(self.nodes)}", kind, label, scope, edges,
                         [tuple(out.shape) for out in outputs],
                         [out.dtype.name for out in outputs])
        self.nodes.append(node)
        for out in outputs:
            self.alive.append(out)
            self.produced[id(out)] = node.id
        return node

    def source(self, tensor: Tensor) -> str:
        """The node that made `tensor`; a parameter/buffer/constant node on first sight."""
        known = self.produced.get(id(tensor))
        if known is not None:
            return known
        kind, name, scope = self.named.get(id(tensor), ("constant", None, self.stack[-1]))
        if name is None:
            name = repr(tensor.item()) if tensor.ndim == 0 else "constant"
        return self.node(kind, name, scope, [], [tensor]).id

    def process(self, prim, args, params):
        with tracing(None):
            result = apply(prim, *args, **params)
        outputs = result if isinstance(result, tuple) else (result,)
        self.node("op", prim.name, self.stack[-1],
                  [arg for arg in args if isinstance(arg, Tensor)], outputs)
        return result

    def assign(self, target, value):
        from ember._methods import assign

        self.alive.append(value)
        with tracing(None):
            assign(target, value)
        self._overwritten("assign", target, [target, value])

    def setitem(self, x, key, value):
        from ember.ops.indexing import setitem

        with tracing(None):
            setitem(x, key, value)
        self._overwritten("setitem", x, [x] + ([value] if isinstance(value, Tensor) else []))

    def _overwritten(self, label: str, target, inputs):
        # The written tensor now holds a new value: later reads come from this node.
        self.node("op", label, self.stack[-1], inputs, [target])


def _as_tensors(example_inputs) -> tuple:
    from ember.ops.creation import asarray

    parts = example_inputs if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    return tuple(part if isinstance(part, Tensor) else asarray(part) for part in parts)


def _flatten(output) -> list:
    if isinstance(output, Tensor):
        return [output]
    if isinstance(output, dict):
        output = list(output.values())
    if isinstance(output, (tuple, list)):
        return [leaf for part in output for leaf in _flatten(part)]
    return []


def record(model_or_function, example_inputs, training: bool = False) -> Graph:
    """Run `model_or_function(*example_inputs)` once without gradients and return its graph.

    A Module runs in eval mode unless `training=True`; either way every module's mode, the
    buffers (BatchNorm's running statistics) and the default random generator are restored
    afterwards, so recording leaves the model and the random stream as they were.

    >>> import ember
    >>> model = ember.nn.Sequential(ember.nn.Linear(4, 3), ember.nn.Tanh())
    >>> [node.label for node in record(model, ember.ones((2, 4))).nodes]
    ['input 0', '0.weight', '0.bias', 'dense', 'tanh', 'output 0']
    """
    from ember import random
    from ember.nn.module import Module

    inputs = _as_tensors(example_inputs)
    is_module = isinstance(model_or_function, Module)
    modules = list(model_or_function.named_modules()) if is_module else []
    named = {}
    if is_module:
        for kind, members in (("parameter", model_or_function.named_parameters()),
                              ("buffer", model_or_function.named_buffers())):
            for name, tensor in members:
                named.setdefault(id(tensor), (kind, name, _parent(name)))
    recorder = _Recorder(named)
    for index, tensor in enumerate(inputs):
        recorder.node("input", f"input {index}", "", [], [tensor])
    def enter(module, args):
        recorder.stack.append(paths[id(module)])

    def leave(module, args, output):
        recorder.stack.pop()  # returns None: a hook's return value would replace the output

    paths = {id(module): path for path, module in modules}
    handles = []
    for _, module in modules[1:]:  # the root's ops are the top level
        handles += [module.register_forward_pre_hook(enter),
                    module.register_forward_hook(leave)]
    modes = [(module, module.training) for _, module in modules]
    buffers = [(tensor, tensor._data.copy()) for _, tensor in
               (model_or_function.named_buffers() if is_module else [])]
    rng_state = random.default_generator.get_state()
    if is_module:
        model_or_function.train(training)
    try:
        with no_grad(), tracing(recorder):
            output = model_or_function(*inputs)
    finally:
        for handle in handles:
            handle.remove()
        for module, mode in modes:
            object.__setattr__(module, "training", mode)
        for tensor, data in buffers:
            tensor._data[...] = data
        random.default_generator.set_state(rng_state)
    for index, tensor in enumerate(_flatten(output)):
        recorder.node("output", f"output {index}", "", [tensor], [tensor])
    name = type(model_or_function).__name__ if is_module else \
        getattr(model_or_function, "__name__", "function")
    return Graph(name, recorder.nodes, {path: type(module).__name__ for path, module in modules
                                        if path})


def draw(model_or_function, example_inputs, path, training: bool = False) -> Drawing:
    """Draw the computation graph of one run of `model_or_function(*example_inputs)`.

    Always writes Graphviz DOT next to `path` (`model.svg` -> `model.dot`); when `path`
    ends in .svg, .png or .pdf and Graphviz's `dot` program is installed, also renders
    that file. Without `dot` a warning says so and `Drawing.image` is None. Module names
    become nested clusters; edges are labelled with tensor shapes (see `record`).

    >>> import ember, tempfile, os
    >>> model = ember.nn.Sequential(ember.nn.Linear(4, 3), ember.nn.Tanh())
    >>> folder = tempfile.mkdtemp()
    >>> drawing = draw(model, ember.ones((2, 4)), os.path.join(folder, 'model.dot'))
    >>> os.path.basename(drawing.dot), len(drawing.graph.nodes)
    ('model.dot', 6)
    """
    path = os.fspath(path)
    stem, extension = os.path.splitext(path)
    image_format = extension.lower().lstrip(".")
    if image_format not in ("", "dot", "gv", "svg", "png", "pdf"):
        raise EmberError(f"draw: cannot write {path!r}; expected a path ending in .dot, "
                         f".svg, .png or .pdf (or no extension for DOT only)")
    graph = record(model_or_function, example_inputs, training)
    dot_path = stem + ".dot"
    folder = os.path.dirname(os.path.abspath(dot_path))
    os.makedirs(folder, exist_ok=True)
    with open(dot_path, "w", encoding="utf-8") as file:
        file.write(graph.to_dot())
    if image_format in ("", "dot", "gv"):
        return Drawing(graph, dot_path, None, f"wrote {dot_path}")
    program = shutil.which("dot")
    if program is None:
        message = (f"wrote {dot_path}; rendering {path} needs Graphviz's `dot` program, which "
                   f"is not installed (apt install graphviz, or render the .dot elsewhere)")
        warnings.warn(f"draw: {message}", stacklevel=2)
        return Drawing(graph, dot_path, None, message)
    completed = subprocess.run([program, f"-T{image_format}", dot_path, "-o", path],
                               capture_output=True, text=True, timeout=120)
    if completed.returncode != 0:
        raise EmberError(f"draw: Graphviz failed to render {dot_path} as {image_format}: "
                         f"{completed.stderr.strip()}")
    return Drawing(graph, dot_path, path, f"wrote {dot_path} and {path}")
