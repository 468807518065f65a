"""A multilayer perceptron: Flatten, then (Linear, [BatchNorm1d], activation) per hidden layer, then Linear."""

from __future__ import annotations

from nn.layers import BatchNorm1d, Linear, ReLU
from nn.module import Flatten, Sequential


def mlp(
    in_features: int = 784,
    hidden: tuple | list = (256, 256),
    num_classes: int = 10,
    batch_norm: bool = False,
    activation=ReLU,
) -> Sequential:
    """x: (N, ...) flattened to (N, in_features) -> logits (N, num_classes).

    ``hidden``: the width of each hidden layer; ``batch_norm`` puts BatchNorm1d between each
    hidden Linear and its activation (as in Ioffe and Szegedy), whose bias it makes redundant.
    """
    layers, width = [Flatten()], in_features
    for size in hidden:
        layers.append(Linear(width, size, bias=not batch_norm))
        layers += [BatchNorm1d(size), activation()] if batch_norm else [activation()]
        width = size
    layers.append(Linear(width, num_classes))
    return Sequential(*layers)
