"""What the scene examples (segmentation, detection, faster_rcnn) share: their data and loop plumbing."""

from __future__ import annotations

import minigrad as mg
import nn
from examples._common import batches, progress
from minigrad.data import Scenes, scenes
from minigrad.metrics import mean_average_precision


def held_out(n: int, seed: int) -> Scenes:
    """The test scenes: their objects come from the part of the pool no training scene uses."""
    return scenes(n, seed=seed + 10_000, split="test").to(mg.backend.get_default_device())


def epoch_batches(epoch: int, epochs: int, per_epoch: int, batch_size: int, seed: int) -> tuple:
    """Fresh training scenes for this epoch, and a progress bar over batches of their indices."""
    train = scenes(per_epoch, seed=seed + epoch, split="train").to(mg.backend.get_default_device())
    steps = per_epoch // batch_size
    return train, progress(batches(per_epoch, batch_size, drop_last=True), f"epoch {epoch + 1}/{epochs}", total=steps)


def targets_of(train: Scenes, index: mg.Tensor) -> tuple:
    """The boxes and labels of the scenes in the batch ``index``: two lists of tensors."""
    picked = index.tolist()
    return [train.boxes[i] for i in picked], [train.labels[i] for i in picked]


def update(loss: mg.Tensor, optimizer, schedule) -> None:
    """One optimisation step on ``loss``."""
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    schedule.step()


def evaluate_detector(detector: nn.Module, test: Scenes, batch_size: int = 100) -> float:
    """mAP@0.5 of ``detector.detect`` (in eval mode) on the held-out scenes."""
    detector.eval()
    found = []
    for start in range(0, len(test), batch_size):
        found += detector.detect(test.images[start : start + batch_size])
    detector.train()
    return mean_average_precision(found, list(zip(test.boxes, test.labels)), iou_threshold=0.5)[0]
