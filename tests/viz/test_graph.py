"""draw/record: the DOT file parses, and its nodes, edges and clusters match the model."""
from __future__ import annotations

import os
import re
import stat

import numpy as np
import pytest

import ember
from ember import nn
from ember._core.errors import EmberError
from ember.viz import draw, record
from ember.viz import graph as graph_module

# ---- a small DOT parser (the subset of the grammar the writer may use) ----------------------
_TOKEN = re.compile(r'\s*(?:(->)|([{}\[\];,=])|"((?:[^"\\]|\\.)*)"|([A-Za-z_][\w.]*|-?\d+\.?\d*))')


def _tokens(text: str) -> list:
    tokens, position = [], 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        assert match, f"DOT: cannot read {text[position:position + 30]!r}"
        tokens.append(next(group for group in match.groups() if group is not None)
                      if match.group(3) is None else ("string", match.group(3)))
        position = match.end()
    return tokens


class _Dot:
    """digraph ID { stmt* } with node, edge, attribute and subgraph statements."""

    def __init__(self, text: str):
        self.tokens = _tokens(text)
        self.position = 0
        self.nodes: dict[str, dict] = {}   # id -> attributes
        self.edges: list[tuple] = []
        self.clusters: dict[str, list] = {}  # subgraph id -> node ids directly inside
        assert self.take() == "digraph"
        self.identifier()
        self.statements(None)
        assert self.position == len(self.tokens), "DOT: text after the closing brace"

    def take(self):
        assert self.position < len(self.tokens), "DOT: unexpected end (unbalanced braces?)"
        token = self.tokens[self.position]
        self.position += 1
        return token

    def peek(self):
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def identifier(self) -> str:
        token = self.take()
        if isinstance(token, tuple):
            return token[1]
        assert token not in "{}[];,=->", f"DOT: expected an identifier, got {token!r}"
        return token

    def attributes(self) -> dict:
        found = {}
        if self.peek() != "[":
            return found
        self.take()
        while self.peek() != "]":
            key = self.identifier()
            assert self.take() == "="
            found[key] = self.identifier()
            if self.peek() in (",", ";"):
                self.take()
        self.take()
        return found

    def statements(self, cluster):
        assert self.take() == "{", "DOT: expected '{'"
        while self.peek() != "}":
            self.statement(cluster)
            if self.peek() == ";":
                self.take()
        self.take()

    def statement(self, cluster):
        if self.peek() == "subgraph":
            self.take()
            name = self.identifier()
            self.clusters[name] = []
            self.statements(name)
            return
        if self.peek() in ("graph", "node", "edge"):
            self.take()
            self.attributes()
            return
        first = self.identifier()
        if self.peek() == "=":
            self.take()
            self.identifier()
            return
        chain = [first]
        while self.peek() == "->":
            self.take()
            chain.append(self.identifier())
        attributes = self.attributes()
        if len(chain) == 1:
            assert first not in self.nodes, f"DOT: node {first} declared twice"
            self.nodes[first] = attributes
            if cluster is not None:
                self.clusters[cluster].append(first)
        else:
            self.edges += [(a, b, attributes) for a, b in zip(chain, chain[1:])]


def test_dot_parser_rejects_broken_text():
    with pytest.raises(AssertionError):
        _Dot('digraph g { a [label="x"]; ')
    with pytest.raises(AssertionError):
        _Dot("digraph g { a -> ; }")
    assert len(_Dot('digraph "g" { a; b [label="x\\ny"]; a -> b; }').edges) == 1


# ---- the graphs ------------------------------------------------------------------------------
def _mlp():
    ember.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))


def _labels(dot: _Dot) -> list:
    return [attributes["label"].split("\\n")[0] for attributes in dot.nodes.values()]


