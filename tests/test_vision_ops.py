"""Resampling and detection ops: PyTorch's results where torch has the op, torchvision's
conventions against loop references (tests/op_db/vision.py) and hand-computed cases, the
fused bilinear kernel against its composition, and error messages."""

from __future__ import annotations

import math

import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F
from minigrad.ops.sample import BilinearSample, bilinear_reference, channels_last_table
from tests.op_db.vision import deform_conv2d_reference, roi_align_reference, roi_pool_reference

rng = np.random.default_rng(0)


def _np(x):
    return x.detach().cpu().numpy()


def _with_grads(fn, *arrays, lib):
    """fn's output and the gradients of sum(output * weights) for each input, as arrays."""
    inputs = [lib.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*inputs)
    weights = np.random.default_rng(1).standard_normal(tuple(out.shape)).astype(arrays[0].dtype)
    (out * lib.tensor(weights)).sum().backward()
    grads = [None if x.grad is None else x.grad.detach().cpu().numpy() for x in inputs]
    return out.detach().cpu().numpy(), grads


def _agrees_with_torch(mg_fn, torch_fn, *arrays, atol=1e-5):
    torch = pytest.importorskip("torch")
    out, grads = _with_grads(mg_fn, *arrays, lib=mg)
    want, want_grads = _with_grads(torch_fn, *arrays, lib=torch)
    np.testing.assert_allclose(out, want, atol=atol, rtol=1e-5)
    for g, w in zip(grads, want_grads):
        np.testing.assert_allclose(g, w, atol=atol, rtol=1e-4)


# --------------------------------------------------------------------------- resampling
_RESIZES = [
    {"size": (9, 4)},
    {"size": (5, 7)},
    {"scale_factor": 2},
    {"scale_factor": 1.7},
    {"scale_factor": (0.6, 2.3)},
]


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact", "bilinear", "bicubic"])
@pytest.mark.parametrize("resize", _RESIZES, ids=str)
def test_interpolate_2d_matches_torch(mode, resize):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 3, 5, 7)).astype(np.float32)
    for align_corners in [None] if mode.startswith("nearest") else [False, True]:
        _agrees_with_torch(
            lambda t: F.interpolate(t, mode=mode, align_corners=align_corners, **resize),
            lambda t: torch.nn.functional.interpolate(t, mode=mode, align_corners=align_corners, **resize),
            x,
        )


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact", "linear"])
@pytest.mark.parametrize("resize", [{"size": 9}, {"scale_factor": 1.7}, {"scale_factor": 0.4}, {"size": 1}], ids=str)
def test_interpolate_1d_matches_torch(mode, resize):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 3, 6)).astype(np.float32)
    for align_corners in [None] if mode.startswith("nearest") else [False, True]:
        _agrees_with_torch(
            lambda t: F.interpolate(t, mode=mode, align_corners=align_corners, **resize),
            lambda t: torch.nn.functional.interpolate(t, mode=mode, align_corners=align_corners, **resize),
            x,
        )


def test_interpolate_nearest_fractional_scale_uses_the_given_factor():
    # floor(dst / 1.3) over 4 outputs of 3 inputs reads 0, 0, 1, 2; floor(dst * 3 / 4) would read 0, 0, 1, 2 as well,
    # but a factor that keeps the size (3 * 1.3 -> 3) copies the input, as PyTorch does.
    x = mg.arange(3.0).reshape(1, 1, 3)
    assert F.interpolate(x, scale_factor=1.3).tolist() == [[[0.0, 1.0, 2.0]]]
    assert F.interpolate(mg.arange(4.0).reshape(1, 1, 4), scale_factor=1.5).tolist() == [
        [[0.0, 0.0, 1.0, 2.0, 2.0, 3.0]]
    ]


def test_interpolate_bilinear_is_exact_on_a_ramp_with_align_corners():
    x = mg.arange(4.0).reshape(1, 1, 1, 4).expand(1, 1, 2, 4)
    out = F.interpolate(x, size=(2, 7), mode="bilinear", align_corners=True)
    np.testing.assert_allclose(_np(out)[0, 0, 0], np.linspace(0, 3, 7), atol=1e-6)


