"""OpInfos for resampling and detection ops (ops/sample.py, ops/detection.py).

The references for RoI pooling, RoI Align and deformable convolution are torchvision's
CPU kernels transcribed with plain Python loops, one output value at a time. Sampling
points are drawn away from integer pixel coordinates (and half-integers, where reflection
folds), where bilinear sampling has kinks.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

import minigrad as mg
import minigrad.functional as F
import minigrad.testing as mgt
from tests.op_db import OpInfo, Sample


def t(shape, **kw):
    return mgt.tensors(shape=shape, **kw)


def _off_grid(low, high):
    """Floats in [low, high] whose fractional part stays in (0.15, 0.35) or (0.65, 0.85)."""
    whole = st.integers(math.floor(low), math.ceil(high) - 1)
    frac = st.one_of(st.floats(0.15, 0.35), st.floats(0.65, 0.85))
    return st.builds(lambda i, f: i + f, whole, frac)


# -------------------------------------------------------------------------- references
def roi_align_reference(input, rois, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    """torchvision's roi_align, one sample at a time."""
    c, h, w = input.shape[1:]
    ph, pw = output_size
    out = np.zeros((len(rois), c, ph, pw), input.dtype)

    def bilinear(image, y, x):
        if y < -1 or y > h or x < -1 or x > w:
            return 0.0
        y, x = max(y, 0.0), max(x, 0.0)
        y_low, x_low = int(y), int(x)
        y_high, x_high = y_low + 1, x_low + 1
        if y_low >= h - 1:
            y_high = y_low = h - 1
            y = float(y_low)
        if x_low >= w - 1:
            x_high = x_low = w - 1
            x = float(x_low)
        ly, lx = y - y_low, x - x_low
        hy, hx = 1 - ly, 1 - lx
        return (
            hy * hx * image[:, y_low, x_low]
            + hy * lx * image[:, y_low, x_high]
            + ly * hx * image[:, y_high, x_low]
            + ly * lx * image[:, y_high, x_high]
        )

    for k, (b, x1, y1, x2, y2) in enumerate(rois):
        shift = 0.5 if aligned else 0.0
        start_x, start_y = x1 * spatial_scale - shift, y1 * spatial_scale - shift
        width, height = x2 * spatial_scale - shift - start_x, y2 * spatial_scale - shift - start_y
        if not aligned:
            width, height = max(width, 1.0), max(height, 1.0)
        bin_h, bin_w = height / ph, width / pw
        grid_h = sampling_ratio if sampling_ratio > 0 else math.ceil(height / ph)
        grid_w = sampling_ratio if sampling_ratio > 0 else math.ceil(width / pw)
        count = max(grid_h * grid_w, 1)
        for i in range(ph):
            for j in range(pw):
                total = 0.0
                for iy in range(grid_h):
                    y = start_y + i * bin_h + (iy + 0.5) * bin_h / grid_h
                    for ix in range(grid_w):
                        x = start_x + j * bin_w + (ix + 0.5) * bin_w / grid_w
                        total = total + bilinear(input[int(b)], y, x)
                out[k, :, i, j] = total / count
    return out


def _c_round(v):
    return math.floor(v + 0.5) if v >= 0 else -math.floor(-v + 0.5)


def roi_pool_reference(input, rois, output_size, spatial_scale=1.0):
    """torchvision's roi_pool, one bin at a time."""
    c, h, w = input.shape[1:]
    ph, pw = output_size
    out = np.zeros((len(rois), c, ph, pw), input.dtype)
    for k, (b, x1, y1, x2, y2) in enumerate(rois):
        start_w, start_h = _c_round(x1 * spatial_scale), _c_round(y1 * spatial_scale)
        end_w, end_h = _c_round(x2 * spatial_scale), _c_round(y2 * spatial_scale)
        bin_h = max(end_h - start_h + 1, 1) / ph
        bin_w = max(end_w - start_w + 1, 1) / pw
        for i in range(ph):
            for j in range(pw):
                h0 = min(max(math.floor(i * bin_h) + start_h, 0), h)
                h1 = min(max(math.ceil((i + 1) * bin_h) + start_h, 0), h)
                w0 = min(max(math.floor(j * bin_w) + start_w, 0), w)
                w1 = min(max(math.ceil((j + 1) * bin_w) + start_w, 0), w)
                if h1 > h0 and w1 > w0:
                    out[k, :, i, j] = input[int(b), :, h0:h1, w0:w1].max(axis=(1, 2))
    return out


