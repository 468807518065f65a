"""MobileNet v1 (Howard et al., 2017) and v2 (Sandler et al., 2018).

v1 replaces each 3x3 conv by a depthwise 3x3 conv (one filter per channel) and a pointwise 1x1
conv, cutting the cost by about 1/C_out + 1/9; ``width_mult`` (alpha) thins every layer and the
resolution multiplier (rho) is simply a smaller input. v2 stacks inverted residuals: a 1x1
expansion, a depthwise 3x3 and a linear 1x1 projection, with a shortcut between the thin ends.
"""

from __future__ import annotations

import minigrad as mg
import nn


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor``, never more than 10 % below ``value``."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def conv_bn(c_in, c_out, kernel=3, stride=1, groups=1, activation=nn.ReLU) -> nn.Sequential:
    """conv (no bias) + BN + activation (None: linear)."""
    layers = [
        nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
    ]
    return nn.Sequential(*layers, *([activation()] if activation else []))


# (output channels, stride) of v1's depthwise-separable layers, after a 3x3/2 conv to 32.
V1_LAYERS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]


class MobileNetV1(nn.Module):
    """x: (N, in_channels, H, W) -> (N, num_classes). ``stem_stride=1`` keeps small images large enough."""

    def __init__(self, num_classes=1000, width_mult=1.0, in_channels=3, stem_stride=2, layers=V1_LAYERS):
        super().__init__()
        c = make_divisible(32 * width_mult)
        blocks = [conv_bn(in_channels, c, 3, stem_stride)]
        for out, stride in layers:
            out = make_divisible(out * width_mult)
            blocks += [conv_bn(c, c, 3, stride, groups=c), conv_bn(c, out, 1)]  # depthwise, then pointwise
            c = out
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        return self.fc(self.pool(self.features(x)).flatten(1))


class InvertedResidual(nn.Module):
    """1x1 expand (x t) + ReLU6, 3x3 depthwise + ReLU6, 1x1 linear projection; shortcut when shapes agree."""

    def __init__(self, c_in, c_out, stride, expand_ratio):
        super().__init__()
        hidden = round(c_in * expand_ratio)
        self.use_res_connect = stride == 1 and c_in == c_out
        layers = [conv_bn(c_in, hidden, 1, activation=nn.ReLU6)] if expand_ratio != 1 else []
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden, activation=nn.ReLU6)]
        layers += [nn.Conv2d(hidden, c_out, 1, bias=False), nn.BatchNorm2d(c_out)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


# (expansion t, channels c, repeats n, first stride s), the paper's table 2.
V2_SETTINGS = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


class MobileNetV2(nn.Module):
    def __init__(
        self,
        num_classes=1000,
        width_mult=1.0,
        in_channels=3,
        stem_stride=2,
        settings=V2_SETTINGS,
        last_channel=1280,
        dropout=0.2,
    ):
        super().__init__()
        c = make_divisible(32 * width_mult)
        self.last_channel = make_divisible(last_channel * max(1.0, width_mult))
        features = [conv_bn(in_channels, c, 3, stem_stride, activation=nn.ReLU6)]
        for t, channels, n, s in settings:
            out = make_divisible(channels * width_mult)
            for i in range(n):
                features.append(InvertedResidual(c, out, s if i == 0 else 1, t))
                c = out
        features.append(conv_bn(c, self.last_channel, 1, activation=nn.ReLU6))
        self.features = nn.Sequential(*features)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.last_channel, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))


def mobilenet_v1(num_classes: int = 1000, width_mult: float = 1.0, **kwargs) -> MobileNetV1:
    return MobileNetV1(num_classes, width_mult, **kwargs)


def mobilenet_v2(num_classes: int = 1000, width_mult: float = 1.0, **kwargs) -> MobileNetV2:
    return MobileNetV2(num_classes, width_mult, **kwargs)
