"""The backward graph, drawn: ``mg.viz.graph(loss, params=dict(model.named_parameters()))``.

The graph is read off the tape (see ``minigrad/autograd``): every recorded op is a
``Function`` node and its ``next_edges`` say where each input's gradient goes, to another
node or to a leaf tensor. ``graph`` writes that as Graphviz DOT text:

- an op node shows the op's class name, its output shapes and dtype, and the shapes of the
  tensors it saved for backward;
- a leaf shows its parameter name (from ``params``) or its shape, and its dtype;
- edges point the way gradients flow (from a node to its inputs) and are numbered in the
  order backward sends gradients along them.

A graph recorded by ``mg.grad(..., create_graph=True)`` is drawn the same way: pass the
gradients it returned.
"""

from __future__ import annotations

import os

from minigrad.autograd import Function, SavedTensor, _topological_order
from minigrad.tensor import Tensor

_OP_STYLE = 'shape=box fillcolor="#dbe8f7"'
_LEAF_STYLE = 'shape=ellipse fillcolor="#e4f2d9"'


class Graph:
    """A backward graph as DOT text (``.source``), with ``.save`` (DOT) and ``.render`` (SVG/PNG...)."""

    def __init__(self, source: str, nodes: dict, edges: list):
        self.source = source
        self.nodes = nodes  # DOT id -> label
        self.edges = edges  # (from id, to id), in the order backward takes them

    def __str__(self) -> str:
        return self.source

    def __repr__(self) -> str:
        return f"<Graph: {len(self.nodes)} nodes, {len(self.edges)} edges>"

    def save(self, path: str) -> str:
        """Write the DOT text to ``path`` (needs nothing installed)."""
        with open(path, "w") as f:
            f.write(self.source)
        return path

    def render(self, path: str) -> str:
        """Draw the graph into ``path``; the format comes from its suffix (.svg, .png, .pdf).

        Needs the ``graphviz`` Python package (``pip install 'minigrad[viz]'``) and Graphviz's
        ``dot`` program (``apt-get install graphviz``)."""
        try:
            import graphviz
        except ImportError as error:
            raise ImportError(
                "Graph.render needs the graphviz Python package: pip install 'minigrad[viz]' "
                "(or pip install graphviz), and Graphviz's dot program (apt-get install graphviz); "
                "Graph.save(path) writes the DOT text without them"
            ) from error
        fmt = os.path.splitext(path)[1].lstrip(".").lower()
        if not fmt:
            raise ValueError(f"Graph.render: cannot tell the format of {path!r}; end it with .svg, .png or .pdf")
        try:
            image = graphviz.Source(self.source).pipe(format=fmt)
        except graphviz.ExecutableNotFound as error:
            raise RuntimeError(
                "Graph.render needs Graphviz's dot program on PATH (apt-get install graphviz, "
                "brew install graphviz); Graph.save(path) writes the DOT text without it"
            ) from error
        with open(path, "wb") as f:
            f.write(image)
        return path


def graph(outputs, params: dict | None = None) -> Graph:
    """The backward graph of ``outputs`` (a Tensor or a sequence of Tensors).

    ``params`` maps names to the leaf tensors to label with them, e.g.
    ``dict(model.named_parameters())``; other leaves are labelled with their shape.
    """
    outputs = (outputs,) if isinstance(outputs, Tensor) else tuple(outputs)
    for i, t in enumerate(outputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"viz.graph: output {i} is a {type(t).__name__}, expected a Tensor")
        if t.grad_fn is None:
            raise ValueError(
                f"viz.graph: output {i} (shape {tuple(t.shape)}) has no grad_fn: nothing was recorded "
                "(was it computed under no_grad, or from tensors that do not require grad?)"
            )
    names = {id(p): name for name, p in (params or {}).items()}
    try:
        order = _topological_order([t.grad_fn for t in outputs])  # the order backward visits nodes in
    except RuntimeError as error:
        raise RuntimeError(
            "viz.graph: backward already freed this graph; draw it before backward, or backward with retain_graph=True"
        ) from error

    # Output shapes are not kept on a node: they are read off the edges that consume them.
    produced = {}
    for t in outputs:
        produced.setdefault(t.grad_fn, {})[t._output_nr] = (tuple(t.shape), t.dtype)
    for node in order:
        for edge in node.next_edges:
            if edge is not None and isinstance(edge[0], Function):
                produced.setdefault(edge[0], {})[edge[1]] = (tuple(edge[2]), edge[3])

    ids, nodes, edges = {}, {}, []
    lines = ["digraph backward {", '  node [fontname="Helvetica" fontsize=10 style=filled]', "  edge [fontsize=9]"]

    def node_id(target) -> str:
        if id(target) not in ids:
            ids[id(target)] = f"n{len(ids)}"
        return ids[id(target)]

    roots = {t.grad_fn for t in outputs}
    for node in order:
        label = _op_label(node, produced.get(node, {}))
        nodes[node_id(node)] = label
        outline = " penwidth=2" if node in roots else ""
        lines.append(f'  {node_id(node)} [label="{_escape(label)}" {_OP_STYLE}{outline}]')
    for node in order:
        for edge in node.next_edges:
            if edge is None:
                continue
            target = edge[0]
            if not isinstance(target, Function) and node_id(target) not in nodes:
                label = _leaf_label(target, names.get(id(target)))
                nodes[node_id(target)] = label
                lines.append(f'  {node_id(target)} [label="{_escape(label)}" {_LEAF_STYLE}]')
            edges.append((node_id(node), node_id(target)))
            lines.append(f'  {node_id(node)} -> {node_id(target)} [label="{len(edges)}"]')
    lines.append("}")
    return Graph("\n".join(lines) + "\n", nodes, edges)


def _op_label(node, outputs: dict) -> str:
    shapes = ", ".join(f"{shape} {dtype}" for _, (shape, dtype) in sorted(outputs.items()))
    lines = [node.name, f"out: {shapes}"]
    saved = [_saved_shape(s) for s in node.__dict__.get("_saved", ())]
    saved = [s for s in saved if s is not None]
    if saved:
        lines.append("saved: " + ", ".join(str(s) for s in saved))
    return "\n".join(lines)


def _saved_shape(saved):
    if type(saved) is not SavedTensor:
        return None  # None or a Python number kept as it is
    return tuple((saved.tensor.data if saved.tensor is not None else saved.data).shape)


def _leaf_label(leaf, name: str | None) -> str:
    shape = tuple(leaf.shape)
    return f"{name}\n{shape} {leaf.dtype}" if name else f"{shape} {leaf.dtype}"


def _escape(label: str) -> str:
    return label.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
