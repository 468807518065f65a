"""mg.viz.graph: the DOT text holds the tape's nodes, leaves and edges, in backward's order."""

from __future__ import annotations

import re

import pytest

import minigrad as mg
import nn

NODE = re.compile(r'^\s*(n\d+) \[label="((?:[^"\\]|\\.)*)"(.*)\]$')
EDGE = re.compile(r'^\s*(n\d+) -> (n\d+) \[label="(\d+)"\]$')


def parse(source: str):
    """{id: (label lines, attributes)} and [(from, to, number)] from the DOT text."""
    assert source.startswith("digraph") and source.rstrip().endswith("}")
    nodes, edges = {}, []
    for line in source.splitlines():
        if m := NODE.match(line):
            nodes[m[1]] = (m[2].split("\\n"), m[3])
        elif m := EDGE.match(line):
            edges.append((m[1], m[2], int(m[3])))
    return nodes, edges


def named_edges(source: str):
    """Edges as (first label line of the source, first label line of the target), in number order."""
    nodes, edges = parse(source)
    assert [n for _, _, n in edges] == list(range(1, len(edges) + 1))
    return [(nodes[a][0][0], nodes[b][0][0]) for a, b, _ in edges]


def test_small_graph_nodes_and_edges():
    a = mg.randn(3, requires_grad=True)
    b = mg.randn(3, requires_grad=True)
    graph = mg.viz.graph((a * b + a).sum(), params={"a": a, "b": b})
    nodes, edges = parse(graph.source)
    labels = {lines[0]: lines for lines, _ in nodes.values()}
    assert sorted(labels) == ["Add", "Mul", "Sum", "a", "b"]
    assert labels["Sum"][1] == "out: () float32"
    assert labels["Mul"] == ["Mul", "out: (3,) float32", "saved: (3,), (3,)"]  # Mul saves both inputs
    assert labels["a"] == ["a", "(3,) float32"]
    # backward: Sum first, then Add (to Mul, and to a), then Mul (to a, to b)
    assert named_edges(graph.source) == [("Sum", "Add"), ("Add", "Mul"), ("Add", "a"), ("Mul", "a"), ("Mul", "b")]
    assert len(graph.nodes) == 5 and len(graph.edges) == 5
    assert str(graph) == graph.source


def test_leaves_without_names_show_their_shape():
    w = mg.randn(2, 4, requires_grad=True)
    x = mg.randn(5, 4)  # needs no grad: no edge to it
    graph = mg.viz.graph((x @ w.T).relu().mean())
    nodes, _ = parse(graph.source)
    leaves = [lines for lines, attrs in nodes.values() if "ellipse" in attrs]
    assert leaves == [["(2, 4) float32"]]
    assert "saved: (5, 4)" in graph.source  # x is no leaf of the graph, but the product keeps it for w's gradient


def test_params_label_a_model_and_every_parameter_appears():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    loss = model(mg.randn(3, 4)).sum()
    graph = mg.viz.graph(loss, params=dict(model.named_parameters()))
    nodes, _ = parse(graph.source)
    names = {lines[0] for lines, attrs in nodes.values() if "ellipse" in attrs}
    assert names == {"0.weight", "0.bias", "2.weight", "2.bias"}


def test_double_backward_graph_holds_the_backward_ops():
    a = mg.randn(3, requires_grad=True)
    b = mg.randn(3, requires_grad=True)
    (ga,) = mg.grad((a * b).tanh().sum(), a, create_graph=True)
    graph = mg.viz.graph(ga, params={"a": a, "b": b})
    nodes, _ = parse(graph.source)
    ops = {lines[0] for lines, attrs in nodes.values() if "box" in attrs}
    leaves = {lines[0] for lines, attrs in nodes.values() if "ellipse" in attrs}
    assert "Mul" in ops  # d/da tanh(ab) = (1 - tanh^2) * b: the backward's products are recorded
    assert leaves == {"a", "b"}


def test_freed_graph_and_unrecorded_output_are_clear_errors():
    a = mg.randn(3, requires_grad=True)
    y = (a * a).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        mg.viz.graph(y)
    with pytest.raises(ValueError, match="no grad_fn"):
        mg.viz.graph(mg.randn(3))


def test_save_writes_dot_and_render_needs_graphviz(tmp_path, monkeypatch):
    a = mg.randn(3, requires_grad=True)
    graph = mg.viz.graph((a * 2).sum())
    path = graph.save(str(tmp_path / "g.dot"))
    assert open(path).read() == graph.source
    monkeypatch.setitem(__import__("sys").modules, "graphviz", None)  # as if it were not installed
    with pytest.raises(ImportError, match="pip install"):
        graph.render(str(tmp_path / "g.svg"))


def test_render_svg(tmp_path):
    graphviz = pytest.importorskip("graphviz")
    a = mg.randn(3, requires_grad=True)
    graph = mg.viz.graph((a * 2).sum(), params={"a": a})
    try:
        path = graph.render(str(tmp_path / "g.svg"))
    except RuntimeError as error:  # the Python package without Graphviz's dot program
        assert isinstance(error.__cause__, graphviz.ExecutableNotFound)
        pytest.skip("Graphviz's dot program is not installed")
    svg = open(path).read()
    assert "<svg" in svg and "Mul" in svg
