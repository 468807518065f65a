"""Convolution layers: Conv1d, Conv2d, ConvTranspose2d, DeformConv2d."""

from __future__ import annotations

import math

import minigrad as mg
import minigrad.functional as F
from nn import init
from nn.module import Module, Parameter


def _tuple(value, n: int) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


def check_channels(layer: Module, x: mg.Tensor, spatial_dims: int, channels: int) -> None:
    """Raise, naming the layer, unless x is (N, C, *spatial) or (C, *spatial) with C == channels."""
    if x.ndim not in (spatial_dims + 1, spatial_dims + 2) or x.shape[-spatial_dims - 1] != channels:
        raise RuntimeError(
            f"{layer}: expected input of shape (N, {channels}, {', '.join('*' * spatial_dims)}) "
            f"with {channels} channels, got {tuple(x.shape)}"
        )


class _ConvNd(Module):
    """Shared by every convolution: options, parameters and PyTorch's default initialisation.

    weight: (C_out, C_in / groups, *kernel), or (C_in, C_out / groups, *kernel) when transposed.
    padding_mode: how the padding is filled: "zeros", or F.pad's "reflect", "replicate", "circular".
    """

    spatial_dims = 2
    transposed = False
    padding_modes = ("zeros", "reflect", "replicate", "circular")

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", device=None, dtype=None, output_padding=0):  # fmt: skip
        super().__init__()
        if padding_mode not in self.padding_modes:
            raise ValueError(
                f"{type(self).__name__}: padding_mode must be one of {self.padding_modes}, got {padding_mode!r}"
            )
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
            raise ValueError(f"{type(self).__name__}: groups must be a positive integer, got {groups!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"{type(self).__name__}: in_channels ({in_channels}) and out_channels ({out_channels}) "
                f"must be divisible by groups ({groups})"
            )
        n = self.spatial_dims
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _tuple(kernel_size, n)
        self.stride, self.dilation = _tuple(stride, n), _tuple(dilation, n)
        self.padding = padding if isinstance(padding, str) else _tuple(padding, n)
        self.padding_mode = padding_mode
        self.output_padding = _tuple(output_padding, n)
        shape = (in_channels, out_channels // groups) if self.transposed else (out_channels, in_channels // groups)
        factory = {"device": device, "dtype": dtype}
        self.weight = Parameter(mg.empty(*shape, *self.kernel_size, **factory))
        self.bias = Parameter(mg.empty(out_channels, **factory)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # PyTorch's default: kaiming_uniform with a=sqrt(5), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        n = self.spatial_dims
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * n:
            text += f", padding={self.padding!r}" if isinstance(self.padding, str) else f", padding={self.padding}"
        if self.dilation != (1,) * n:
            text += f", dilation={self.dilation}"
        if self.output_padding != (0,) * n:
            text += f", output_padding={self.output_padding}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode!r}"
        return text

    def _padded(self, x: mg.Tensor) -> tuple:
        """x padded by padding_mode and the padding left for the convolution (all of it for "zeros")."""
        if self.padding_mode == "zeros" or self.padding == "valid":
            return x, self.padding
        if self.padding == "same":  # PyTorch's split: the odd element of the padding goes after
            totals = [d * (k - 1) for k, d in zip(self.kernel_size, self.dilation)]
            sides = [(t // 2, t - t // 2) for t in totals]
        else:
            sides = [(p, p) for p in self.padding]
        pad = [side for before_after in reversed(sides) for side in before_after]  # F.pad: the last dim first
        return F.pad(x, pad, mode=self.padding_mode), 0


class Conv1d(_ConvNd):
    """x: (N, C_in, L) -> (N, C_out, L_out)."""

    spatial_dims = 1

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        check_channels(self, x, 1, self.in_channels)
        x, padding = self._padded(x)
        return F.conv1d(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)


class Conv2d(_ConvNd):
    """x: (N, C_in, H, W) -> (N, C_out, H_out, W_out)."""

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        check_channels(self, x, 2, self.in_channels)
        x, padding = self._padded(x)
        return F.conv2d(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)


class ConvTranspose2d(_ConvNd):
    """x: (N, C_in, H, W) -> (N, C_out, H_out, W_out): the adjoint of Conv2d (its input gradient)."""

    transposed = True
    padding_modes = ("zeros",)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):  # fmt: skip
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode,
                         device, dtype, output_padding)  # fmt: skip

    def forward(self, x: mg.Tensor, output_size=None) -> mg.Tensor:
        check_channels(self, x, 2, self.in_channels)
        output_padding = self.output_padding
        if output_size is not None:
            output_padding = self._output_padding_for(x, tuple(output_size)[-2:])
        return F.conv_transpose2d(
            x, self.weight, self.bias, self.stride, self.padding, output_padding, self.groups, self.dilation
        )

    def _output_padding_for(self, x: mg.Tensor, size: tuple) -> tuple:
        """The output_padding that makes the output exactly ``size`` (PyTorch's output_size argument)."""
        padding = []
        for d in range(2):
            smallest = (x.shape[d - 2] - 1) * self.stride[d] - 2 * self.padding[d]
            smallest += self.dilation[d] * (self.kernel_size[d] - 1) + 1
            extra, limit = size[d] - smallest, max(self.stride[d], self.dilation[d])
            if not 0 <= extra < limit:
                raise ValueError(
                    f"{self}: output size {tuple(size)} is not reachable from input {tuple(x.shape)} "
                    f"(dim {d}: between {smallest} and {smallest + limit - 1})"
                )
            padding.append(extra)
        return tuple(padding)


class DeformConv2d(_ConvNd):
    """Deformable convolution (torchvision.ops.DeformConv2d): forward(x, offset, mask=None).

    x: (N, C_in, H, W), offset: (N, 2*kh*kw, H_out, W_out), mask: (N, kh*kw, H_out, W_out).
    """

    padding_modes = ("zeros",)

    def forward(self, x: mg.Tensor, offset: mg.Tensor, mask: mg.Tensor | None = None) -> mg.Tensor:
        check_channels(self, x, 2, self.in_channels)
        return F.deform_conv2d(x, offset, self.weight, self.bias, self.stride, self.padding, self.dilation, mask)