def deform_conv2d_reference(input, offset, weight, bias=None, stride=1, padding=0, dilation=1, mask=None):
    """torchvision's deform_conv2d, one output pixel and tap at a time (square stride, padding, dilation)."""
    n, c_in, h, w = input.shape
    c_out, c_group, kh, kw = weight.shape
    ho, wo = offset.shape[2:]
    offset_groups = offset.shape[1] // (2 * kh * kw)
    per_offset_group, groups = c_in // offset_groups, c_in // c_group

    def bilinear(image, y, x):
        if y <= -1 or h <= y or x <= -1 or w <= x:
            return 0.0
        y0, x0 = math.floor(y), math.floor(x)
        total = 0.0
        for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
            for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
                if 0 <= yy < h and 0 <= xx < w:
                    total = total + wy * wx * image[yy, xx]
        return total

    out = np.zeros((n, c_out, ho, wo), input.dtype)
    for b in range(n):
        for oy in range(ho):
            for ox in range(wo):
                columns = np.zeros((c_in, kh, kw), input.dtype)
                for ch in range(c_in):
                    g = ch // per_offset_group
                    for i in range(kh):
                        for j in range(kw):
                            k = i * kw + j
                            y = oy * stride - padding + i * dilation + offset[b, g * 2 * kh * kw + 2 * k, oy, ox]
                            x = ox * stride - padding + j * dilation + offset[b, g * 2 * kh * kw + 2 * k + 1, oy, ox]
                            scale = 1.0 if mask is None else mask[b, g * kh * kw + k, oy, ox]
                            columns[ch, i, j] = scale * bilinear(input[b, ch], y, x)
                for o in range(c_out):
                    group = o // (c_out // groups)
                    out[b, o, oy, ox] = (weight[o] * columns[group * c_group : (group + 1) * c_group]).sum()
                    if bias is not None:
                        out[b, o, oy, ox] += bias[o]
    return out


def _np_box_area(b):
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def _np_inter_union(b1, b2):
    lt = np.maximum(b1[:, None, :2], b2[None, :, :2])
    rb = np.minimum(b1[:, None, 2:], b2[None, :, 2:])
    sides = np.clip(rb - lt, 0, None)
    inter = sides[..., 0] * sides[..., 1]
    return inter, _np_box_area(b1)[:, None] + _np_box_area(b2)[None, :] - inter


def _np_box_iou(b1, b2):
    inter, union = _np_inter_union(b1, b2)
    return inter / union


def _np_giou(b1, b2):
    inter, union = _np_inter_union(b1, b2)
    sides = np.maximum(b1[:, None, 2:], b2[None, :, 2:]) - np.minimum(b1[:, None, :2], b2[None, :, :2])
    enclosing = sides[..., 0] * sides[..., 1]
    return inter / union - (enclosing - union) / enclosing


def _np_box_convert(b, in_fmt, out_fmt):
    x1, y1, p, q = b.T
    xyxy = {
        "xyxy": (x1, y1, p, q),
        "xywh": (x1, y1, x1 + p, y1 + q),
        "cxcywh": (x1 - p / 2, y1 - q / 2, x1 + p / 2, y1 + q / 2),
    }
    a, c, e, f = xyxy[in_fmt]
    result = {"xyxy": (a, c, e, f), "xywh": (a, c, e - a, f - c), "cxcywh": ((a + e) / 2, (c + f) / 2, e - a, f - c)}
    return np.stack(result[out_fmt], axis=-1)


def _np_focal(x, targets, alpha=0.25, gamma=2, reduction="none"):
    p = 1 / (1 + np.exp(-x))
    ce = np.logaddexp(0, -x) + (1 - targets) * x
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[reduction]


# ---------------------------------------------------------------------------- samples
@st.composite
def _interpolate_samples(draw):
    mode = draw(st.sampled_from(["nearest", "nearest-exact", "linear", "bilinear", "bicubic"]))
    n_spatial = 1 if mode == "linear" else 2 if mode in ("bilinear", "bicubic") else draw(st.sampled_from([1, 2]))
    spatial = tuple(draw(st.integers(1, 4)) for _ in range(n_spatial))
    x = draw(t((draw(st.integers(1, 2)), draw(st.integers(1, 2))) + spatial))
    kwargs = {"mode": mode}
    if draw(st.booleans()):
        kwargs["size"] = tuple(draw(st.integers(1, 6)) for _ in spatial)
    else:
        kwargs["scale_factor"] = draw(st.sampled_from([0.5, 1.5, 2.0, 2.3]))
        if min(math.floor(s * kwargs["scale_factor"]) for s in spatial) < 1:
            kwargs["scale_factor"] = 2.0
    if not mode.startswith("nearest"):
        kwargs["align_corners"] = draw(st.booleans())
    return Sample((x,), kwargs)


@st.composite
def _pixel_shuffle_samples(draw, unshuffle):
    r = draw(st.integers(1, 2))
    lead = tuple(draw(st.lists(st.integers(1, 2), max_size=2)))
    c, h, w = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    shape = lead + ((c, h * r, w * r) if unshuffle else (c * r * r, h, w))
    return Sample((draw(t(shape)), r))


