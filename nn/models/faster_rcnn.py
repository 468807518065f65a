"""Faster R-CNN (Ren et al., 2015), sized for small images: a two-stage detector.

Stage one, the region proposal network (RPN), slides a 3x3 conv over the backbone's feature map
and predicts, for every anchor, an objectness logit and four box offsets; the decoded boxes,
thinned by non-maximum suppression, are the proposals. Stage two pools a fixed-size feature
grid from each proposal (RoI Align, or the paper's RoI pooling), and a small MLP head gives
softmax class scores (background + classes) and class-specific box offsets (smooth L1).
The two stages train together on the sum of their losses (the paper's approximate joint
training: no gradient flows through the proposals' coordinates).
"""

from __future__ import annotations

import minigrad as mg
import minigrad.functional as F
import nn
from nn.models.detection import anchor_grid, decode, detections, encode, match, sample
from nn.models.mobilenet import conv_bn

HEAD_BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
SMOOTH_L1_BETA = 1 / 9  # torchvision's: nearly L1, quadratic only for tiny offsets


class RegionProposalNetwork(nn.Module):
    """feature (N, C, H, W) -> objectness logits (N, H * W * A) and box offsets (N, H * W * A, 4)."""

    def __init__(self, channels: int, anchors_per_cell: int, pre_nms: int = 200, iou_threshold: float = 0.7,
                 batch_per_image: int = 64, positive_fraction: float = 0.5):  # fmt: skip
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.objectness = nn.Conv2d(channels, anchors_per_cell, 1)
        self.offsets = nn.Conv2d(channels, 4 * anchors_per_cell, 1)
        self.pre_nms, self.iou_threshold = pre_nms, iou_threshold
        self.batch_per_image, self.positive_fraction = batch_per_image, positive_fraction

    def forward(self, feature: mg.Tensor) -> tuple:
        hidden = F.relu(self.conv(feature))
        n = feature.shape[0]
        objectness = self.objectness(hidden).permute(0, 2, 3, 1).reshape(n, -1)
        offsets = self.offsets(hidden).permute(0, 2, 3, 1).reshape(n, -1, 4)
        return objectness, offsets

    @mg.no_grad()
    def proposals(self, objectness, offsets, anchors, size: int, keep: int) -> list:
        """Per image, at most ``keep`` boxes (P, 4): the best-scored decoded anchors, clipped,
        after non-maximum suppression."""
        found = []
        for scores, deltas in zip(objectness, offsets):
            boxes = decode(deltas, anchors).clamp(0, size)
            best = mg.argsort(scores, descending=True)[: self.pre_nms]
            boxes, scores = boxes[best], scores[best]
            wide = ((boxes[:, 2] - boxes[:, 0]) > 1) & ((boxes[:, 3] - boxes[:, 1]) > 1)
            boxes, scores = boxes[wide], scores[wide]
            found.append(boxes[F.nms(boxes, scores, self.iou_threshold)[:keep]])
        return found

    def loss(self, objectness, offsets, anchors, boxes: list) -> tuple:
        """(objectness loss, box loss) on a sample of anchors per image: matched at IoU >= 0.7
        (or the best anchor of an object), background below 0.3, half positive at most."""
        rows, labels, targets = [], [], []
        for image, gt in enumerate(boxes):
            matched = match(anchors, gt, positive=0.7, negative=0.3)
            positives, negatives = sample(matched, self.batch_per_image, self.positive_fraction)
            rows.append((image, positives, negatives))
            labels.append(mg.cat([mg.ones(len(positives)), mg.zeros(len(negatives))]))
            targets.append(encode(gt[matched[positives]], anchors[positives]))
        picked = mg.cat([objectness[image][mg.cat([p, q])] for image, p, q in rows])
        objectness_loss = F.binary_cross_entropy_with_logits(picked, mg.cat(labels))
        positive_offsets = mg.cat([offsets[image][p] for image, p, _ in rows])
        box_loss = F.smooth_l1_loss(positive_offsets, mg.cat(targets), reduction="sum", beta=SMOOTH_L1_BETA)
        return objectness_loss, box_loss / len(picked)


class BoxHead(nn.Module):
    """Pooled RoI features (R, C, P, P) -> class logits (R, num_classes + 1) and per-class box
    offsets (R, num_classes + 1, 4): two fully connected layers, then the two predictors."""

    def __init__(self, in_features: int, num_classes: int, hidden: int = 128):
        super().__init__()
        self.fc6, self.fc7 = nn.Linear(in_features, hidden), nn.Linear(hidden, hidden)
        self.cls_score = nn.Linear(hidden, num_classes + 1)
        self.bbox_pred = nn.Linear(hidden, 4 * (num_classes + 1))

    def forward(self, pooled: mg.Tensor) -> tuple:
        x = F.relu(self.fc7(F.relu(self.fc6(pooled.flatten(1)))))
        return self.cls_score(x), self.bbox_pred(x).reshape(x.shape[0], -1, 4)


