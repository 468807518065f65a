"""EfficientNet (Tan & Le, 2019): MBConv blocks with Squeeze-and-Excitation and SiLU, scaled in
depth, width and resolution together by one coefficient phi.

``efficientnet_b0`` .. ``efficientnet_b7`` use the paper's published multipliers (torchvision's
layer names); ``efficientnet(phi)`` applies the compound rule depth = 1.2**phi, width = 1.1**phi,
resolution = 224 * 1.15**phi directly.
"""

from __future__ import annotations

import math

import minigrad as mg
import minigrad.functional as F
import nn
from nn.models.mobilenet import conv_bn, make_divisible


class SqueezeExcitation(nn.Module):
    """Channel gate: mean over H, W -> 1x1 conv (squeeze) -> SiLU -> 1x1 conv -> sigmoid -> scale."""

    def __init__(self, channels: int, squeeze_channels: int):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        return x * self.fc2(F.silu(self.fc1(F.adaptive_avg_pool2d(x, 1)))).sigmoid()


class MBConv(nn.Module):
    """1x1 expand + SiLU, kxk depthwise + SiLU, SE, 1x1 projection; stochastic depth on the shortcut."""

    def __init__(self, c_in, c_out, kernel, stride, expand_ratio, drop_path=0.0):
        super().__init__()
        hidden = make_divisible(c_in * expand_ratio)
        self.use_res_connect = stride == 1 and c_in == c_out
        layers = [conv_bn(c_in, hidden, 1, activation=nn.SiLU)] if expand_ratio != 1 else []
        layers += [
            conv_bn(hidden, hidden, kernel, stride, groups=hidden, activation=nn.SiLU),
            SqueezeExcitation(hidden, max(1, c_in // 4)),
            conv_bn(hidden, c_out, 1, activation=None),
        ]
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = nn.DropPath(drop_path)

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        out = self.block(x)
        return x + self.stochastic_depth(out) if self.use_res_connect else out


# (expand ratio, kernel, stride, in, out, layers): EfficientNet-B0, the paper's table 1.
B0_STAGES = [
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
]
# width, depth, resolution, dropout of B0 .. B7 as published.
VARIANTS = {
    0: (1.0, 1.0, 224, 0.2),
    1: (1.0, 1.1, 240, 0.2),
    2: (1.1, 1.2, 260, 0.3),
    3: (1.2, 1.4, 300, 0.3),
    4: (1.4, 1.8, 380, 0.4),
    5: (1.6, 2.2, 456, 0.4),
    6: (1.8, 2.6, 528, 0.5),
    7: (2.0, 3.1, 600, 0.5),
}


class EfficientNet(nn.Module):
    """x: (N, in_channels, resolution, resolution) -> (N, num_classes)."""

    def __init__(
        self,
        width_mult=1.0,
        depth_mult=1.0,
        dropout=0.2,
        num_classes=1000,
        in_channels=3,
        stochastic_depth=0.2,
        stem_stride=2,
        stages=B0_STAGES,
        resolution=224,
    ):
        super().__init__()
        self.width_mult, self.depth_mult, self.resolution = width_mult, depth_mult, resolution
        stem = make_divisible(stages[0][3] * width_mult)
        features = [conv_bn(in_channels, stem, 3, stem_stride, activation=nn.SiLU)]
        repeats = [math.ceil(n * depth_mult) for *_, n in stages]
        total, index = sum(repeats), 0
        for (expand, kernel, stride, c_in, c_out, _), n in zip(stages, repeats):
            c_in, c_out = make_divisible(c_in * width_mult), make_divisible(c_out * width_mult)
            stage = []
            for i in range(n):
                # Stochastic depth grows linearly with the block's depth.
                stage.append(
                    MBConv(
                        c_in if i == 0 else c_out,
                        c_out,
                        kernel,
                        stride if i == 0 else 1,
                        expand,
                        stochastic_depth * index / total,
                    )
                )
                index += 1
            features.append(nn.Sequential(*stage))
        head = 4 * c_out
        features.append(conv_bn(c_out, head, 1, activation=nn.SiLU))
        self.features = nn.Sequential(*features)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(head, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.Linear):
                bound = 1 / math.sqrt(m.out_features)
                nn.init.uniform_(m.weight, -bound, bound)
                nn.init.zeros_(m.bias)

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


def compound_scaling(phi: float, alpha: float = 1.2, beta: float = 1.1, gamma: float = 1.15) -> tuple:
    """(depth, width, resolution) multipliers for coefficient phi; alpha * beta**2 * gamma**2 ~ 2."""
    return alpha**phi, beta**phi, gamma**phi


def efficientnet(phi: float = 0, num_classes: int = 1000, base_resolution: int = 224, **kwargs) -> EfficientNet:
    """EfficientNet scaled from B0 by the compound rule."""
    depth, width, resolution = compound_scaling(phi)
    return EfficientNet(width, depth, num_classes=num_classes, resolution=round(base_resolution * resolution), **kwargs)


def _variant(b: int):
    def build(num_classes: int = 1000, **kwargs) -> EfficientNet:
        width, depth, resolution, dropout = VARIANTS[b]
        return EfficientNet(width, depth, dropout, num_classes, resolution=resolution, **kwargs)

    build.__name__ = f"efficientnet_b{b}"
    build.__doc__ = f"EfficientNet-B{b}: width x{VARIANTS[b][0]}, depth x{VARIANTS[b][1]}, {VARIANTS[b][2]} px."
    return build


efficientnet_b0, efficientnet_b1, efficientnet_b2, efficientnet_b3 = (_variant(b) for b in range(4))
efficientnet_b4, efficientnet_b5, efficientnet_b6, efficientnet_b7 = (_variant(b) for b in range(4, 8))