def _np_pixel_shuffle(x, r):
    *lead, c, h, w = x.shape
    k = len(lead)
    y = x.reshape(*lead, c // (r * r), r, r, h, w).transpose(*range(k), k, k + 3, k + 1, k + 4, k + 2)
    return y.reshape(*lead, c // (r * r), h * r, w * r)


def _np_pixel_unshuffle(x, r):
    *lead, c, h, w = x.shape
    k = len(lead)
    y = x.reshape(*lead, c, h // r, r, w // r, r).transpose(*range(k), k, k + 2, k + 4, k + 1, k + 3)
    return y.reshape(*lead, c * r * r, h // r, w // r)


@st.composite
def _affine_grid_samples(draw):
    n, h, w = draw(st.integers(1, 2)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    return Sample((draw(t((n, 2, 3))), (n, 2, h, w)), {"align_corners": draw(st.booleans())})


def _np_affine_grid(theta, size, align_corners=False):
    n, _, h, w = size

    def side(k):
        if k == 1:
            return np.zeros(1)
        steps = np.linspace(-1, 1, k)
        return steps if align_corners else steps * (k - 1) / k

    xs, ys = np.meshgrid(side(w), side(h))
    base = np.stack([xs, ys, np.ones_like(xs)], axis=-1)  # (H, W, 3)
    return np.einsum("hwk,nik->nhwi", base, theta)


@st.composite
def _grid_sample_samples(draw):
    mode = draw(st.sampled_from(["bilinear", "nearest"]))
    padding_mode = draw(st.sampled_from(["zeros", "border", "reflection"]))
    align_corners = draw(st.booleans())
    n, c, h, w = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(2, 4)), draw(st.integers(2, 4))
    ho, wo = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    x = draw(t((n, c, h, w)))

    def normalized(pixel, size):  # the grid value that lands on this pixel coordinate
        return 2 * pixel / (size - 1) - 1 if align_corners else (2 * pixel + 1) / size - 1

    px = np.array(draw(st.lists(_off_grid(-1.5, w + 0.5), min_size=n * ho * wo, max_size=n * ho * wo)))
    py = np.array(draw(st.lists(_off_grid(-1.5, h + 0.5), min_size=n * ho * wo, max_size=n * ho * wo)))
    grid = np.stack([normalized(px, w), normalized(py, h)], axis=-1).reshape(n, ho, wo, 2)
    grid = mg.tensor(grid, dtype=mg.float64, requires_grad=mode == "bilinear")
    return Sample((x, grid), {"mode": mode, "padding_mode": padding_mode, "align_corners": align_corners})


@st.composite
def _rois(draw, n, h, w, as_list):
    """Boxes inside and around an image of h x w, as a (K, 5) tensor or a list of (L, 4) tensors."""
    counts = [draw(st.integers(0 if as_list else 1, 2)) for _ in range(n)]
    boxes = []
    for b, count in enumerate(counts):
        for _ in range(count):
            x1, y1 = draw(st.floats(-1.0, w - 0.5)), draw(st.floats(-1.0, h - 0.5))
            bw, bh = draw(st.floats(0.2, w + 1.0)), draw(st.floats(0.2, h + 1.0))
            boxes.append((b, x1, y1, x1 + bw, y1 + bh))
    rois = np.array(boxes, dtype=np.float64).reshape(-1, 5)
    if as_list:
        return [mg.tensor(rois[rois[:, 0] == b, 1:], dtype=mg.float64) for b in range(n)]
    return mg.tensor(rois, dtype=mg.float64)


def _as_rois(boxes):
    if isinstance(boxes, list):
        parts = [np.concatenate([np.full((len(b), 1), i), b], axis=1) for i, b in enumerate(boxes)]
        return np.concatenate(parts).reshape(-1, 5)
    return boxes


@st.composite
def _roi_samples(draw, align):
    n, c, h, w = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(2, 5)), draw(st.integers(2, 5))
    x = draw(t((n, c, h, w), distinct=not align))  # roi_pool's maxima must not tie
    boxes = draw(_rois(n, h, w, as_list=draw(st.booleans())))
    kwargs = {"spatial_scale": draw(st.sampled_from([1.0, 0.5]))}
    if align:
        kwargs["sampling_ratio"] = draw(st.sampled_from([-1, 1, 2]))
        kwargs["aligned"] = draw(st.booleans())
    return Sample((x, boxes, (draw(st.integers(1, 3)), draw(st.integers(1, 3)))), kwargs)


def _ref_roi(reference):
    def ref(x, boxes, output_size, **kwargs):
        return reference(x, _as_rois(boxes), output_size, **kwargs)

    return ref


@st.composite
def _deform_samples(draw):
    offset_groups, groups = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    c_in = offset_groups * groups
    c_out = groups * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    n, h, w = draw(st.integers(1, 2)), draw(st.integers(2, 4)), draw(st.integers(2, 4))
    stride, padding, dilation = draw(st.integers(1, 2)), draw(st.integers(0, 1)), draw(st.integers(1, 2))
    ho = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    wo = (w + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    if ho < 1 or wo < 1:
        stride, padding, dilation, kh, kw = 1, 0, 1, 1, 1
        ho, wo = h, w
    count = n * 2 * offset_groups * kh * kw * ho * wo
    offset = np.array(draw(st.lists(_off_grid(-1.5, 1.5), min_size=count, max_size=count)))
    offset = mg.tensor(offset.reshape(n, 2 * offset_groups * kh * kw, ho, wo), dtype=mg.float64, requires_grad=True)
    bias = draw(st.none() | t((c_out,)))
    mask = draw(st.none() | t((n, offset_groups * kh * kw, ho, wo), low=0.0, high=1.0))
    args = (draw(t((n, c_in, h, w))), offset, draw(t((c_out, c_in // groups, kh, kw))), bias, mask)
    return Sample(args, {"stride": stride, "padding": padding, "dilation": dilation})


def _deform(x, offset, weight, bias, mask, **kwargs):  # bias and mask positional: their gradients are checked
    return F.deform_conv2d(x, offset, weight, bias, mask=mask, **kwargs)


def _np_deform(x, offset, weight, bias, mask, **kwargs):
    return deform_conv2d_reference(x, offset, weight, bias, mask=mask, **kwargs)


@st.composite
def _box_pairs(draw):
    """Two sets of boxes whose coordinates never tie (no kinks in max, min and the clamp)."""
    n, m = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    values = draw(mgt.arrays((n + m, 2, 2), low=0.0, high=8.0, distinct=True, contiguous=True))
    values.sort(axis=-1)  # (box, x or y, low and high)
    corners = np.stack([values[:, 0, 0], values[:, 1, 0], values[:, 0, 1], values[:, 1, 1]], axis=-1)
    return Sample((mg.tensor(corners[:n], requires_grad=True), mg.tensor(corners[n:], requires_grad=True)))


@st.composite
def _box_convert_samples(draw):
    in_fmt, out_fmt = (
        draw(st.sampled_from(["xyxy", "xywh", "cxcywh"])),
        draw(st.sampled_from(["xyxy", "xywh", "cxcywh"])),
    )
    return Sample((draw(t((draw(st.integers(0, 3)), 4))), in_fmt, out_fmt))


@st.composite
def _focal_samples(draw):
    shape = draw(mgt.shapes(1, 2, 1, 4))
    x = draw(t(shape))
    targets = draw(st.one_of(mgt.arrays(shape, dtype=np.int64, low=0, high=1), mgt.arrays(shape, low=0.0, high=1.0)))
    kwargs = {
        "alpha": draw(st.sampled_from([0.25, 0.5, -1.0])),
        "gamma": draw(st.sampled_from([0, 1, 1.5, 2])),
        "reduction": draw(st.sampled_from(["none", "mean", "sum"])),
    }
    return Sample((x, mg.tensor(targets.astype(np.float64))), kwargs)


OPS = [
    OpInfo("interpolate", F.interpolate, _interpolate_samples()),
    OpInfo("pixel_shuffle", F.pixel_shuffle, _pixel_shuffle_samples(False), _np_pixel_shuffle),
    OpInfo("pixel_unshuffle", F.pixel_unshuffle, _pixel_shuffle_samples(True), _np_pixel_unshuffle),
    OpInfo("affine_grid", F.affine_grid, _affine_grid_samples(), _np_affine_grid),
    OpInfo("grid_sample", F.grid_sample, _grid_sample_samples(), ref_atol=1e-10),
    OpInfo("roi_align", F.roi_align, _roi_samples(align=True), _ref_roi(roi_align_reference), ref_atol=1e-10),
    OpInfo("roi_pool", F.roi_pool, _roi_samples(align=False), _ref_roi(roi_pool_reference)),
    OpInfo("deform_conv2d", _deform, _deform_samples(), _np_deform, fast=True, ref_atol=1e-10),
    OpInfo("box_area", F.box_area, _box_pairs().map(lambda s: Sample(s.args[:1])), _np_box_area),
    OpInfo("box_iou", F.box_iou, _box_pairs(), _np_box_iou),
    OpInfo("generalized_box_iou", F.generalized_box_iou, _box_pairs(), _np_giou),
    OpInfo("box_convert", F.box_convert, _box_convert_samples(), _np_box_convert),
    OpInfo("sigmoid_focal_loss", F.sigmoid_focal_loss, _focal_samples(), _np_focal),
]