@pytest.mark.parametrize("r", [1, 2, 3])
def test_pixel_shuffle_and_unshuffle_match_torch_and_invert_each_other(r):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 2 * r * r, 3, 4)).astype(np.float32)
    _agrees_with_torch(lambda t: F.pixel_shuffle(t, r), lambda t: torch.nn.functional.pixel_shuffle(t, r), x)
    y = rng.standard_normal((2, 2, 3 * r, 2 * r)).astype(np.float32)
    _agrees_with_torch(lambda t: F.pixel_unshuffle(t, r), lambda t: torch.nn.functional.pixel_unshuffle(t, r), y)
    np.testing.assert_array_equal(_np(F.pixel_unshuffle(F.pixel_shuffle(mg.tensor(x), r), r)), x)


@pytest.mark.filterwarnings("ignore:Since version 1.3.0, affine_grid")  # torch's note on unit-size grids
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("size", [(2, 3, 5, 4), (2, 1, 1, 3)])
def test_affine_grid_matches_torch(align_corners, size):
    torch = pytest.importorskip("torch")
    theta = rng.standard_normal((2, 2, 3)).astype(np.float32)
    _agrees_with_torch(
        lambda t: F.affine_grid(t, size, align_corners=align_corners),
        lambda t: torch.nn.functional.affine_grid(t, size, align_corners=align_corners),
        theta,
    )


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align_corners", [False, True])
def test_grid_sample_matches_torch(mode, padding_mode, align_corners):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 3, 5, 7)).astype(np.float32)
    grid = rng.uniform(-2.5, 2.5, (2, 4, 6, 2)).astype(np.float32)  # far outside too: reflection folds twice
    kwargs = {"mode": mode, "padding_mode": padding_mode, "align_corners": align_corners}
    out, (gx, ggrid) = _with_grads(lambda a, b: F.grid_sample(a, b, **kwargs), x, grid, lib=mg)
    want, (wx, wgrid) = _with_grads(lambda a, b: torch.nn.functional.grid_sample(a, b, **kwargs), x, grid, lib=torch)
    np.testing.assert_allclose(out, want, atol=1e-5)
    np.testing.assert_allclose(gx, wx, atol=1e-5)
    if mode == "bilinear":
        np.testing.assert_allclose(ggrid, wgrid, atol=1e-4)
    else:  # nearest: the output does not depend on the grid (torch reports zeros)
        assert ggrid is None and not wgrid.any()


def test_grid_sample_identity_grid_returns_the_input():
    x = mg.tensor(rng.standard_normal((2, 3, 4, 5)).astype(np.float32))
    theta = mg.tensor(np.tile(np.eye(2, 3, dtype=np.float32), (2, 1, 1)))
    out = F.grid_sample(x, F.affine_grid(theta, x.shape, align_corners=False), align_corners=False)
    np.testing.assert_allclose(_np(out), _np(x), atol=1e-6)


def test_bilinear_kernel_matches_its_composition():
    """The fused kernel against bilinear_reference: forward, gradients and double backward."""
    n, h, w, c = 2, 3, 4, 3
    table = mg.tensor(rng.standard_normal((n * h * w, c)), requires_grad=True)
    px = mg.tensor(rng.uniform(-1.5, w + 0.5, (n, 5)), requires_grad=True)
    py = mg.tensor(rng.uniform(-1.5, h + 0.5, (n, 5)), requires_grad=True)
    base = mg.arange(n).data[:, None] * (h * w)
    fused = BilinearSample.apply(table, px, py, base=base, height=h, width=w)
    composed = bilinear_reference(table, px, py, base, h, w)
    np.testing.assert_allclose(_np(fused), _np(composed), atol=1e-12)
    seed = mg.tensor(rng.standard_normal(fused.shape))
    got = mg.grad(fused, (table, px, py), seed, create_graph=True)
    want = mg.grad(composed, (table, px, py), seed, create_graph=True)
    for g, w_ in zip(got, want):
        np.testing.assert_allclose(_np(g), _np(w_), atol=1e-12)
    second = mg.grad(sum((g * g).sum() for g in got), (table, px, py))
    second_want = mg.grad(sum((g * g).sum() for g in want), (table, px, py))
    for g, w_ in zip(second, second_want):
        np.testing.assert_allclose(_np(g), _np(w_), atol=1e-10)
    # first order without create_graph takes the fast path: same numbers
    fast = mg.grad(BilinearSample.apply(table, px, py, base=base, height=h, width=w), (table, px, py), seed)
    for g, w_ in zip(fast, want):
        np.testing.assert_allclose(_np(g), _np(w_), atol=1e-12)


