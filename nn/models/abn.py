"""Attention Branch Network (Fukui et al., 2019): a CNN that shows where it looks, and uses it.

A feature extractor (the first stages of a ResNet) feeds two branches. The attention branch
classifies on its own (1x1 conv to K class maps, global average pool, trained with its own
cross-entropy) and, from the same K maps, draws one class-agnostic attention map M (1x1 conv,
batch norm, sigmoid). The perception branch (the rest of the ResNet) classifies the features
reweighted by the attention mechanism g' = g * (1 + M), so the map both explains the decision
and sharpens it. Training minimises the sum of both branches' losses.
"""

from __future__ import annotations

import minigrad as mg
import nn
from nn.models.resnet import BasicBlock


def _stage(in_channels: int, channels: int, blocks: int, stride: int) -> nn.Sequential:
    """``blocks`` basic residual blocks; the first one changes the width and applies the stride."""
    layers = [BasicBlock(in_channels, channels, stride)]
    layers += [BasicBlock(channels, channels) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class AttentionBranchNetwork(nn.Module):
    """ABN on a CIFAR-style ResNet: widths w, 2w for the feature extractor, 4w for both branches.

    x: (N, in_channels, H, W) -> perception logits (N, num_classes); ``branches(x)`` also returns
    the attention branch's logits and the attention map (N, 1, H/2, W/2).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 16, blocks: int = 1):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, 1, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            _stage(width, width, blocks, 1),
            _stage(width, 2 * width, blocks, 2),
        )
        # The attention branch keeps the resolution (stride 1) so that its map stays fine-grained.
        self.attention = nn.Sequential(
            _stage(2 * width, 4 * width, blocks, 1),
            nn.BatchNorm2d(4 * width),
            nn.Conv2d(4 * width, num_classes, 1, bias=False),
            nn.ReLU(),
        )
        self.attention_classifier = nn.Sequential(
            nn.Conv2d(num_classes, num_classes, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        self.attention_map = nn.Sequential(nn.Conv2d(num_classes, 1, 1, bias=False), nn.BatchNorm2d(1), nn.Sigmoid())
        self.perception = nn.Sequential(
            _stage(2 * width, 4 * width, blocks, 2),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(4 * width, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def branches(self, x: mg.Tensor) -> tuple:
        """(perception logits (N, K), attention logits (N, K), attention map (N, 1, h, w))."""
        features = self.features(x)
        class_maps = self.attention(features)
        attention = self.attention_map(class_maps)
        return self.perception(features * (1 + attention)), self.attention_classifier(class_maps), attention

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        return self.branches(x)[0]


def abn_resnet_small(num_classes: int = 10, in_channels: int = 1, width: int = 16, blocks: int = 1):
    """ABN on resnet_small (3 stages; the attention branch replaces the last stage at stride 1)."""
    return AttentionBranchNetwork(num_classes, in_channels, width, blocks)
