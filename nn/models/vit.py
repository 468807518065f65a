"""Vision Transformer (Dosovitskiy et al., 2020): an image as a sequence of 16x16 patches.

Patches are embedded by one strided conv, a learnable class token is prepended, learnable
position embeddings are added, and a pre-LN Transformer encoder runs over the sequence; the
class token's final state is classified. Names follow torchvision (``vit_b_16``: Base, patch 16).
"""

from __future__ import annotations

import minigrad as mg
import nn


class EncoderBlock(nn.Module):
    """x + attention(LN(x)), then x + MLP(LN(x)); x: (N, S, D)."""

    def __init__(
        self, num_heads: int, hidden_dim: int, mlp_dim: int, dropout: float = 0.0, attention_dropout: float = 0.0
    ):
        super().__init__()
        self.ln_1 = nn.LayerNorm(hidden_dim, eps=1e-6)
        self.self_attention = nn.MultiheadAttention(hidden_dim, num_heads, dropout=attention_dropout, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.ln_2 = nn.LayerNorm(hidden_dim, eps=1e-6)
        self.mlp = nn.Sequential(
            nn.Linear(hidden_dim, mlp_dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(mlp_dim, hidden_dim),
            nn.Dropout(dropout),
        )

    def forward(self, x: mg.Tensor, need_weights: bool = False):
        y = self.ln_1(x)
        y, weights = self.self_attention(y, y, y, need_weights=need_weights)
        x = x + self.dropout(y)
        x = x + self.mlp(self.ln_2(x))
        return (x, weights) if need_weights else x


class PatchEmbedding(nn.Module):
    """(N, C, H, W) -> (N, H/p * W/p, D): one conv with kernel and stride p."""

    def __init__(self, image_size: int, patch_size: int, in_channels: int, hidden_dim: int):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"PatchEmbedding: image size {image_size} is not divisible by patch size {patch_size}")
        self.image_size, self.patch_size = image_size, patch_size
        self.num_patches = (image_size // patch_size) ** 2
        self.conv_proj = nn.Conv2d(in_channels, hidden_dim, patch_size, patch_size)

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        if tuple(x.shape[-2:]) != (self.image_size, self.image_size):
            raise RuntimeError(
                f"PatchEmbedding: expected {self.image_size}x{self.image_size} images, got shape {tuple(x.shape)}"
            )
        return self.conv_proj(x).flatten(2).transpose(1, 2)


class VisionTransformer(nn.Module):
    """x: (N, in_channels, image_size, image_size) -> (N, num_classes)."""

    def __init__(
        self,
        image_size=224,
        patch_size=16,
        num_layers=12,
        num_heads=12,
        hidden_dim=768,
        mlp_dim=3072,
        dropout=0.0,
        attention_dropout=0.0,
        num_classes=1000,
        in_channels=3,
    ):
        super().__init__()
        self.patch_embedding = PatchEmbedding(image_size, patch_size, in_channels, hidden_dim)
        self.class_token = nn.Parameter(mg.zeros(1, 1, hidden_dim))
        self.pos_embedding = nn.Parameter(mg.empty(1, self.patch_embedding.num_patches + 1, hidden_dim))
        nn.init.normal_(self.pos_embedding, std=0.02)
        self.pos_dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            EncoderBlock(num_heads, hidden_dim, mlp_dim, dropout, attention_dropout) for _ in range(num_layers)
        )
        self.ln = nn.LayerNorm(hidden_dim, eps=1e-6)
        self.head = nn.Linear(hidden_dim, num_classes)

    def tokens(self, x: mg.Tensor) -> mg.Tensor:
        """(N, C, H, W) -> (N, 1 + patches, D): class token and patch embeddings plus positions."""
        patches = self.patch_embedding(x)
        cls = self.class_token.expand(patches.shape[0], -1, -1)
        return self.pos_dropout(mg.cat([cls, patches], dim=1) + self.pos_embedding)

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        h = self.tokens(x)
        for layer in self.layers:
            h = layer(h)
        return self.head(self.ln(h[:, 0]))

    @mg.no_grad()
    def attention_maps(self, x: mg.Tensor) -> list:
        """Per layer, the class token's attention over the patches, averaged over heads: (N, patches)."""
        h, maps = self.tokens(x), []
        for layer in self.layers:
            h, weights = layer(h, need_weights=True)
            maps.append(weights[:, 0, 1:])
        return maps


def vit(
    patch: int, dim: int, depth: int, heads: int, image_size: int = 224, mlp_dim: int | None = None, **kwargs
) -> VisionTransformer:
    """A ViT by the paper's four numbers: patch size, width, depth and heads."""
    return VisionTransformer(image_size, patch, depth, heads, dim, mlp_dim or 4 * dim, **kwargs)


def vit_b_16(num_classes: int = 1000, **kwargs) -> VisionTransformer:
    return vit(16, 768, 12, 12, num_classes=num_classes, **kwargs)


def vit_b_32(num_classes: int = 1000, **kwargs) -> VisionTransformer:
    return vit(32, 768, 12, 12, num_classes=num_classes, **kwargs)


def vit_l_16(num_classes: int = 1000, **kwargs) -> VisionTransformer:
    return vit(16, 1024, 24, 16, num_classes=num_classes, **kwargs)


def vit_tiny(num_classes: int = 10, image_size: int = 28, in_channels: int = 1, **kwargs) -> VisionTransformer:
    """A small ViT for 28x28 images: 4x4 patches (49 tokens), width 64, depth 4, 4 heads."""
    return vit(4, 64, 4, 4, image_size, 128, num_classes=num_classes, in_channels=in_channels, **kwargs)
