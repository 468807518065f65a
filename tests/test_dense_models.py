"""Dense prediction: the anchor and box-coding helpers SSD and Faster R-CNN share, and the
U-Net, SSD and Faster R-CNN models (shapes, losses, a backward, clear errors)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import minigrad as mg
from minigrad.data import scenes
from nn import models
from nn.models.detection import BACKGROUND, IGNORE, anchor_grid, decode, detections, encode, match, sample


# ------------------------------------------------------------------------------ helpers
def test_anchor_grid_centres_sizes_and_order():
    anchors = anchor_grid(2, 8, sizes=(8, 16), aspect_ratios=(1.0, 4.0)).cpu().numpy()
    assert anchors.shape == (2 * 2 * 4, 4)
    centres = (anchors[:, :2] + anchors[:, 2:]) / 2
    # (row, column, anchor) order: cell (0, 0), then (0, 1) to the right, then (1, 0).
    np.testing.assert_allclose(centres[::4], [[4, 4], [12, 4], [4, 12], [12, 12]])
    width, height = anchors[:4, 2] - anchors[:4, 0], anchors[:4, 3] - anchors[:4, 1]
    np.testing.assert_allclose(width * height, [64, 64, 256, 256], rtol=1e-6)
    np.testing.assert_allclose(height / width, [1, 4, 1, 4], rtol=1e-6)


def test_encode_follows_the_formula_and_decode_inverts_it():
    anchors = mg.tensor([[0.0, 0.0, 10.0, 20.0], [5.0, 5.0, 9.0, 9.0]])
    boxes = mg.tensor([[2.0, 1.0, 14.0, 21.0], [4.0, 6.0, 8.0, 12.0]])
    weights = (10.0, 10.0, 5.0, 5.0)
    offsets = encode(boxes, anchors, weights)
    # first row: centres (8, 11) vs (5, 10), sizes (12, 20) vs (10, 20)
    np.testing.assert_allclose(offsets.cpu().numpy()[0], [10 * 3 / 10, 10 * 1 / 20, 5 * math.log(1.2), 0], rtol=1e-5)
    np.testing.assert_allclose(decode(offsets, anchors, weights).cpu().numpy(), boxes.cpu().numpy(), atol=1e-5)


def test_match_thresholds_ignore_band_and_forced_best_anchor():
    anchors = mg.tensor([[0.0, 0, 10, 10], [0, 0, 10, 12], [0, 0, 10, 16], [30, 30, 40, 40], [50, 50, 60, 60]])
    boxes = mg.tensor([[0.0, 0, 10, 10], [31, 31, 48, 48]])
    matched = match(anchors, boxes, positive=0.7, negative=0.5).tolist()
    # IoUs with box 0: 1, 10/12, 10/16 = 0.625 (between: ignored); anchor 3 is box 1's best
    # anchor (IoU 81/308), so it takes box 1 although far below the threshold.
    assert matched == [0, 0, IGNORE, 1, BACKGROUND]
    assert match(anchors, mg.zeros(0, 4)).tolist() == [BACKGROUND] * 5


def test_sample_bounds_the_positives():
    mg.manual_seed(0)
    matched = mg.tensor([0, 1, 2, 0, BACKGROUND, BACKGROUND, IGNORE, BACKGROUND, 1, BACKGROUND])
    positives, negatives = sample(matched, 6, 0.25)
    assert len(positives) == 1 and len(negatives) == 4  # only 4 background anchors exist
    assert all(matched[p].item() >= 0 for p in positives.tolist())
    assert all(matched[n].item() == BACKGROUND for n in negatives.tolist())


def test_detections_suppress_within_a_class_only_and_clip():
    boxes = mg.tensor([[0.0, 0, 10, 10], [1, 0, 10, 10], [-5, 30, 20, 40]])  # boxes 0 and 1 overlap (IoU 0.9)
    scores = mg.tensor([[0.9, 0.8], [0.7, 0.01], [0.02, 0.6]])  # (K, C)
    found_boxes, found_scores, labels = detections(boxes, scores, size=32, score_threshold=0.05, iou_threshold=0.5)
    # class 0 keeps box 0 (box 1 suppressed); class 1 keeps box 0 (0.8) and box 2 (0.6, clipped).
    assert found_scores.tolist() == pytest.approx([0.9, 0.8, 0.6])
    assert labels.tolist() == [0, 1, 1]
    assert found_boxes.tolist()[2] == [0, 30, 20, 32]


# ------------------------------------------------------------------------------- models
@pytest.mark.parametrize("mode", ["nearest", "bilinear", "transposed", "pixelshuffle"])
def test_unet_upsampling_modes(mode):
    mg.manual_seed(0)
    model = models.unet_small(num_classes=3, width=4, depth=2, upsample=mode)
    logits = model(mg.randn(2, 1, 16, 16))
    assert logits.shape == (2, 3, 16, 16)
    mg.functional.cross_entropy(logits, mg.randint(0, 3, (2, 16, 16))).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_unet_errors():
    with pytest.raises(ValueError, match="unknown upsample mode 'cubic'"):
        models.unet_small(upsample="cubic")
    with pytest.raises(RuntimeError, match=r"UNet: .*divisible by 8.*\(1, 1, 20, 20\)"):
        models.unet_small(width=4)(mg.randn(1, 1, 20, 20))


@pytest.fixture(scope="module")
def few_scenes():
    return scenes(3, seed=1).to(mg.backend.get_default_device())


def test_ssd_outputs_losses_and_detections(few_scenes):
    mg.manual_seed(0)
    model = models.ssd_small(10, width=8)
    n_anchors = 8 * 8 * 4 + 4 * 4 * 4
    assert model.anchors.shape == (n_anchors, 4)
    logits, offsets = model(few_scenes.images)
    assert logits.shape == (3, n_anchors, 11) and offsets.shape == (3, n_anchors, 4)
    box_loss, class_loss = model.loss(logits, offsets, few_scenes.boxes, few_scenes.labels)
    (box_loss + class_loss).backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    for boxes, scores, labels in model.detect(few_scenes.images):
        assert boxes.shape[1] == 4 and len(boxes) == len(scores) == len(labels) <= 20
        assert all(0 <= label < 10 for label in labels.tolist())
    with pytest.raises(RuntimeError, match=r"SSD: expected images \(N, C, 64, 64\)"):
        model(mg.randn(1, 1, 32, 32))


@pytest.mark.parametrize("pooling", ["align", "pool"])
def test_faster_rcnn_losses_and_detections(few_scenes, pooling):
    mg.manual_seed(0)
    model = models.faster_rcnn_small(10, width=8, pooling=pooling)
    losses = model.losses(few_scenes.images, few_scenes.boxes, few_scenes.labels)
    assert sorted(losses) == ["box regression", "classifier", "rpn box", "rpn objectness"]
    assert losses["classifier"].item() == pytest.approx(math.log(11), rel=0.2)  # near chance at init
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    found = model.detect(few_scenes.images)
    assert len(found) == 3 and all(len(b) == len(s) == len(lab) for b, s, lab in found)
    with pytest.raises(ValueError, match="pooling must be"):
        models.faster_rcnn_small(pooling="max")
