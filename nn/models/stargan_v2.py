"""StarGAN v2 (Choi et al., 2020): one generator translates an image into any of several domains,
in a style drawn at random or copied from a reference image.

Four networks, as in the paper's figure 2:

- the generator G(x, s) encodes x with residual blocks (instance norm) and decodes it with
  residual blocks whose instance norms take their scale and shift from the style s (AdaIN);
- the mapping network F(z, y) turns a latent code z into a style of domain y: a shared MLP, then
  one head per domain;
- the style encoder E(x, y) reads the style of image x as domain y would have it: a shared
  convolutional trunk, then one linear head per domain;
- the discriminator D(x, y) has the encoder's trunk and one real/fake logit per domain (a
  multi-task discriminator); only the output of the image's own domain y is trained.

Every residual output is divided by sqrt(2) to keep unit variance.
"""

from __future__ import annotations

import math

import minigrad as mg
import minigrad.functional as F
import nn


class ResBlk(nn.Module):
    """Pre-activation residual block: [norm] -> lrelu -> conv -> [avgpool] -> [norm] -> lrelu -> conv."""

    def __init__(self, dim_in: int, dim_out: int, normalize: bool = False, downsample: bool = False):
        super().__init__()
        self.downsample = downsample
        self.conv1 = nn.Conv2d(dim_in, dim_in, 3, padding=1)
        self.conv2 = nn.Conv2d(dim_in, dim_out, 3, padding=1)
        self.norm1 = nn.InstanceNorm2d(dim_in, affine=True) if normalize else nn.Identity()
        self.norm2 = nn.InstanceNorm2d(dim_in, affine=True) if normalize else nn.Identity()
        self.conv1x1 = nn.Conv2d(dim_in, dim_out, 1, bias=False) if dim_in != dim_out else nn.Identity()

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        shortcut = self.conv1x1(x)
        residual = self.conv1(F.leaky_relu(self.norm1(x), 0.2))
        if self.downsample:
            shortcut, residual = F.avg_pool2d(shortcut, 2), F.avg_pool2d(residual, 2)
        residual = self.conv2(F.leaky_relu(self.norm2(residual), 0.2))
        return (shortcut + residual) / math.sqrt(2)


class AdainResBlk(nn.Module):
    """Residual block of the decoder: AdaIN(s) -> lrelu -> [upsample] -> conv -> AdaIN(s) -> lrelu -> conv."""

    def __init__(self, dim_in: int, dim_out: int, style_dim: int, upsample: bool = False):
        super().__init__()
        self.upsample = upsample
        self.conv1 = nn.Conv2d(dim_in, dim_out, 3, padding=1)
        self.conv2 = nn.Conv2d(dim_out, dim_out, 3, padding=1)
        self.norm1 = nn.AdaIN(style_dim, dim_in)
        self.norm2 = nn.AdaIN(style_dim, dim_out)
        self.conv1x1 = nn.Conv2d(dim_in, dim_out, 1, bias=False) if dim_in != dim_out else nn.Identity()

    def forward(self, x: mg.Tensor, s: mg.Tensor) -> mg.Tensor:
        residual = F.leaky_relu(self.norm1(x, s), 0.2)
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            residual = F.interpolate(residual, scale_factor=2, mode="nearest")
        residual = self.conv2(F.leaky_relu(self.norm2(self.conv1(residual), s), 0.2))
        return (self.conv1x1(x) + residual) / math.sqrt(2)


class Generator(nn.Module):
    """x: (N, C, H, W), s: (N, style_dim) -> (N, C, H, W): ``repeat`` down- then up-sampling blocks,
    two bottleneck blocks on each side; channels double at each downsampling up to ``max_dim``."""

    def __init__(self, in_channels: int, dim: int, max_dim: int, style_dim: int, repeat: int):
        super().__init__()
        self.from_rgb = nn.Conv2d(in_channels, dim, 3, padding=1)
        self.encode, self.decode = nn.ModuleList(), nn.ModuleList()
        dim_in = dim
        for _ in range(repeat):
            dim_out = min(dim_in * 2, max_dim)
            self.encode.append(ResBlk(dim_in, dim_out, normalize=True, downsample=True))
            self.decode.insert(0, AdainResBlk(dim_out, dim_in, style_dim, upsample=True))
            dim_in = dim_out
        for _ in range(2):
            self.encode.append(ResBlk(dim_in, dim_in, normalize=True))
            self.decode.insert(0, AdainResBlk(dim_in, dim_in, style_dim))
        self.to_rgb = nn.Sequential(
            nn.InstanceNorm2d(dim, affine=True), nn.LeakyReLU(0.2), nn.Conv2d(dim, in_channels, 1)
        )

    def forward(self, x: mg.Tensor, s: mg.Tensor) -> mg.Tensor:
        h = self.from_rgb(x)
        for block in self.encode:
            h = block(h)
        for block in self.decode:
            h = block(h, s)
        return self.to_rgb(h)


def _pick(per_domain: mg.Tensor, y: mg.Tensor) -> mg.Tensor:
    """per_domain: (N, num_domains, *), y: (N,) -> (N, *): each row's entry for its own domain."""
    return per_domain[mg.arange(per_domain.shape[0]), y]