class FasterRCNN(nn.Module):
    """images (N, in_channels, size, size); ``losses`` for training, ``detect`` for inference.

    The backbone gives a stride-4 map (the RoI features) and a stride-8 map (the RPN's, with
    ``anchor_sizes`` x ``aspect_ratios`` anchors per cell). ``pooling``: "align" or "pool".
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, size: int = 64, width: int = 16,
                 anchor_sizes=(12, 20, 28), aspect_ratios=(1.0, 2.0), pooling: str = "align", pooled_size: int = 7,
                 rois_per_image: int = 32, positive_fraction: float = 0.25):  # fmt: skip
        super().__init__()
        if pooling not in ("align", "pool"):
            raise ValueError(f"FasterRCNN: pooling must be 'align' or 'pool', got {pooling!r}")
        w = width
        self.num_classes, self.size, self.pooling, self.pooled_size = num_classes, size, pooling, pooled_size
        self.rois_per_image, self.positive_fraction = rois_per_image, positive_fraction
        self.stride4 = nn.Sequential(
            conv_bn(in_channels, w, 3, 2), conv_bn(w, w), conv_bn(w, 2 * w, 3, 2), conv_bn(2 * w, 2 * w),
            conv_bn(2 * w, 2 * w),
        )  # fmt: skip
        self.stride8 = nn.Sequential(conv_bn(2 * w, 4 * w, 3, 2), conv_bn(4 * w, 4 * w))
        self.rpn = RegionProposalNetwork(4 * w, len(anchor_sizes) * len(aspect_ratios))
        self.head = BoxHead(2 * w * pooled_size**2, num_classes)
        self.register_buffer("anchors", anchor_grid(size // 8, 8, anchor_sizes, aspect_ratios))

    def features(self, images: mg.Tensor) -> tuple:
        if images.ndim != 4 or tuple(images.shape[2:]) != (self.size, self.size):
            raise RuntimeError(
                f"FasterRCNN: expected images (N, C, {self.size}, {self.size}), got {tuple(images.shape)}"
            )
        fine = self.stride4(images)
        return fine, self.rpn(self.stride8(fine))

    def pool(self, fine: mg.Tensor, rois: list) -> mg.Tensor:
        """Fixed-size features (R, C, P, P) of each image's rois (list of (L, 4) boxes). RoI Align
        takes one bilinear sample per bin: on this stride-4 map a bin is under a cell wide."""
        if self.pooling == "pool":
            return F.roi_pool(fine, rois, self.pooled_size, spatial_scale=1 / 4)
        return F.roi_align(fine, rois, self.pooled_size, spatial_scale=1 / 4, sampling_ratio=1, aligned=True)

    def losses(self, images: mg.Tensor, boxes: list, labels: list) -> dict:
        """The four training losses: RPN objectness and box, head classification and box."""
        fine, (objectness, offsets) = self.features(images)
        rpn_objectness, rpn_box = self.rpn.loss(objectness, offsets, self.anchors, boxes)
        proposals = self.rpn.proposals(objectness, offsets, self.anchors, self.size, keep=64)
        rois, classes, targets = [], [], []
        for props, gt, gt_labels in zip(proposals, boxes, labels):
            candidates = mg.cat([props, gt])  # the true boxes join the proposals, as in the paper
            matched = match(candidates, gt, positive=0.5, negative=0.5)
            positives, negatives = sample(matched, self.rois_per_image, self.positive_fraction)
            rois.append(candidates[mg.cat([positives, negatives])])
            classes.append(mg.cat([gt_labels[matched[positives]] + 1, mg.zeros(len(negatives), dtype=mg.int64)]))
            targets.append(encode(gt[matched[positives]], candidates[positives], HEAD_BOX_WEIGHTS))
        logits, box_offsets = self.head(self.pool(fine, rois))
        classes = mg.cat(classes)
        is_positive = classes > 0
        positive_offsets = box_offsets[is_positive][mg.arange(int(is_positive.sum().item())), classes[is_positive]]
        box_loss = F.smooth_l1_loss(positive_offsets, mg.cat(targets), reduction="sum", beta=SMOOTH_L1_BETA)
        return {
            "rpn objectness": rpn_objectness,
            "rpn box": rpn_box,
            "classifier": F.cross_entropy(logits, classes),
            "box regression": box_loss / len(classes),
        }

    @mg.no_grad()
    def detect(self, images: mg.Tensor, keep: int = 32, score_threshold=0.05, iou_threshold=0.5, top=20) -> list:
        """Per image: (boxes (D, 4), scores (D,), labels (D,)) from its ``keep`` best proposals."""
        fine, (objectness, offsets) = self.features(images)
        proposals = self.rpn.proposals(objectness, offsets, self.anchors, self.size, keep)
        logits, box_offsets = self.head(self.pool(fine, proposals))
        probabilities = F.softmax(logits, -1)[:, 1:]
        box_offsets = box_offsets[:, 1:]  # (R, C, 4) without the background's
        found, start = [], 0
        for props in proposals:
            r = len(props)
            anchors = props.unsqueeze(1).expand(r, self.num_classes, 4).reshape(-1, 4)
            boxes = decode(box_offsets[start : start + r].reshape(-1, 4), anchors, HEAD_BOX_WEIGHTS)
            found.append(detections(boxes.reshape(r, self.num_classes, 4), probabilities[start : start + r],
                                    self.size, score_threshold, iou_threshold, top))  # fmt: skip
            start += r
        return found


def faster_rcnn_small(num_classes: int = 10, **kwargs) -> FasterRCNN:
    return FasterRCNN(num_classes, **kwargs)
