"""ConvNeXt (Liu et al., 2022): a ResNet modernised step by step towards a Transformer.

Each block is a 7x7 depthwise conv, LayerNorm over channels, an inverted bottleneck (C -> 4C ->
C) with GELU, a learnable per-channel layer scale and stochastic depth. Stages are joined by a
LayerNorm and a 2x2 stride-2 conv; the stem is a 4x4 stride-4 "patchify" conv.
"""

from __future__ import annotations

import minigrad as mg
import minigrad.functional as F
import nn


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of (N, C, H, W)."""

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class CNBlock(nn.Module):
    def __init__(self, dim: int, layer_scale: float = 1e-6, drop_path: float = 0.0):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)  # 1x1 convs as Linear on channels-last
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.layer_scale = nn.Parameter(mg.full((dim,), layer_scale))
        self.drop_path = nn.DropPath(drop_path)

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)  # (N, H, W, C)
        y = self.pwconv2(F.gelu(self.pwconv1(self.norm(y)))) * self.layer_scale
        return x + self.drop_path(y.permute(0, 3, 1, 2))


class ConvNeXt(nn.Module):
    """x: (N, in_channels, H, W) -> (N, num_classes)."""

    def __init__(
        self,
        depths=(3, 3, 9, 3),
        dims=(96, 192, 384, 768),
        num_classes=1000,
        in_channels=3,
        drop_path_rate=0.0,
        layer_scale=1e-6,
        patch_size=4,
    ):
        super().__init__()
        layers = [
            nn.Sequential(nn.Conv2d(in_channels, dims[0], patch_size, patch_size), LayerNorm2d(dims[0], eps=1e-6))
        ]
        total, index = sum(depths), 0
        for i, (depth, dim) in enumerate(zip(depths, dims)):
            blocks = []
            for _ in range(depth):
                blocks.append(CNBlock(dim, layer_scale, drop_path_rate * index / max(total - 1, 1)))
                index += 1
            layers.append(nn.Sequential(*blocks))
            if i + 1 < len(dims):
                layers.append(nn.Sequential(LayerNorm2d(dim, eps=1e-6), nn.Conv2d(dim, dims[i + 1], 2, 2)))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            LayerNorm2d(dims[-1], eps=1e-6), nn.Flatten(1), nn.Linear(dims[-1], num_classes)
        )
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        return self.classifier(self.avgpool(self.features(x)))


def convnext_tiny(num_classes: int = 1000, **kwargs) -> ConvNeXt:
    return ConvNeXt((3, 3, 9, 3), (96, 192, 384, 768), num_classes, **kwargs)


def convnext_small(num_classes: int = 1000, **kwargs) -> ConvNeXt:
    return ConvNeXt((3, 3, 27, 3), (96, 192, 384, 768), num_classes, **kwargs)


def convnext_mini(num_classes: int = 10, in_channels: int = 1, width: int = 32, **kwargs) -> ConvNeXt:
    """A small ConvNeXt for 28x28 images: 2x2 patches, three stages (14, 7, 3 px) of width, 2x, 4x channels."""
    kwargs.setdefault("drop_path_rate", 0.1)
    return ConvNeXt((2, 2, 2), (width, 2 * width, 4 * width), num_classes, in_channels, patch_size=2, **kwargs)
