"""ResNet (He et al., 2015): residual blocks, basic and bottleneck, and Squeeze-and-Excitation.

``resnet18/34/50`` follow the paper's ImageNet networks (torchvision's names, so their weights
load one to one); ``resnet_small`` is the CIFAR-style network of the paper's section 4.2 (three
stages of 3x3 convs, no max-pool), sized for 28x28 images. ``residual=False`` removes every
shortcut: the "plain" network the paper compares against.
"""

from __future__ import annotations

import minigrad as mg
import minigrad.functional as F
import nn
from nn import init


class SEBlock(nn.Module):
    """Squeeze-and-Excitation (Hu et al., 2018): reweight channels by a gate computed from their means."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        gate = self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1)))).sigmoid()  # (N, C, 1, 1)
        return x * gate


def _norm(channels: int, batch_norm: bool) -> nn.Module:
    return nn.BatchNorm2d(channels) if batch_norm else nn.Identity()


def _shortcut(in_channels: int, out_channels: int, stride: int, batch_norm: bool) -> nn.Module | None:
    """Identity when shapes agree, else the paper's projection shortcut: 1x1 conv + BN."""
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), _norm(out_channels, batch_norm))


class BasicBlock(nn.Module):
    """Two 3x3 convs: relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))."""

    expansion = 1

    def __init__(self, in_channels, channels, stride=1, se=False, residual=True, batch_norm=True):
        super().__init__()
        out_channels = channels * self.expansion
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = _norm(channels, batch_norm)
        self.conv2 = nn.Conv2d(channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = _norm(out_channels, batch_norm)
        self.se = SEBlock(out_channels) if se else None
        self.residual = residual
        self.downsample = _shortcut(in_channels, out_channels, stride, batch_norm) if residual else None

    def branch(self, x: mg.Tensor) -> mg.Tensor:
        return self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        out = self.branch(x)
        if self.se is not None:
            out = self.se(out)
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return F.relu(out)


class Bottleneck(BasicBlock):
    """1x1 reduce, 3x3, 1x1 expand (x4): the block of ResNet-50 and deeper."""

    expansion = 4

    def __init__(self, in_channels, channels, stride=1, se=False, residual=True, batch_norm=True):
        super().__init__(in_channels, channels, stride, se, residual, batch_norm)
        out_channels = channels * self.expansion
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride, 1, bias=False)
        self.bn2 = _norm(channels, batch_norm)
        self.conv3 = nn.Conv2d(channels, out_channels, 1, bias=False)
        self.bn3 = _norm(out_channels, batch_norm)

    def branch(self, x: mg.Tensor) -> mg.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))


class ResNet(nn.Module):
    """A stem, stages of residual blocks (the first block of each later stage halves the size), a
    global average pool and a linear classifier.

    x: (N, in_channels, H, W) -> logits (N, num_classes).
    """

    def __init__(
        self,
        block,
        layers,
        num_classes=1000,
        in_channels=3,
        widths=(64, 128, 256, 512),
        stem="imagenet",
        se=False,
        residual=True,
        zero_init_residual=False,
        batch_norm=True,
        he_init=True,
    ):
        super().__init__()
        self.in_planes = widths[0]
        if stem == "imagenet":  # 7x7/2 conv and 3x3/2 max-pool: 224 -> 56
            self.conv1 = nn.Conv2d(in_channels, widths[0], 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        else:  # small images: one 3x3 conv, no downsampling
            self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
            self.maxpool = nn.Identity()
        self.bn1 = _norm(widths[0], batch_norm)
        self.relu = nn.ReLU()
        for i, (width, blocks) in enumerate(zip(widths, layers)):
            stage = [block(self.in_planes, width, 1 if i == 0 else 2, se, residual, batch_norm)]
            self.in_planes = width * block.expansion
            stage += [block(self.in_planes, width, 1, se, residual, batch_norm) for _ in range(blocks - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
        self.num_stages = len(widths)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.in_planes, num_classes)
        for m in self.modules():
            if he_init and isinstance(m, nn.Conv2d):  # (he_init=False keeps PyTorch's default conv init)
                init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if zero_init_residual:  # each block starts as the identity (Goyal et al., 2017)
            for m in self.modules():
                if isinstance(m, BasicBlock):
                    init.zeros_(m.bn3.weight if isinstance(m, Bottleneck) else m.bn2.weight)

    def features(self, x: mg.Tensor) -> mg.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return x

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        return self.fc(self.avgpool(self.features(x)).flatten(1))


def resnet18(num_classes: int = 1000, **kwargs) -> ResNet:
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes, **kwargs)


def resnet34(num_classes: int = 1000, **kwargs) -> ResNet:
    return ResNet(BasicBlock, (3, 4, 6, 3), num_classes, **kwargs)


def resnet50(num_classes: int = 1000, **kwargs) -> ResNet:
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes, **kwargs)


def resnet_small(num_classes: int = 10, in_channels: int = 1, width: int = 16, blocks: int = 1, **kwargs) -> ResNet:
    """CIFAR-style ResNet for small images: stages at width, 2*width, 4*width with ``blocks`` blocks each
    (depth 6*blocks + 2, the paper's family of 20, 32, 44, 56 and 110 layers)."""
    return ResNet(BasicBlock, (blocks,) * 3, num_classes, in_channels, (width, 2 * width, 4 * width), "small", **kwargs)


def se_resnet_small(num_classes: int = 10, **kwargs) -> ResNet:
    """resnet_small with a Squeeze-and-Excitation gate in every block."""
    return resnet_small(num_classes, se=True, **kwargs)


def plain_cnn_small(num_classes: int = 10, **kwargs) -> ResNet:
    """resnet_small without its shortcuts: the plain network whose gradients vanish with depth."""
    return resnet_small(num_classes, residual=False, **kwargs)