def test_channels_last_table_layout():
    x = mg.arange(24.0).reshape(2, 3, 2, 2)
    table = channels_last_table(x)
    assert table.shape == (8, 3)
    assert table[5].tolist() == _np(x)[1, :, 0, 1].tolist()  # image 1, pixel (0, 1)


# ---------------------------------------------------------------------------- boxes
def test_box_iou_and_giou_of_two_known_boxes():
    a = mg.tensor([[0.0, 0.0, 2.0, 2.0]])
    b = mg.tensor([[1.0, 1.0, 3.0, 3.0], [4.0, 0.0, 5.0, 1.0]])
    np.testing.assert_allclose(_np(F.box_area(b)), [4.0, 1.0])
    np.testing.assert_allclose(_np(F.box_iou(a, b)), [[1 / 7, 0.0]], rtol=1e-6)
    # enclosing boxes: 3 x 3 = 9 (union 7) and 5 x 2 = 10 (union 5)
    np.testing.assert_allclose(_np(F.generalized_box_iou(a, b)), [[1 / 7 - 2 / 9, 0 - 5 / 10]], rtol=1e-6)


def test_box_convert_known_values_and_round_trips():
    xyxy = mg.tensor([[1.0, 2.0, 5.0, 8.0]])
    assert F.box_convert(xyxy, "xyxy", "xywh").tolist() == [[1.0, 2.0, 4.0, 6.0]]
    assert F.box_convert(xyxy, "xyxy", "cxcywh").tolist() == [[3.0, 5.0, 4.0, 6.0]]
    boxes = mg.tensor(rng.uniform(0, 5, (6, 4)))
    for a in ("xyxy", "xywh", "cxcywh"):
        for b in ("xyxy", "xywh", "cxcywh"):
            back = F.box_convert(F.box_convert(boxes, a, b), b, a)
            np.testing.assert_allclose(_np(back), _np(boxes), atol=1e-12)


