"""Draw the backward graph of an MLP and a residual block."""

from __future__ import annotations

import os

import minigrad as mg
import minigrad.functional as F
import nn
from examples._common import Result, Timer, arguments, setup
from nn.models.resnet import BasicBlock


def draw(name: str, loss: mg.Tensor, model: nn.Module, folder: str) -> mg.viz.Graph:
    """Save the graph of ``loss`` as ``{name}_graph.svg`` (or .dot without Graphviz) in ``folder``."""
    graph = mg.viz.graph(loss, params=dict(model.named_parameters()))
    path = os.path.join(folder, f"{name}_graph.svg")
    try:
        graph.render(path)
    except (ImportError, RuntimeError) as error:  # no graphviz package or no dot program
        path = graph.save(os.path.join(folder, f"{name}_graph.dot"))
        print(f"  ({error.args[0].split(';')[0]}: saved the DOT text instead)")
    print(f"{name}: {len(graph.nodes)} nodes, {len(graph.edges)} edges -> {path}")
    return graph


def main(argv=None) -> Result:
    args = arguments(argv, out=None)
    setup(args)
    folder = args.out or (os.path.dirname(os.path.abspath(args.plot)) if args.plot else ".")
    os.makedirs(folder, exist_ok=True)
    with Timer() as timer:
        mlp = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 10))
        x, y = mg.randn(4, 16), mg.randint(0, 10, (4,))
        mlp_graph = draw("mlp", F.cross_entropy(mlp(x), y), mlp, folder)

        # stride 2 and more channels: the shortcut is a 1x1 conv + BN, a second path to the sum
        block = BasicBlock(8, 16, stride=2)
        residual_graph = draw("residual", block(mg.randn(2, 8, 8, 8)).mean(), block, folder)
    result = Result(
        "MLP graph nodes",
        len(mlp_graph.nodes),
        extra={
            "MLP edges": len(mlp_graph.edges),
            "residual block nodes": len(residual_graph.nodes),
            "residual block edges": len(residual_graph.edges),
        },
        seconds=timer.seconds,
    )
    print(result.line())
    return result


if __name__ == "__main__":
    main()
