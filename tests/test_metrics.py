"""Mean IoU and mean average precision against hand-worked cases."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
from minigrad.metrics import average_precision, confusion_matrix, mean_average_precision, mean_iou


def test_mean_iou_counts_pixels_over_the_set():
    target = mg.tensor([[0, 0, 1, 1], [0, 2, 2, 2]])
    pred = mg.tensor([[0, 1, 1, 1], [0, 2, 2, 0]])
    confusion = confusion_matrix(pred, target, 4)
    assert confusion.tolist() == [[2, 1, 0, 0], [0, 2, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]]
    mean, per_class = mean_iou(pred, target, 4)
    # class 0: 2 / (2 + 1 + 1); class 1: 2 / 3; class 2: 2 / 3; class 3 absent from both: skipped.
    np.testing.assert_allclose(per_class[:3], [0.5, 2 / 3, 2 / 3])
    assert np.isnan(per_class[3])
    assert mean == pytest.approx((0.5 + 4 / 3) / 3)


def test_average_precision_takes_the_best_precision_at_higher_recall():
    # Two objects; detections by score: hit, miss, hit.
    recall, precision = np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3])
    assert average_precision(recall, precision) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


def _boxes(rows):
    return mg.tensor(rows, dtype=mg.float32).reshape(-1, 4)


def test_mean_average_precision_hand_worked():
    targets = [
        (_boxes([[0, 0, 10, 10], [20, 20, 30, 30]]), mg.tensor([0, 1])),
        (_boxes([[5, 5, 15, 15]]), mg.tensor([0])),
    ]
    detections = [
        # a hit on class 0, a duplicate of it (a false positive), a class-1 box in the wrong place
        (_boxes([[0, 0, 10, 10], [1, 0, 10, 10], [0, 20, 10, 30]]), mg.tensor([0.9, 0.8, 0.7]), mg.tensor([0, 0, 1])),
        (_boxes([[5, 5, 15, 14]]), mg.tensor([0.6]), mg.tensor([0])),  # IoU 0.9: a hit
    ]
    value, per_class = mean_average_precision(detections, targets)
    # class 0: hits at ranks 1 and 3 of 3, two objects -> 0.5 * 1 + 0.5 * 2/3; class 1: no hit.
    assert per_class == pytest.approx({0: 0.5 + 1 / 3, 1: 0.0})
    assert value == pytest.approx((0.5 + 1 / 3) / 2)


def test_mean_average_precision_is_one_for_perfect_detections_and_respects_the_threshold():
    targets = [(_boxes([[0, 0, 10, 10]]), mg.tensor([3])), (_boxes([[4, 4, 20, 20]]), mg.tensor([7]))]
    perfect = [(b, mg.tensor([0.5] * len(b)), l) for b, l in targets]
    assert mean_average_precision(perfect, targets)[0] == 1.0
    shifted = [
        (_boxes([[0, 0, 10, 6]]), mg.tensor([0.9]), mg.tensor([3])),
        (targets[1][0], mg.tensor([0.9]), mg.tensor([7])),
    ]
    assert mean_average_precision(shifted, targets, iou_threshold=0.5)[1] == {3: 1.0, 7: 1.0}  # IoU 0.6
    assert mean_average_precision(shifted, targets, iou_threshold=0.7)[1] == {3: 0.0, 7: 1.0}
    with pytest.raises(ValueError, match="2 images"):
        mean_average_precision(perfect[:1], targets)
