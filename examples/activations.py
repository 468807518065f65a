"""Activation functions and their derivatives, the derivatives computed by minigrad's autograd."""

from __future__ import annotations

import minigrad as mg
import minigrad.functional as F
from examples._common import Result, Timer, arguments, setup

ACTIVATIONS = {
    "step": lambda x: (x > 0).float(),
    "sigmoid": F.sigmoid,
    "tanh": F.tanh,
    "ReLU": F.relu,
    "leaky ReLU": lambda x: F.leaky_relu(x, 0.1),
    "GELU": F.gelu,
    "SiLU (Swish)": F.silu,
    "softplus": F.softplus,
}


def derivative(fn, x: mg.Tensor) -> mg.Tensor:
    """d fn(x) / dx at every point of x, by one backward pass (fn is elementwise)."""
    x = x.detach().requires_grad_()
    out = fn(x)
    if not out.requires_grad:  # the step function: no gradient anywhere it is defined
        return mg.zeros_like(x)
    (grad,) = mg.grad(out.sum(), [x])
    return grad


def glu_check() -> float:
    """GLU(a, b) = a * sigmoid(b) (and SwiGLU: a * silu(b)): autograd against the hand-written derivative."""
    x = mg.randn(6, 8, dtype=mg.float64, requires_grad=True)
    (grad,) = mg.grad(F.glu(x, dim=-1).sum(), [x])
    a, b = x.detach().chunk(2, dim=-1)
    expected = mg.cat([b.sigmoid(), a * b.sigmoid() * (1 - b.sigmoid())], dim=-1)
    return (grad - expected).abs().max().item()


def main(argv=None) -> Result:
    args = arguments(argv)
    setup(args)
    x = mg.linspace(-4, 4, 81 if args.quick else 401)
    with Timer() as timer:
        curves = {}
        for name, fn in ACTIVATIONS.items():
            curves[f"f(x): {name}"] = list(zip(x.tolist(), fn(x).tolist()))
            curves[f"f'(x): {name}"] = list(zip(x.tolist(), derivative(fn, x).tolist()))
        # The sigmoid's derivative is s(1 - s): the largest gap between autograd and the formula.
        s = F.sigmoid(x)
        error = (derivative(F.sigmoid, x) - s * (1 - s)).abs().max().item()
    if args.plot:
        _plot(curves, args.plot)
    extra = {"GLU gradient error": glu_check(), "functions": len(ACTIVATIONS)}
    result = Result("max |autograd - formula| for sigmoid'", error, {}, extra, timer.seconds)
    print(result.line())
    return result


def _plot(curves: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for key, points in curves.items():
        panel, name = key.split(": ", 1)
        xs, ys = zip(*points)
        axes[0 if panel == "f(x)" else 1].plot(xs, ys, label=name)
    for ax, title in zip(axes, ("activation f(x)", "derivative f'(x) by autograd")):
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"plot saved to {path}")


if __name__ == "__main__":
    main()
