"""Batch norm on Fashion-MNIST: a deep (10 hidden layers) MLP with BatchNorm1d trains faster than without."""

from __future__ import annotations

import minigrad as mg
import minigrad.functional as F
import nn
from examples._common import Result, Timer, accuracy, arguments, finish, load_fashion, setup, train_epoch


def main(argv=None) -> Result:
    args = arguments(argv, epochs=5, depth=10, width=128, lr=0.02, batch_size=64)
    setup(args)
    x_train, y_train, x_test, y_test = load_fashion(args.quick)
    epochs = 2 if args.quick else args.epochs
    curves, final = {}, {}

    with Timer() as timer:
        for name, batch_norm, he_init in (("plain", False, False), ("plain, He init", False, True),
                                          ("batch norm", True, False)):  # fmt: skip
            mg.manual_seed(args.seed)  # the same batches for all
            model = nn.models.mlp(hidden=(args.width,) * args.depth, batch_norm=batch_norm)
            if he_init:  # variance 2 / fan_in keeps the ReLU signal's scale from layer to layer
                for layer in model.modules():
                    if isinstance(layer, nn.Linear):
                        nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                        nn.init.zeros_(layer.bias)
            optimizer = nn.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
            curves[f"{name} train loss"], curves[f"{name} test accuracy"] = [], []
            for epoch in range(epochs):
                losses = train_epoch(
                    model, optimizer, len(y_train), args.batch_size,
                    lambda i: F.cross_entropy(model(x_train[i]), y_train[i]), f"{name} {epoch + 1}/{epochs}",
                )  # fmt: skip
                curves[f"{name} train loss"] += losses
                curves[f"{name} test accuracy"].append((epoch + 1, accuracy(model, x_test, y_test)))
                epoch_loss = sum(losses) / len(losses)
                print(f"{name:>14}, epoch {epoch + 1}: train loss {epoch_loss:.4f}, "
                      f"test accuracy {curves[f'{name} test accuracy'][-1][1]:.4f}", flush=True)  # fmt: skip
            final[name] = (epoch_loss, curves[f"{name} test accuracy"][-1][1])

    extra = {
        f"plain test accuracy after {epochs} epochs": final["plain"][1],
        f"plain + He init test accuracy after {epochs} epochs": final["plain, He init"][1],
        "plain + He init last-epoch train loss": final["plain, He init"][0],
        "BN last-epoch train loss": final["batch norm"][0],
        "plain last-epoch train loss": final["plain"][0],
    }
    result = Result(f"BN test accuracy after {epochs} epochs", final["batch norm"][1], curves, extra, timer.seconds)
    return finish(result, args, f"{args.depth}-hidden-layer MLP with and without batch norm")


if __name__ == "__main__":
    main()
