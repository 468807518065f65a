"""The multilayer perceptron builder: layer layout, parameter count, a backward through it."""

from __future__ import annotations

import minigrad as mg
import minigrad.functional as F
import nn
from nn import models


def test_mlp_layers_and_parameter_count():
    model = models.build("mlp", in_features=64, hidden=(32, 16), num_classes=10)
    assert sum(p.numel() for p in model.parameters()) == 64 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10
    with_bn = models.mlp(64, (32, 16), 10, batch_norm=True)
    # BatchNorm makes the hidden biases redundant: its beta replaces them.
    assert sum(p.numel() for p in with_bn.parameters()) == 64 * 32 + 2 * 32 + 32 * 16 + 2 * 16 + 16 * 10 + 10
    assert sum(isinstance(m, nn.BatchNorm1d) for m in with_bn.modules()) == 2


def test_mlp_flattens_images_and_backpropagates():
    mg.manual_seed(0)
    model = models.mlp(hidden=(8,) * 3, batch_norm=True)
    logits = model(mg.randn(4, 1, 28, 28))
    assert logits.shape == (4, 10)
    F.cross_entropy(logits, mg.tensor([0, 1, 2, 3])).backward()
    assert all(p.grad is not None for p in model.parameters())