def _nms_reference(boxes, scores, threshold):
    """Greedy NMS, one box at a time."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    keep = []
    for i in order:
        if all(_pair_iou(boxes[i], boxes[j]) <= threshold for j in keep):
            keep.append(i)
    return keep


def _pair_iou(a, b):
    w = max(min(a[2], b[2]) - max(a[0], b[0]), 0)
    h = max(min(a[3], b[3]) - max(a[1], b[1]), 0)
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def test_nms_on_a_known_set():
    boxes = mg.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9.0], [21, 21, 30, 30]])
    scores = mg.tensor([0.9, 0.8, 0.7, 0.95, 0.5])
    keep = F.nms(boxes, scores, 0.5)
    # Box 3 (score 0.95) suppresses 0 (IoU 90 / 100) and 1 (IoU 72 / 118); 2 survives and suppresses 4 (81 / 100).
    assert keep.dtype == mg.int64 and keep.tolist() == [3, 2]
    assert F.nms(boxes, scores, 0.95).tolist() == [3, 0, 1, 2, 4]
    assert F.nms(mg.zeros(0, 4), mg.zeros(0), 0.5).tolist() == []


@pytest.mark.parametrize("seed", range(5))
def test_nms_and_batched_nms_match_greedy_loops(seed):
    r = np.random.default_rng(seed)
    xy = r.uniform(0, 20, (40, 2))
    boxes_np = np.concatenate([xy, xy + r.uniform(1, 8, (40, 2))], axis=1).astype(np.float32)
    scores_np = r.permutation(40).astype(np.float32)
    classes = r.integers(0, 3, 40)
    boxes, scores = mg.tensor(boxes_np), mg.tensor(scores_np)
    for threshold in (0.1, 0.3, 0.7):
        assert F.nms(boxes, scores, threshold).tolist() == _nms_reference(boxes_np, scores_np, threshold)
        kept = F.batched_nms(boxes, scores, mg.tensor(classes), threshold).tolist()
        per_class = [
            int(i)
            for c in range(3)
            for i in np.flatnonzero(classes == c)[
                _nms_reference(boxes_np[classes == c], scores_np[classes == c], threshold)
            ]
        ]
        assert kept == sorted(per_class, key=lambda i: -scores_np[i])


def test_sigmoid_focal_loss_known_values_and_exact_gradient_at_zero():
    x = mg.tensor([0.0, 0.0], dtype=mg.float64, requires_grad=True)
    targets = mg.tensor([1.0, 0.0], dtype=mg.float64)
    loss = F.sigmoid_focal_loss(x, targets)
    # p = 1/2: cross-entropy log 2, (1 - p_t)^2 = 1/4, alpha_t = 0.25 and 0.75
    np.testing.assert_allclose(_np(loss), [0.25 * math.log(2) / 4, 0.75 * math.log(2) / 4])
    loss.sum().backward()
    # at 0, for t = 1: ce' = p - 1 = -1/2 and ((1 - p)^2)' = -2 (1 - p) p (1 - p) = -1/4 (t = 0 mirrors it)
    expected_plain = -0.5 / 4 + math.log(2) * (-0.25)
    np.testing.assert_allclose(_np(x.grad), [0.25 * expected_plain, -0.75 * expected_plain])
    plain = F.sigmoid_focal_loss(mg.tensor([3.0, -2.0]), mg.tensor([1.0, 0.0]), alpha=-1, gamma=0, reduction="sum")
    np.testing.assert_allclose(plain.item(), math.log1p(math.exp(-3)) + math.log1p(math.exp(-2)), rtol=1e-6)
    big = F.sigmoid_focal_loss(mg.tensor([200.0, -200.0]), mg.tensor([0.0, 1.0]), alpha=-1, gamma=0)
    np.testing.assert_allclose(_np(big), [200.0, 200.0])  # no overflow


# ------------------------------------------------------------------------------ RoIs
def test_roi_align_on_a_ramp_reads_bin_centres():
    """Bilinear sampling is exact on a linear image, so each bin averages to its centre's x."""
    x = mg.arange(8.0).reshape(1, 1, 1, 8).expand(1, 1, 8, 8)
    out = F.roi_align(x, mg.tensor([[0.0, 1.0, 1.0, 5.0, 5.0]]), (2, 2), aligned=False)
    np.testing.assert_allclose(_np(out)[0, 0], [[2.0, 4.0], [2.0, 4.0]], atol=1e-6)
    aligned = F.roi_align(x, [mg.tensor([[1.0, 1.0, 5.0, 5.0]])], (2, 2), aligned=True)
    np.testing.assert_allclose(_np(aligned)[0, 0], [[1.5, 3.5], [1.5, 3.5]], atol=1e-6)


def test_roi_align_matches_the_loop_reference_with_adaptive_sampling():
    x = rng.standard_normal((2, 3, 9, 11)).astype(np.float32)
    rois = np.array([[0, 0.3, 0.2, 8.6, 7.9], [1, -2.0, 3.0, 14.0, 12.5], [1, 4.2, 4.1, 4.3, 4.2], [0, 2, 2, 30, 3]])
    for kwargs in ({}, {"aligned": True}, {"sampling_ratio": 3, "spatial_scale": 0.5}):
        got = F.roi_align(mg.tensor(x), mg.tensor(rois.astype(np.float32)), (3, 2), **kwargs)
        np.testing.assert_allclose(_np(got), roi_align_reference(x, rois, (3, 2), **kwargs), atol=1e-5)


