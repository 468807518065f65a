"""Evaluation metrics for dense prediction: mean IoU of segmentations, mean average precision
of detections (PASCAL VOC's definition). Metrics are not differentiable; they read the
tensors' arrays on the host.
"""

from __future__ import annotations

from minigrad import backend
from minigrad.tensor import Tensor

np = backend.numpy


def _host(x):
    return backend.to_numpy(x.data) if isinstance(x, Tensor) else np.asarray(x)


# ------------------------------------------------------------------------ segmentation
def confusion_matrix(pred, target, num_classes: int):
    """(num_classes, num_classes) int64 counts: row = true class, column = predicted class.

    pred, target: integer class maps of the same shape (Tensors or arrays).
    """
    pred, target = _host(pred).ravel(), _host(target).ravel()
    if pred.shape != target.shape:
        raise ValueError(f"confusion_matrix: pred has {pred.size} elements, target {target.size}")
    pair = target.astype(np.int64) * num_classes + pred.astype(np.int64)
    return np.bincount(pair, minlength=num_classes**2).reshape(num_classes, num_classes)


def iou_per_class(confusion):
    """IoU = TP / (TP + FP + FN) of each class from a confusion matrix; NaN for a class that
    appears neither in the targets nor in the predictions."""
    true_positive = np.diag(confusion).astype(np.float64)
    union = confusion.sum(0) + confusion.sum(1) - true_positive
    return np.where(union > 0, true_positive / np.maximum(union, 1), np.nan)


def mean_iou(pred, target, num_classes: int) -> tuple:
    """Mean over classes of the IoU of predicted and true class maps (background included),
    counting pixels over the whole set; classes absent from both are skipped.
    Returns (mean IoU, per-class IoU array)."""
    per_class = iou_per_class(confusion_matrix(pred, target, num_classes))
    return float(np.nanmean(per_class)), per_class


# --------------------------------------------------------------------------- detection
def _iou(box, boxes):
    """IoU of one (4,) box with each of (M, 4) boxes, (x1, y1, x2, y2)."""
    sides = np.clip(np.minimum(box[2:], boxes[:, 2:]) - np.maximum(box[:2], boxes[:, :2]), 0, None)
    inter = sides[:, 0] * sides[:, 1]
    area = (box[2] - box[0]) * (box[3] - box[1])
    union = area + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter
    return inter / np.maximum(union, 1e-12)


def average_precision(recall, precision) -> float:
    """Area under the precision-recall curve with precision made monotone (each point takes
    the best precision at any higher recall): VOC 2010's all-point interpolation."""
    recall = np.concatenate([[0.0], recall, [1.0]])
    precision = np.concatenate([[0.0], precision, [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.nonzero(recall[1:] != recall[:-1])[0]
    return float(((recall[steps + 1] - recall[steps]) * precision[steps + 1]).sum())


def mean_average_precision(detections, targets, iou_threshold: float = 0.5) -> tuple:
    """mAP at ``iou_threshold`` over the classes that have ground-truth objects.

    detections: per image a tuple (boxes (D, 4), scores (D,), labels (D,)); targets: per image
    (boxes (G, 4), labels (G,)). Within a class, detections are taken by decreasing score over
    all images; one is a true positive when its best-overlapping ground-truth box of that class
    in its image has IoU >= ``iou_threshold`` and is not yet claimed. Returns (mAP, {class: AP}).
    """
    if len(detections) != len(targets):
        raise ValueError(f"mean_average_precision: {len(detections)} detection lists for {len(targets)} images")
    found = [tuple(_host(part) for part in d) for d in detections]
    truth = [tuple(_host(part) for part in t) for t in targets]
    classes = sorted({int(c) for _, labels in truth for c in labels.tolist()})
    per_class = {}
    for c in classes:
        gt = [boxes[labels == c] for boxes, labels in truth]
        claimed = [np.zeros(len(g), dtype=bool) for g in gt]
        n_gt = sum(len(g) for g in gt)
        hits = [
            (float(score), image, box)
            for image, (boxes, scores, labels) in enumerate(found)
            for box, score in zip(boxes[labels == c], scores[labels == c])
        ]
        hits.sort(key=lambda hit: -hit[0])
        true_positive = np.zeros(len(hits))
        for k, (_, image, box) in enumerate(hits):
            if len(gt[image]) == 0:
                continue
            overlaps = _iou(box, gt[image])
            best = int(overlaps.argmax())
            if overlaps[best] >= iou_threshold and not claimed[image][best]:
                claimed[image][best] = True
                true_positive[k] = 1
        tp = np.cumsum(true_positive)
        recall = tp / max(n_gt, 1)
        precision = tp / np.arange(1, len(hits) + 1)
        per_class[c] = average_precision(recall, precision)
    return (float(np.mean(list(per_class.values()))) if per_class else 0.0), per_class
