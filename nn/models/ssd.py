"""SSD, the single-shot multibox detector (Liu et al., 2016), sized for small images.

A conv backbone yields feature maps at several strides; on each, a 3x3 conv predicts, for every
anchor (default box) of every cell, class scores (background + classes) and four box offsets.
Training matches anchors to objects by IoU and sums a smooth-L1 loss on the positives' offsets
and a cross-entropy on the positives and the hardest negatives (3 negatives per positive).
Inference decodes the offsets and keeps the best boxes of each class by non-maximum suppression.
"""

from __future__ import annotations

import minigrad as mg
import minigrad.functional as F
import nn
from nn.models.detection import BACKGROUND, anchor_grid, decode, detections, encode, match
from nn.models.mobilenet import conv_bn

BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)  # SSD's variances 0.1 (centre) and 0.2 (size)


class SSD(nn.Module):
    """images (N, in_channels, size, size) -> class logits (N, A, num_classes + 1) and box
    offsets (N, A, 4) over all A anchors, coarse maps last; class 0 is background.

    ``scales``: per feature map, (stride, anchor sizes); every size comes in ``aspect_ratios``.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, size: int = 64, width: int = 32,
                 scales=((8, (12, 20)), (16, (28, 36))), aspect_ratios=(1.0, 2.0)):  # fmt: skip
        super().__init__()
        self.num_classes, self.size = num_classes, size
        per_cell = [len(sizes) * len(aspect_ratios) for _, sizes in scales]
        strides = [stride for stride, _ in scales]
        if strides != [8 * 2**i for i in range(len(scales))]:
            raise ValueError(f"SSD: feature map strides must be 8, 16, ...; got {strides}")
        w = width
        # Stride 8 after three stride-2 convs; each further scale halves the map again.
        self.backbone = nn.Sequential(
            conv_bn(in_channels, w // 2, 3, 2), conv_bn(w // 2, w // 2), conv_bn(w // 2, w, 3, 2), conv_bn(w, w),
            conv_bn(w, 2 * w, 3, 2), conv_bn(2 * w, 2 * w),
        )  # fmt: skip
        self.extras = nn.ModuleList(
            nn.Sequential(conv_bn(2 * w, 2 * w, 3, 2), conv_bn(2 * w, 2 * w)) for _ in scales[1:]
        )
        self.class_heads = nn.ModuleList(nn.Conv2d(2 * w, a * (num_classes + 1), 3, padding=1) for a in per_cell)
        self.box_heads = nn.ModuleList(nn.Conv2d(2 * w, a * 4, 3, padding=1) for a in per_cell)
        anchors = [anchor_grid(size // stride, stride, sizes, aspect_ratios) for stride, sizes in scales]
        self.register_buffer("anchors", mg.cat(anchors))

    def forward(self, images: mg.Tensor) -> tuple:
        if images.ndim != 4 or tuple(images.shape[2:]) != (self.size, self.size):
            raise RuntimeError(f"SSD: expected images (N, C, {self.size}, {self.size}), got {tuple(images.shape)}")
        features = [self.backbone(images)]
        for extra in self.extras:
            features.append(extra(features[-1]))
        n = images.shape[0]

        def flat(out, k):  # (N, A_cell * k, H, W) -> (N, H * W * A_cell, k)
            return out.permute(0, 2, 3, 1).reshape(n, -1, k)

        logits = mg.cat([flat(head(f), self.num_classes + 1) for head, f in zip(self.class_heads, features)], 1)
        offsets = mg.cat([flat(head(f), 4) for head, f in zip(self.box_heads, features)], 1)
        return logits, offsets

    def loss(self, logits: mg.Tensor, offsets: mg.Tensor, boxes: list, labels: list, negatives_per_positive=3):
        """Multibox loss of a batch: (smooth-L1 box loss, cross-entropy class loss), each summed
        over the matched anchors and divided by their number. boxes, labels: per image (G, 4), (G,)."""
        matched = mg.stack([match(self.anchors, b) for b in boxes])  # (N, A)
        target_class = mg.stack([mg.where(m >= 0, l[m.clamp(min=0)] + 1, 0) if len(l) else m * 0
                                 for m, l in zip(matched, labels)])  # fmt: skip
        positive = matched >= 0
        n_positive = max(int(positive.sum().item()), 1)

        target_boxes = mg.cat([b[m[m >= 0]] for m, b in zip(matched, boxes)])
        anchors = self.anchors.expand(*matched.shape, 4)[positive]
        box_loss = F.smooth_l1_loss(offsets[positive], encode(target_boxes, anchors, BOX_WEIGHTS), reduction="sum")

        class_loss = F.cross_entropy(logits.reshape(-1, self.num_classes + 1), target_class.reshape(-1),
                                     reduction="none").reshape(matched.shape)  # fmt: skip
        with mg.no_grad():  # hard negative mining: per image, the background anchors with the highest loss
            negative_loss = mg.where(matched == BACKGROUND, class_loss.detach(), -1.0)
            rank = mg.argsort(mg.argsort(negative_loss, 1, descending=True), 1)
            quota = (positive.sum(1, keepdim=True) * negatives_per_positive).clamp(min=negatives_per_positive)
            chosen = positive | ((rank < quota) & (matched == BACKGROUND))
        class_loss = (class_loss * chosen.float()).sum()
        return box_loss / n_positive, class_loss / n_positive

    @mg.no_grad()
    def detect(self, images: mg.Tensor, score_threshold: float = 0.05, iou_threshold: float = 0.45, top: int = 20):
        """Per image: (boxes (D, 4), scores (D,), labels (D,)) after per-class non-maximum suppression."""
        logits, offsets = self(images)
        probabilities = F.softmax(logits, -1)[..., 1:]  # drop the background column
        return [
            detections(decode(o, self.anchors, BOX_WEIGHTS), p, self.size, score_threshold, iou_threshold, top)
            for o, p in zip(offsets, probabilities)
        ]


def ssd_small(num_classes: int = 10, **kwargs) -> SSD:
    return SSD(num_classes, **kwargs)