def test_roi_pool_known_maxima_and_gradient_to_the_first_maximum():
    x = mg.tensor(np.arange(16.0).reshape(1, 1, 4, 4), requires_grad=True)
    out = F.roi_pool(x, mg.tensor([[0.0, 0.0, 0.0, 3.0, 3.0]]), (2, 2))
    assert out.tolist() == [[[[5.0, 7.0], [13.0, 15.0]]]]
    ties = mg.tensor(np.ones((1, 1, 4, 4)), requires_grad=True)
    F.roi_pool(ties, mg.tensor([[0.0, 0.0, 0.0, 3.0, 3.0]]), (1, 1)).sum().backward()
    expected = np.zeros((4, 4))
    expected[0, 0] = 1  # ties: the first maximum in row-major order wins, as in torchvision
    np.testing.assert_array_equal(_np(ties.grad)[0, 0], expected)


def test_roi_pool_matches_the_loop_reference():
    x = rng.standard_normal((2, 3, 9, 11)).astype(np.float32)
    rois = np.array([[0, 0.5, 0.2, 8.6, 7.9], [1, -2.0, 3.0, 14.0, 12.5], [1, 4.2, 4.1, 4.3, 4.2], [0, 20, 2, 30, 3]])
    for scale in (1.0, 0.5):
        got = F.roi_pool(mg.tensor(x), mg.tensor(rois.astype(np.float32)), (3, 2), spatial_scale=scale)
        np.testing.assert_allclose(_np(got), roi_pool_reference(x, rois, (3, 2), scale))


def test_roi_ops_accept_empty_rois():
    x = mg.zeros(1, 2, 4, 4)
    assert F.roi_align(x, mg.zeros(0, 5), 2).shape == (0, 2, 2, 2)
    assert F.roi_pool(x, [mg.zeros(0, 4)], 2).shape == (0, 2, 2, 2)


# ---------------------------------------------------------------- deformable convolution
def _conv2d(x, weight, padding):
    """Plain cross-correlation, stride 1, for comparison."""
    n, _, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    ho, wo = h + 2 * padding - kh + 1, w + 2 * padding - kw + 1
    out = np.zeros((n, c_out, ho, wo))
    for i in range(kh):
        for j in range(kw):
            out += np.einsum("nchw,oc->nohw", padded[:, :, i : i + ho, j : j + wo], weight[:, :, i, j])
    return out


def test_deform_conv2d_with_zero_offsets_is_a_convolution_and_integer_offsets_shift_it():
    x = rng.standard_normal((2, 3, 5, 6))
    weight = rng.standard_normal((4, 3, 3, 3))
    offset = np.zeros((2, 18, 5, 6))
    out = F.deform_conv2d(mg.tensor(x), mg.tensor(offset), mg.tensor(weight), padding=1)
    np.testing.assert_allclose(_np(out), _conv2d(x, weight, 1), atol=1e-10)
    shifted = offset.copy()
    shifted[:, 1::2] = 1.0  # every tap one pixel to the right: the padding moves from the left to the right
    out = F.deform_conv2d(mg.tensor(x), mg.tensor(shifted), mg.tensor(weight), padding=1)
    moved = np.pad(x, ((0, 0), (0, 0), (1, 1), (0, 2)))
    np.testing.assert_allclose(_np(out), _conv2d(moved, weight, 0), atol=1e-10)


def test_deform_conv2d_matches_the_loop_reference_with_groups_and_mask():
    x = rng.standard_normal((2, 4, 5, 5))
    weight = rng.standard_normal((6, 2, 2, 3))  # two weight groups
    offset = rng.uniform(-2, 2, (2, 2 * 2 * 6, 3, 2))  # two offset groups
    mask = rng.uniform(0, 1, (2, 2 * 6, 3, 2))
    bias = rng.standard_normal(6)
    kwargs = {"stride": 2, "padding": 1, "dilation": 2}
    got = F.deform_conv2d(
        mg.tensor(x), mg.tensor(offset), mg.tensor(weight), mg.tensor(bias), mask=mg.tensor(mask), **kwargs
    )
    want = deform_conv2d_reference(x, offset, weight, bias, mask=mask, **kwargs)
    np.testing.assert_allclose(_np(got), want, atol=1e-10)