class MappingNetwork(nn.Module):
    """z: (N, latent_dim), y: (N,) domain -> style (N, style_dim): 4 shared layers, 4 per domain."""

    def __init__(self, latent_dim: int, style_dim: int, num_domains: int, hidden: int):
        super().__init__()
        shared = [nn.Linear(latent_dim, hidden), nn.ReLU()]
        for _ in range(3):
            shared += [nn.Linear(hidden, hidden), nn.ReLU()]
        self.shared = nn.Sequential(*shared)
        self.unshared = nn.ModuleList(
            nn.Sequential(
                *[m for _ in range(3) for m in (nn.Linear(hidden, hidden), nn.ReLU())], nn.Linear(hidden, style_dim)
            )
            for _ in range(num_domains)
        )

    def forward(self, z: mg.Tensor, y: mg.Tensor) -> mg.Tensor:
        h = self.shared(z)
        return _pick(mg.stack([head(h) for head in self.unshared], dim=1), y)


class _Trunk(nn.Sequential):
    """x: (N, C, H, W) -> (N, max_dim, 1, 1): downsampling blocks to 4x4, then a 4x4 conv."""

    def __init__(self, in_channels: int, img_size: int, dim: int, max_dim: int):
        layers, dim_in = [nn.Conv2d(in_channels, dim, 3, padding=1)], dim
        for _ in range(int(math.log2(img_size)) - 2):
            dim_out = min(dim_in * 2, max_dim)
            layers.append(ResBlk(dim_in, dim_out, downsample=True))
            dim_in = dim_out
        layers += [nn.LeakyReLU(0.2), nn.Conv2d(dim_in, dim_in, 4), nn.LeakyReLU(0.2)]
        super().__init__(*layers)
        self.out_channels = dim_in


class StyleEncoder(nn.Module):
    """x: (N, C, H, W), y: (N,) domain -> style (N, style_dim): a shared trunk, one linear head per domain."""

    def __init__(self, in_channels: int, img_size: int, dim: int, max_dim: int, style_dim: int, num_domains: int):
        super().__init__()
        self.shared = _Trunk(in_channels, img_size, dim, max_dim)
        self.unshared = nn.ModuleList(nn.Linear(self.shared.out_channels, style_dim) for _ in range(num_domains))

    def forward(self, x: mg.Tensor, y: mg.Tensor) -> mg.Tensor:
        h = self.shared(x).flatten(1)
        return _pick(mg.stack([head(h) for head in self.unshared], dim=1), y)


class Discriminator(nn.Module):
    """x: (N, C, H, W), y: (N,) domain -> (N,) real/fake logit of domain y (one output per domain)."""

    def __init__(self, in_channels: int, img_size: int, dim: int, max_dim: int, num_domains: int):
        super().__init__()
        self.main = _Trunk(in_channels, img_size, dim, max_dim)
        self.head = nn.Conv2d(self.main.out_channels, num_domains, 1)

    def forward(self, x: mg.Tensor, y: mg.Tensor) -> mg.Tensor:
        return _pick(self.head(self.main(x)).flatten(1), y)


class StarGANv2(nn.Module):
    """The four networks: ``generator``, ``mapping_network``, ``style_encoder``, ``discriminator``."""

    def __init__(
        self,
        num_domains: int,
        img_size: int = 256,
        in_channels: int = 3,
        dim: int = 64,
        max_dim: int = 512,
        style_dim: int = 64,
        latent_dim: int = 16,
        mapping_dim: int = 512,
        repeat: int | None = None,
    ):
        super().__init__()
        if img_size < 4 or img_size & (img_size - 1):
            raise ValueError(f"StarGANv2: img_size must be a power of two >= 4, got {img_size}")
        # The paper downsamples a 256x256 image 4 times in G (to 16x16): log2(size) - 4.
        repeat = max(int(math.log2(img_size)) - 4, 1) if repeat is None else repeat
        self.num_domains, self.img_size, self.style_dim, self.latent_dim = num_domains, img_size, style_dim, latent_dim
        self.generator = Generator(in_channels, dim, max_dim, style_dim, repeat)
        self.mapping_network = MappingNetwork(latent_dim, style_dim, num_domains, mapping_dim)
        self.style_encoder = StyleEncoder(in_channels, img_size, dim, max_dim, style_dim, num_domains)
        self.discriminator = Discriminator(in_channels, img_size, dim, max_dim, num_domains)

    def forward(self, x: mg.Tensor, y_target: mg.Tensor, z: mg.Tensor | None = None) -> mg.Tensor:
        """Translate x (N, C, H, W) into domains y_target (N,), with styles from latent codes z
        (N, latent_dim) (drawn at random when None)."""
        if z is None:
            z = mg.randn(x.shape[0], self.latent_dim)
        return self.generator(x, self.mapping_network(z, y_target))


def stargan_v2(num_domains: int = 2, **kwargs) -> StarGANv2:
    """The paper's configuration for 256x256 RGB images (AFHQ, CelebA-HQ)."""
    return StarGANv2(num_domains, **kwargs)


def stargan_v2_small(
    num_domains: int = 3, img_size: int = 16, in_channels: int = 1, dim: int = 16, **kwargs
) -> StarGANv2:
    """A CPU-sized StarGAN v2 for small grey images (digits)."""
    kwargs = {"max_dim": 4 * dim, "style_dim": 16, "latent_dim": 8, "mapping_dim": 64, **kwargs}
    return StarGANv2(num_domains, img_size, in_channels, dim, **kwargs)
