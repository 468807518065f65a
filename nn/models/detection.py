"""What anchor-based detectors share (SSD, Faster R-CNN): anchor grids, box coding, matching
anchors to objects, sampling a balanced minibatch of anchors, and turning per-class scores
into detections with non-maximum suppression.

Boxes are (x1, y1, x2, y2) in input pixels. Box offsets are coded as in Faster R-CNN:
``(dx, dy, dw, dh) = (wx (cx - cx_a) / w_a, wy (cy - cy_a) / h_a, ww log(w / w_a), wh log(h / h_a))``
with the weights ``(wx, wy, ww, wh)`` scaling the targets to about unit variance
(SSD's "variances" 0.1 and 0.2 are weights 10 and 5).
"""

from __future__ import annotations

import math

import minigrad as mg
import minigrad.functional as F

BACKGROUND, IGNORE = -1, -2  # match() codes for anchors that are not assigned an object
_LARGEST_LOG_SCALE = math.log(1000 / 16)  # decode() clamps dw, dh here, as torchvision does


def anchor_grid(feature_size: int, stride: int, sizes, aspect_ratios=(1.0,)) -> mg.Tensor:
    """Anchors centred on every cell of a ``feature_size`` x ``feature_size`` map: (H * W * A, 4).

    Each cell has A = len(sizes) * len(aspect_ratios) anchors of area size**2 and height/width
    ``ratio``; rows are ordered (row, column, anchor), the order of a head's output
    ``(N, A * k, H, W).permute(0, 2, 3, 1).reshape(N, H * W * A, k)``.
    """
    shapes = [(size / math.sqrt(ratio), size * math.sqrt(ratio)) for size in sizes for ratio in aspect_ratios]
    half = mg.tensor([[-w / 2, -h / 2, w / 2, h / 2] for w, h in shapes])  # (A, 4)
    centres = (mg.arange(feature_size).float() + 0.5) * stride
    cy, cx = centres.reshape(-1, 1).expand(feature_size, feature_size), centres.expand(feature_size, feature_size)
    centre = mg.stack([cx, cy, cx, cy], dim=-1).reshape(-1, 1, 4)  # (H * W, 1, 4)
    return (centre + half).reshape(-1, 4)


def encode(boxes: mg.Tensor, anchors: mg.Tensor, weights=(1.0, 1.0, 1.0, 1.0)) -> mg.Tensor:
    """The offsets (K, 4) that move each of anchors (K, 4) onto the box (K, 4) in the same row."""
    wx, wy, ww, wh = weights
    cx, cy, w, h = F.box_convert(boxes, "xyxy", "cxcywh").unbind(-1)
    cx_a, cy_a, w_a, h_a = F.box_convert(anchors, "xyxy", "cxcywh").unbind(-1)
    return mg.stack([wx * (cx - cx_a) / w_a, wy * (cy - cy_a) / h_a, ww * (w / w_a).log(), wh * (h / h_a).log()], -1)


def decode(offsets: mg.Tensor, anchors: mg.Tensor, weights=(1.0, 1.0, 1.0, 1.0)) -> mg.Tensor:
    """The inverse of ``encode``: offsets (K, 4) applied to anchors (K, 4) -> boxes (K, 4)."""
    wx, wy, ww, wh = weights
    cx_a, cy_a, w_a, h_a = F.box_convert(anchors, "xyxy", "cxcywh").unbind(-1)
    cx, cy = cx_a + offsets[:, 0] / wx * w_a, cy_a + offsets[:, 1] / wy * h_a
    w = w_a * (offsets[:, 2] / ww).clamp(max=_LARGEST_LOG_SCALE).exp()
    h = h_a * (offsets[:, 3] / wh).clamp(max=_LARGEST_LOG_SCALE).exp()
    return F.box_convert(mg.stack([cx, cy, w, h], -1), "cxcywh", "xyxy")


@mg.no_grad()
def match(anchors: mg.Tensor, boxes: mg.Tensor, positive: float = 0.5, negative: float = 0.4) -> mg.Tensor:
    """Assign each of anchors (A, 4) to one of an image's object boxes (G, 4): (A,) int64.

    An anchor takes the object it overlaps most when that IoU is >= ``positive``; it is
    BACKGROUND below ``negative`` and IGNORE in between. Every object also takes the anchor it
    overlaps most, whatever the IoU, so that none is left without an anchor.
    """
    if boxes.shape[0] == 0:
        return mg.full((anchors.shape[0],), BACKGROUND, dtype=mg.int64)
    iou = F.box_iou(anchors, boxes)  # (A, G)
    best, index = iou.max(1)
    matched = mg.where(best >= positive, index, mg.where(best < negative, BACKGROUND, IGNORE))
    matched[iou.argmax(0)] = mg.arange(boxes.shape[0])
    return matched


@mg.no_grad()
def sample(matched: mg.Tensor, size: int, positive_fraction: float) -> tuple:
    """Draw at most ``size`` of the matched anchors (or proposals), at most ``positive_fraction``
    of them positive, the rest background: the indices (positives, negatives)."""
    index = mg.arange(matched.shape[0])
    positives, negatives = index[matched >= 0], index[matched == BACKGROUND]
    n_positive = min(len(positives), int(size * positive_fraction))
    n_negative = min(len(negatives), size - n_positive)
    positives = positives[mg.randperm(len(positives))[:n_positive]]
    negatives = negatives[mg.randperm(len(negatives))[:n_negative]]
    return positives, negatives


@mg.no_grad()
def detections(boxes: mg.Tensor, scores: mg.Tensor, size: int, score_threshold=0.05, iou_threshold=0.5, top=20,
               candidates=200):  # fmt: skip
    """Per-class boxes (K, C, 4) (or class-agnostic (K, 4)) and class probabilities (K, C), the
    background left out -> the image's detections (boxes (D, 4), scores (D,), labels (D,)): the
    ``candidates`` best (box, class) pairs above ``score_threshold``, boxes clipped to the
    ``size`` x ``size`` image, non-maximum suppression within each class, at most ``top`` kept."""
    k, classes = scores.shape
    if boxes.ndim == 2:
        boxes = boxes.unsqueeze(1).expand(k, classes, 4)
    best = mg.argsort(scores.reshape(-1), descending=True)[:candidates]
    keep = best[scores.reshape(-1)[best] > score_threshold]
    boxes, scores = boxes.reshape(-1, 4)[keep].clamp(0, size), scores.reshape(-1)[keep]
    labels = keep % classes
    wide = ((boxes[:, 2] - boxes[:, 0]) > 1) & ((boxes[:, 3] - boxes[:, 1]) > 1)
    boxes, scores, labels = boxes[wide], scores[wide], labels[wide]
    kept = F.batched_nms(boxes, scores, labels, iou_threshold)[:top]
    return boxes[kept], scores[kept], labels[kept]