# ---------------------------------------------------------------------------- errors
def test_errors_name_the_op_and_the_shapes():
    x = mg.zeros(1, 2, 4, 4)
    with pytest.raises(ValueError, match="exactly one of size and scale_factor"):
        F.interpolate(x)
    with pytest.raises(ValueError, match="unknown mode 'trilinear'"):
        F.interpolate(x, size=2, mode="trilinear")
    with pytest.raises(NotImplementedError, match=r"'bilinear' needs a 4-D input.*\(1, 2, 4\)"):
        F.interpolate(mg.zeros(1, 2, 4), size=2, mode="bilinear")
    with pytest.raises(ValueError, match="align_corners"):
        F.interpolate(x, size=2, align_corners=True)
    with pytest.raises(RuntimeError, match=r"pixel_shuffle: .*divisible by upscale_factor\^2 = 4.*\(1, 2, 4, 4\)"):
        F.pixel_shuffle(x, 2)
    with pytest.raises(RuntimeError, match=r"pixel_unshuffle: .*\(1, 2, 4, 4\)"):
        F.pixel_unshuffle(x, 3)
    with pytest.raises(
        RuntimeError, match=r"affine_grid: expected theta of shape \(N, 2, 3\) = \(1, 2, 3\).*\(1, 3, 3\)"
    ):
        F.affine_grid(mg.zeros(1, 3, 3), (1, 2, 4, 4))
    with pytest.raises(
        RuntimeError, match=r"grid_sample: expected a grid of shape \(N, Ho, Wo, 2\) with N = 1.*\(2, 3, 3, 2\)"
    ):
        F.grid_sample(x, mg.zeros(2, 3, 3, 2))
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        F.grid_sample(x, mg.zeros(1, 3, 3, 2), padding_mode="circular")
    with pytest.raises(RuntimeError, match=r"box_iou: expected boxes2 of shape \(N, 4\).*\(2, 5\)"):
        F.box_iou(mg.zeros(1, 4), mg.zeros(2, 5))
    with pytest.raises(ValueError, match="box_convert: formats"):
        F.box_convert(mg.zeros(1, 4), "xyxy", "yxyx")
    with pytest.raises(RuntimeError, match=r"nms: expected scores of shape \(3,\)"):
        F.nms(mg.zeros(3, 4), mg.zeros(2), 0.5)
    with pytest.raises(RuntimeError, match=r"roi_align: expected boxes as a \(K, 5\) tensor.*\(2, 4\)"):
        F.roi_align(x, mg.zeros(2, 4), 2)
    with pytest.raises(IndexError, match=r"roi_pool: roi batch indices must be in \[0, 1\)"):
        F.roi_pool(x, mg.tensor([[1.0, 0, 0, 1, 1]]), 2)
    with pytest.raises(RuntimeError, match=r"offset has 9 channels; expected 2 \* kh \* kw \* offset_groups = 18"):
        F.deform_conv2d(x, mg.zeros(1, 9, 2, 2), mg.zeros(3, 2, 3, 3))
    with pytest.raises(RuntimeError, match=r"expected offset of shape \(1, 18, 2, 2\).*got \(1, 18, 3, 3\)"):
        F.deform_conv2d(x, mg.zeros(1, 18, 3, 3), mg.zeros(3, 2, 3, 3))
    with pytest.raises(RuntimeError, match=r"expected mask of shape \(1, 9, 2, 2\)"):
        F.deform_conv2d(x, mg.zeros(1, 18, 2, 2), mg.zeros(3, 2, 3, 3), mask=mg.zeros(1, 18, 2, 2))
    with pytest.raises(ValueError, match="sigmoid_focal_loss: invalid reduction 'avg'"):
        F.sigmoid_focal_loss(mg.zeros(2), mg.zeros(2), reduction="avg")
