"""Adam with L2 weight decay vs AdamW (decoupled) on Fashion-MNIST: learning curves and final weight norms."""

from __future__ import annotations

import minigrad as mg
import minigrad.functional as F
import nn
from examples._common import Result, Timer, accuracy, arguments, finish, load_fashion, setup, train_epoch


def weight_norm(model: nn.Module) -> float:
    """The L2 norm of all the weights (biases left out), as one vector."""
    return sum((p * p).sum().item() for name, p in model.named_parameters() if name.endswith("weight")) ** 0.5


def same_without_decay(x: mg.Tensor, y: mg.Tensor, steps: int = 5) -> float:
    """Adam and AdamW differ only in how weight decay enters: with weight_decay=0 they take the same
    steps. Returns the largest parameter difference after ``steps`` steps (0 when identical)."""
    finals = []
    for optimizer_class in (nn.optim.Adam, nn.optim.AdamW):
        mg.manual_seed(0)
        model = nn.models.mlp(hidden=(32,))
        optimizer = optimizer_class(model.parameters(), lr=1e-2, weight_decay=0.0)
        for _ in range(steps):
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
        finals.append(nn.utils.parameters_to_vector(model.parameters()))
    return (finals[0] - finals[1]).abs().max().item()


def main(argv=None) -> Result:
    args = arguments(argv, epochs=15, lr=1e-3, weight_decay=0.01, hidden=256, batch_size=64)
    setup(args)
    x_train, y_train, x_test, y_test = load_fashion(args.quick)
    epochs = 3 if args.quick else args.epochs
    runs = {
        "Adam, no decay": lambda params: nn.optim.Adam(params, lr=args.lr),
        "Adam + L2": lambda params: nn.optim.Adam(params, lr=args.lr, weight_decay=args.weight_decay),
        "AdamW": lambda params: nn.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay),
    }
    curves, results = {}, {}

    with Timer() as timer:
        for name, make_optimizer in runs.items():
            mg.manual_seed(args.seed)  # the same initial weights and batches for every optimizer
            model = nn.models.mlp(hidden=(args.hidden, args.hidden))
            optimizer = make_optimizer(model.parameters())
            for key in ("train loss", "test accuracy", "weight norm: |w|"):
                curves[f"{key} ({name})"] = []
            for epoch in range(epochs):
                curves[f"train loss ({name})"] += train_epoch(
                    model, optimizer, len(y_train), args.batch_size,
                    lambda i: F.cross_entropy(model(x_train[i]), y_train[i]), f"{name} {epoch + 1}/{epochs}",
                )  # fmt: skip
                curves[f"test accuracy ({name})"].append((epoch + 1, accuracy(model, x_test, y_test)))
                curves[f"weight norm: |w| ({name})"].append((epoch + 1, weight_norm(model)))
            results[name] = (curves[f"test accuracy ({name})"][-1][1], weight_norm(model))
            accuracy_reached, norm = results[name]
            print(f"{name:>15}: test accuracy {accuracy_reached:.4f}, final weight norm {norm:.2f}", flush=True)

    extra = {
        "Adam + L2 test accuracy": results["Adam + L2"][0],
        "Adam (no decay) test accuracy": results["Adam, no decay"][0],
        "weight norm AdamW": results["AdamW"][1],
        "weight norm Adam + L2": results["Adam + L2"][1],
        "weight norm Adam": results["Adam, no decay"][1],
        "max |Adam - AdamW| at weight_decay=0": same_without_decay(x_train[:64], y_train[:64]),
    }
    result = Result("AdamW test accuracy", results["AdamW"][0], curves, extra, timer.seconds)
    return finish(result, args, f"Adam + L2 vs AdamW, weight_decay={args.weight_decay:g}")


if __name__ == "__main__":
    main()