def test_mlp_dot_has_one_node_per_input_parameter_op_and_output(tmp_path):
    drawing = draw(_mlp(), ember.ones((5, 4)), tmp_path / "mlp.dot")
    assert drawing.dot == os.fspath(tmp_path / "mlp.dot") and drawing.image is None
    dot = _Dot((tmp_path / "mlp.dot").read_text())
    # 1 input + 4 parameters + 3 ops (dense, tanh, dense) + 1 output.
    assert len(dot.nodes) == 9
    assert sorted(_labels(dot)) == sorted(["input 0", "0.weight", "0.bias", "dense", "tanh",
                                           "2.weight", "2.bias", "dense", "output 0"])
    # dense <- (x, weight, bias) twice, tanh <- dense, output <- dense.
    assert len(dot.edges) == 8
    assert all(a in dot.nodes and b in dot.nodes for a, b, _ in dot.edges)
    assert len(dot.clusters) == 3
    by_label = {name: sorted(dot.nodes[node]["label"].split("\\n")[0] for node in nodes)
                for name, nodes in dot.clusters.items()}
    assert sorted(by_label.values()) == [["0.bias", "0.weight", "dense"],
                                         ["2.bias", "2.weight", "dense"], ["tanh"]]
    shapes = sorted(attributes["label"] for _, _, attributes in dot.edges)
    assert shapes.count("[5, 3]") == 2 and "[5, 4]" in shapes and "[5, 2]" in shapes


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(4, 8), nn.Tanh())
        self.norm = nn.BatchNorm1d(8)
        self.drop = nn.Dropout(0.5)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        hidden = self.encoder(x)
        return self.head(self.drop(self.norm(hidden))) * 2.0, hidden


def test_nested_modules_are_nested_clusters():
    graph = record(_Net(), ember.ones((3, 4)))
    text = graph.to_dot()
    dot = _Dot(text)
    assert len(dot.nodes) == len(graph.nodes)
    scopes = {node.label: node.scope for node in graph.nodes if node.kind != "op"}
    assert scopes["encoder.0.weight"] == "encoder.0" and scopes["head.bias"] == "head"
    assert [node.label for node in graph.nodes if node.kind == "output"] == \
        ["output 0", "output 1"]
    assert [node.scope for node in graph.nodes if node.label == "multiply"][-1] == ""
    # The encoder's cluster holds the clusters of its two layers.
    assert re.search(r'label="encoder: Sequential";\s*subgraph cluster_\d+ \{\s*'
                     r'label="encoder.0: Linear"', text)
    assert "drop: Dropout" not in text  # eval mode: dropout runs no op


def test_training_graph_leaves_model_and_random_stream_unchanged():
    model = _Net()
    before = {name: value.numpy().copy() for name, value in model.state_dict().items()}
    state = ember.random.default_generator.get_state()
    graph = record(model, ember.ones((3, 4)), training=True)
    labels = [node.label for node in graph.nodes]
    assert "setitem" in labels  # BatchNorm's running statistics update, recorded
    assert any(node.scope == "drop" for node in graph.nodes)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), before[name], err_msg=name)
    assert model.training and all(module.training for module in model.modules())
    assert ember.random.default_generator.get_state() == state
    model.eval()
    record(model, ember.ones((3, 4)), training=True)
    assert not any(module.training for module in model.modules())


def test_function_with_several_inputs(tmp_path):
    def weighted_sum(x, y):
        return (x * y).sum()

    drawing = draw(weighted_sum, (np.ones(3, np.float32), ember.ones(3)), tmp_path / "f")
    dot = _Dot(open(drawing.dot).read())
    assert sorted(_labels(dot)) == ["input 0", "input 1", "multiply", "output 0", "sum"]
    assert not dot.clusters and drawing.graph.name == "weighted_sum"


def test_svg_without_graphviz_writes_dot_and_warns(tmp_path, monkeypatch):
    monkeypatch.setattr(graph_module.shutil, "which", lambda name: None)
    with pytest.warns(UserWarning, match="needs Graphviz"):
        drawing = draw(_mlp(), ember.ones((2, 4)), tmp_path / "out" / "mlp.svg")
    assert drawing.image is None and "Graphviz" in drawing.message
    assert os.path.exists(tmp_path / "out" / "mlp.dot")
    assert not os.path.exists(tmp_path / "out" / "mlp.svg")


def test_renders_with_dot_when_installed(tmp_path, monkeypatch):
    # A stand-in for Graphviz's `dot`: checks the arguments and writes the output file.
    fake = tmp_path / "dot"
    fake.write_text('#!/bin/sh\n[ "$1" = "-Tpng" ] && [ -f "$2" ] && [ "$3" = "-o" ] '
                    '&& printf rendered > "$4"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(graph_module.shutil, "which", lambda name: str(fake))
    drawing = draw(_mlp(), ember.ones((2, 4)), tmp_path / "mlp.png")
    assert drawing.image == os.fspath(tmp_path / "mlp.png")
    assert (tmp_path / "mlp.png").read_text() == "rendered"


def test_bad_extension_raises(tmp_path):
    with pytest.raises(EmberError, match="expected a path ending"):
        draw(_mlp(), ember.ones((2, 4)), tmp_path / "mlp.jpeg")
