"""GoogLeNet's Inception block (Szegedy et al., 2014): parallel 1x1, 3x3, 5x5 and pooled branches,
concatenated along channels, with 1x1 convs reducing the channels before the expensive ones."""

from __future__ import annotations

import minigrad as mg
import nn
from nn.models.mobilenet import conv_bn


class Inception(nn.Module):
    """Four branches on (N, C, H, W), concatenated: c1 + c3 + c5 + pool_proj output channels."""

    def __init__(self, c_in, c1, c3_reduce, c3, c5_reduce, c5, pool_proj):
        super().__init__()
        self.branch1 = conv_bn(c_in, c1, 1)
        self.branch2 = nn.Sequential(conv_bn(c_in, c3_reduce, 1), conv_bn(c3_reduce, c3, 3))
        # The 5x5 branch as two 3x3 convs: the same receptive field for 18/25 of the cost.
        self.branch3 = nn.Sequential(conv_bn(c_in, c5_reduce, 1), conv_bn(c5_reduce, c5, 3), conv_bn(c5, c5, 3))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), conv_bn(c_in, pool_proj, 1))
        self.out_channels = c1 + c3 + c5 + pool_proj

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        return mg.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)


class InceptionSmall(nn.Module):
    """A small GoogLeNet for 28x28 images: stem, two Inception blocks, pool, two more, pool, classifier.
    ``stem_stride=2`` halves the resolution first (as GoogLeNet's own stem does), for a quarter of the cost."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 16, stem_stride: int = 1):
        super().__init__()
        w = width
        self.stem = conv_bn(in_channels, 2 * w, 3, stem_stride)
        blocks = [
            Inception(2 * w, w, w, 2 * w, w // 4, w // 2, w // 2),  # 4w channels out
            Inception(4 * w, 2 * w, 2 * w, 3 * w, w // 2, w, w),  # 7w
            nn.MaxPool2d(2),
            Inception(7 * w, 3 * w, 2 * w, 4 * w, w // 2, w, w),  # 9w
            Inception(9 * w, 4 * w, 3 * w, 5 * w, w, 2 * w, 2 * w),  # 13w
            nn.MaxPool2d(2),
        ]
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(13 * w, num_classes)

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        return self.fc(self.dropout(self.pool(self.blocks(self.stem(x))).flatten(1)))


def inception_small(num_classes: int = 10, **kwargs) -> InceptionSmall:
    return InceptionSmall(num_classes, **kwargs)
