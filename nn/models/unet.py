"""U-Net (Ronneberger et al., 2015): a contracting path of conv blocks and max-pools, an expanding
path that upsamples and concatenates the encoder's feature map of the same size (the skip
connection), and a 1x1 conv to per-pixel class scores.

The upsampling step is selectable, to compare the four ways of doubling a feature map:
"nearest" and "bilinear" (F.interpolate, then a 1x1 conv to halve the channels), "transposed"
(a learned 2x2 stride-2 ConvTranspose2d) and "pixelshuffle" (a 1x1 conv to 4x the channels,
rearranged into a 2x larger map: sub-pixel convolution, Shi et al., 2016).
"""

from __future__ import annotations

import minigrad as mg
import minigrad.functional as F
import nn
from nn.models.mobilenet import conv_bn

UPSAMPLE_MODES = ("nearest", "bilinear", "transposed", "pixelshuffle")


def double_conv(c_in: int, c_out: int) -> nn.Sequential:
    """The U-Net block: two 3x3 conv + BN + ReLU, same size."""
    return nn.Sequential(conv_bn(c_in, c_out, 3), conv_bn(c_out, c_out, 3))


def upsample2x(c_in: int, c_out: int, mode: str) -> nn.Module:
    """(N, c_in, H, W) -> (N, c_out, 2H, 2W) by ``mode`` (one of ``UPSAMPLE_MODES``)."""
    if mode in ("nearest", "bilinear"):
        return nn.Sequential(nn.Upsample(scale_factor=2, mode=mode), nn.Conv2d(c_in, c_out, 1))
    if mode == "transposed":
        return nn.ConvTranspose2d(c_in, c_out, 2, stride=2)
    if mode == "pixelshuffle":
        return nn.Sequential(nn.Conv2d(c_in, 4 * c_out, 1), nn.PixelShuffle(2))
    raise ValueError(f"unet: unknown upsample mode {mode!r}; expected one of {', '.join(UPSAMPLE_MODES)}")


class Up(nn.Module):
    """Upsample the coarse map, concatenate the skip connection, double conv."""

    def __init__(self, c_in: int, c_skip: int, c_out: int, mode: str):
        super().__init__()
        self.up = upsample2x(c_in, c_in // 2, mode)
        self.conv = double_conv(c_in // 2 + c_skip, c_out)

    def forward(self, x: mg.Tensor, skip: mg.Tensor) -> mg.Tensor:
        return self.conv(mg.cat([self.up(x), skip], dim=1))


class UNet(nn.Module):
    """x: (N, in_channels, H, W) -> (N, num_classes, H, W); H and W divisible by 2**depth.

    ``width`` channels at full resolution, doubled at each of ``depth`` poolings.
    """

    def __init__(self, num_classes: int, in_channels: int = 1, width: int = 16, depth: int = 3, upsample="bilinear"):
        super().__init__()
        if upsample not in UPSAMPLE_MODES:
            raise ValueError(f"unet: unknown upsample mode {upsample!r}; expected one of {', '.join(UPSAMPLE_MODES)}")
        channels = [width * 2**level for level in range(depth + 1)]
        self.depth = depth
        self.inc = double_conv(in_channels, channels[0])
        self.down = nn.ModuleList(double_conv(channels[i], channels[i + 1]) for i in range(depth))
        self.up = nn.ModuleList(Up(channels[i + 1], channels[i], channels[i], upsample) for i in reversed(range(depth)))
        self.head = nn.Conv2d(channels[0], num_classes, 1)

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        step = 2**self.depth
        if x.ndim != 4 or x.shape[2] % step or x.shape[3] % step:
            raise RuntimeError(
                f"UNet: expected input (N, C, H, W) with H and W divisible by {step}, got {tuple(x.shape)}"
            )
        x = self.inc(x)
        skips = []
        for block in self.down:
            skips.append(x)
            x = block(F.max_pool2d(x, 2))
        for block, skip in zip(self.up, reversed(skips)):
            x = block(x, skip)
        return self.head(x)


def unet_small(num_classes: int = 11, in_channels: int = 1, width: int = 16, depth: int = 3, upsample="bilinear"):
    return UNet(num_classes, in_channels, width, depth, upsample)
