"""What the Fashion-MNIST classifier examples share: the data, its augmentation, and the training loop.

``fashion(quick)`` gives the embedded 6000/1000 subset with the augmentation; ``fit`` trains a
model on it with a one-cycle learning rate and returns the curves: the loss of every step and
the test accuracy after every epoch.
"""

from __future__ import annotations

from typing import NamedTuple

import minigrad as mg
import minigrad.functional as F
import nn
from examples._common import Timer, accuracy, load_fashion, nesterov_sgd
from examples._common import fit as train
from minigrad.data import transforms


class Fashion(NamedTuple):
    x_train: mg.Tensor  # (N, 1, 28, 28) in [0, 1]: augment() each batch, it also normalises
    y_train: mg.Tensor
    x_test: mg.Tensor  # normalised
    y_test: mg.Tensor
    augment: transforms.Compose
    normalise: transforms.Normalize
    x_test_raw: mg.Tensor  # in [0, 1], for showing the images


def fashion(quick: bool) -> Fashion:
    """Fashion-MNIST as (N, 1, 28, 28) float tensors and int64 labels (256/200 images when quick)."""
    x_train, y_train, x_test, y_test = load_fashion(quick, quick_sizes=(256, 200))
    # Augment the raw images (the crop pads with black, the background), then normalise.
    normalise = transforms.Normalize([x_train.mean().item()], [x_train.std().item()])
    augment = transforms.Compose([transforms.RandomCrop(28, padding=2), transforms.RandomHorizontalFlip(), normalise])
    return Fashion(x_train, y_train, normalise(x_test), y_test, augment, normalise, x_test)


def optimizer(model: nn.Module, name: str, lr: float, weight_decay: float) -> nn.optim.Optimizer:
    """``sgd``: SGD with Nesterov momentum 0.9 (the CNN recipe); ``adamw``: AdamW (the Transformer one)."""
    if name == "sgd":
        return nesterov_sgd(model.parameters(), lr, weight_decay)
    if name == "adamw":
        return nn.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    raise ValueError(f"optimizer: unknown name {name!r}; expected 'sgd' or 'adamw'")


def fit(model: nn.Module, data: Fashion, optim, lr: float, epochs: int, batch_size: int, amp: bool = False) -> tuple:
    """Train with a one-cycle schedule peaking at ``lr`` (mixed precision with ``amp``); returns (curves, seconds)."""

    def loss_of(index):
        return F.cross_entropy(model(data.augment(data.x_train[index])), data.y_train[index])

    model.train()
    with Timer() as timer:
        curves = train(
            model,
            loss_of,
            len(data.y_train),
            epochs,
            batch_size,
            lr,
            optimizer=optim,
            evaluate=lambda: accuracy(model, data.x_test, data.y_test),
            amp=amp,
        )
    return curves, timer.seconds


def at_resolution(model: nn.Module, size: int, image_size: int = 28) -> nn.Module:
    """``model`` fed images resized from ``image_size`` to ``size`` px (bilinear); itself when equal."""
    return model if size == image_size else nn.Sequential(nn.Upsample(size=size, mode="bilinear"), model)
