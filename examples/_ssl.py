"""What the self-supervised Fashion-MNIST examples share: the augmentation, the two-view data, a
small conv encoder, and the probes that judge it.

``augmentation(normalise)`` is SimCLR's augmentation for small grey images; ``fashion_views(quick)``
gives the images with it, whose two draws make a pair of views; ``conv_encoder(width)`` a
three-stage conv net ending in global average pooling; ``probe(encoder, train, test)`` the
linear-probe and k-NN accuracies of its frozen features.
"""

from __future__ import annotations

from typing import NamedTuple

import minigrad as mg
import nn
from examples._common import load_fashion
from minigrad.data import transforms
from nn.utils import extract_features, knn_probe, linear_probe


class FashionViews(NamedTuple):
    x_train: mg.Tensor  # (N, 1, 28, 28) in [0, 1]: views(x) gives two augmented, normalised views
    y_train: mg.Tensor  # used by the probes only
    x_test: mg.Tensor  # normalised
    y_test: mg.Tensor
    views: transforms.TwoViews
    normalise: transforms.Normalize


def augmentation(normalise: transforms.Normalize) -> transforms.Compose:
    """SimCLR's augmentation for small grey images: a random resized crop of 20-100 % of the area,
    a horizontal flip, brightness and contrast jitter (no blur at this size, as in the paper's
    CIFAR-10 runs), then ``normalise``. (1, 28, 28) -> (1, 28, 28)."""
    return transforms.Compose([
        transforms.RandomResizedCrop(28, scale=(0.2, 1.0)),
        transforms.RandomHorizontalFlip(),
        transforms.RandomApply([transforms.ColorJitter(brightness=0.4, contrast=0.4)], p=0.8),
        normalise,
    ])  # fmt: skip


def fashion_views(quick: bool) -> FashionViews:
    """Fashion-MNIST (6000/1000; 512/250 when quick) with ``augmentation`` as the two-view transform."""
    x_train, y_train, x_test, y_test = load_fashion(quick)
    normalise = transforms.Normalize([x_train.mean().item()], [x_train.std().item()])
    views = transforms.TwoViews(augmentation(normalise))
    return FashionViews(x_train, y_train, normalise(x_test), y_test, views, normalise)


def conv_encoder(width: int) -> nn.Sequential:
    """Three conv-BN-ReLU stages (width, 2 width, 4 width channels; 28 -> 14 -> 7 px), then global
    average pooling. x: (N, 1, 28, 28) -> features (N, 4 width)."""

    def stage(c_in: int, c_out: int, pool: bool) -> list:
        layers = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
        return layers + [nn.MaxPool2d(2)] if pool else layers

    return nn.Sequential(
        *stage(1, width, True),
        *stage(width, 2 * width, True),
        *stage(2 * width, 4 * width, False),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )


def probe(encoder: nn.Module, train: tuple, test: tuple) -> tuple[float, float]:
    """Linear-probe and k-NN (cosine, k = 20) test accuracies of ``encoder``'s frozen features of
    ``train`` and ``test`` (pairs of images ``(N, 1, 28, 28)`` and labels), both probes on the
    same features."""
    features = extract_features(encoder, train), extract_features(encoder, test)
    return linear_probe(None, *features), knn_probe(None, *features, k=20)
