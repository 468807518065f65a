"""Detection ops with torchvision.ops' names and conventions.

Boxes are ``(x1, y1, x2, y2)``; regions of interest (rois) are a ``(K, 5)`` tensor of
``(batch index, x1, y1, x2, y2)`` or a list of ``(L, 4)`` boxes, one per image.

Box geometry (areas, IoU) is composed of differentiable ops. ``nms`` returns integer
indices (no gradient). RoI pooling and deformable convolution gather pixels from a
channel-last table of the input: ``roi_pool`` at each bin's maximum, ``roi_align`` and
``deform_conv2d`` by bilinear sampling (``BilinearSample`` in sample.py), so gradients
scatter back to the input (and, for deform_conv2d, to the offsets and the mask).
"""

from __future__ import annotations

from minigrad import backend
from minigrad.backend import array_module
from minigrad.ops.elementwise import clamp, maximum, minimum, sigmoid, where
from minigrad.ops.linalg import matmul
from minigrad.ops.reduce import logsumexp
from minigrad.ops.sample import bilinear_sample, channels_last_table
from minigrad.ops.shape import stack, unbind
from minigrad.tensor import Tensor


# ------------------------------------------------------------------------ box geometry
def _check_boxes(boxes, name, what="boxes"):
    if not isinstance(boxes, Tensor) or boxes.ndim != 2 or boxes.shape[1] != 4:
        shape = tuple(boxes.shape) if isinstance(boxes, Tensor) else type(boxes).__name__
        raise RuntimeError(f"{name}: expected {what} of shape (N, 4) as (x1, y1, x2, y2), got {shape}")


def box_area(boxes: Tensor) -> Tensor:
    """boxes: (N, 4) -> (N,) areas."""
    _check_boxes(boxes, "box_area")
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _inter_union(boxes1, boxes2):
    """Intersection and union areas of every pair: two (N, M) tensors."""
    top_left = maximum(boxes1[:, None, :2], boxes2[:, :2])
    bottom_right = minimum(boxes1[:, None, 2:], boxes2[:, 2:])
    sides = clamp(bottom_right - top_left, min=0)
    inter = sides[..., 0] * sides[..., 1]
    union = box_area(boxes1)[:, None] + box_area(boxes2) - inter
    return inter, union


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """boxes1: (N, 4), boxes2: (M, 4) -> (N, M) intersection over union."""
    _check_boxes(boxes1, "box_iou", "boxes1")
    _check_boxes(boxes2, "box_iou", "boxes2")
    inter, union = _inter_union(boxes1, boxes2)
    return inter / union


def generalized_box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """boxes1: (N, 4), boxes2: (M, 4) -> (N, M): IoU minus the share of the enclosing box
    that the union leaves empty (in [-1, 1])."""
    _check_boxes(boxes1, "generalized_box_iou", "boxes1")
    _check_boxes(boxes2, "generalized_box_iou", "boxes2")
    inter, union = _inter_union(boxes1, boxes2)
    top_left = minimum(boxes1[:, None, :2], boxes2[:, :2])
    bottom_right = maximum(boxes1[:, None, 2:], boxes2[:, 2:])
    sides = clamp(bottom_right - top_left, min=0)
    enclosing = sides[..., 0] * sides[..., 1]
    return inter / union - (enclosing - union) / enclosing


_BOX_FORMATS = ("xyxy", "xywh", "cxcywh")


def box_convert(boxes: Tensor, in_fmt: str, out_fmt: str) -> Tensor:
    """Convert (N, 4) boxes between "xyxy", "xywh" (corner, size) and "cxcywh" (centre, size)."""
    if in_fmt not in _BOX_FORMATS or out_fmt not in _BOX_FORMATS:
        raise ValueError(f"box_convert: formats must be among {_BOX_FORMATS}, got {in_fmt!r} and {out_fmt!r}")
    _check_boxes(boxes, "box_convert")
    if in_fmt == out_fmt:
        return boxes.clone()
    a, b, c, d = unbind(boxes, -1)
    if in_fmt == "xywh":
        a, b, c, d = a, b, a + c, b + d
    elif in_fmt == "cxcywh":
        a, b, c, d = a - 0.5 * c, b - 0.5 * d, a + 0.5 * c, b + 0.5 * d
    if out_fmt == "xywh":
        a, b, c, d = a, b, c - a, d - b
    elif out_fmt == "cxcywh":
        a, b, c, d = (a + c) / 2, (b + d) / 2, c - a, d - b
    return stack([a, b, c, d], dim=-1)


# ------------------------------------------------------------------------------- nms
def _iou_matrix(boxes):
    """IoU of every pair of (K, 4) boxes, on arrays; 0 where both boxes are empty."""
    xp = array_module(boxes)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    top_left = xp.maximum(boxes[:, None, :2], boxes[None, :, :2])
    bottom_right = xp.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    sides = xp.clip(bottom_right - top_left, 0, None)
    inter = sides[..., 0] * sides[..., 1]
    union = area[:, None] + area[None, :] - inter
    return xp.where(union > 0, inter / xp.where(union > 0, union, 1), 0)


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy non-maximum suppression: the indices (int64) of the boxes kept, by decreasing score.

    A box is dropped when its IoU with a kept box of higher score exceeds ``iou_threshold``.
    """
    _check_boxes(boxes, "nms")
    if scores.ndim != 1 or scores.shape[0] != boxes.shape[0]:
        raise RuntimeError(
            f"nms: expected scores of shape ({boxes.shape[0]},) for boxes {tuple(boxes.shape)}, "
            f"got {tuple(scores.shape)}"
        )
    xp = array_module(boxes.data)
    order = xp.argsort(-scores.data, kind="stable")
    overlaps = xp.triu(_iou_matrix(boxes.data[order]) > iou_threshold, 1)  # [i, j]: i outranks j and overlaps it
    # Box j is kept when no kept box before it overlaps it. Iterating that rule from "keep all"
    # settles the first t boxes in t rounds; it stops at the greedy answer, its one fixed point.
    keep = xp.ones(order.shape, dtype=bool)
    while True:
        settled = ~(overlaps & keep[:, None]).any(0)
        if (settled == keep).all():
            break
        keep = settled
    return Tensor._make(order[keep].astype(backend.int64))


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """nms within each category ``idxs`` (N,): boxes of different categories never suppress each other."""
    _check_boxes(boxes, "batched_nms")
    if idxs.shape != scores.shape:
        raise RuntimeError(f"batched_nms: idxs has shape {tuple(idxs.shape)}, scores {tuple(scores.shape)}")
    if boxes.shape[0] == 0:
        return Tensor._make(array_module(boxes.data).zeros(0, dtype=backend.int64))
    data = boxes.data
    # Shift each category's boxes to its own region of the plane, past every other one's.
    offsets = idxs.data.astype(data.dtype) * (data.max() + 1)
    return nms(Tensor._make(data + offsets[:, None]), scores, iou_threshold)


# ---------------------------------------------------------------------- RoI pooling
def _pair(value, name):
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2 or not all(isinstance(v, int) and v > 0 for v in pair):
        raise ValueError(f"{name}: expected a positive int or a pair of them, got {value!r}")
    return pair


def _rois(boxes, input, name):
    """boxes: (K, 5) Tensor or list of (L, 4) Tensors -> (K, 5) array in the input's dtype."""
    xp = array_module(input.data)
    if isinstance(boxes, (list, tuple)):
        for i, b in enumerate(boxes):
            if not isinstance(b, Tensor) or b.ndim != 2 or b.shape[1] != 4:
                shape = tuple(b.shape) if isinstance(b, Tensor) else type(b).__name__
                raise RuntimeError(f"{name}: expected boxes[{i}] of shape (L, 4), got {shape}")
        parts = [xp.concatenate([xp.full((b.shape[0], 1), i), b.data], axis=1) for i, b in enumerate(boxes)]
        rois = xp.concatenate(parts, axis=0) if parts else xp.zeros((0, 5))
    elif isinstance(boxes, Tensor) and boxes.ndim == 2 and boxes.shape[1] == 5:
        rois = boxes.data
    else:
        shape = tuple(boxes.shape) if isinstance(boxes, Tensor) else type(boxes).__name__
        raise RuntimeError(f"{name}: expected boxes as a (K, 5) tensor or a list of (L, 4) tensors, got {shape}")
    if input.ndim != 4:
        raise RuntimeError(f"{name}: expected a 4-D input (N, C, H, W), got shape {tuple(input.shape)}")
    rois = rois.astype(input.dtype)
    batch = rois[:, 0].astype(backend.int64)
    if rois.shape[0] and (batch.min() < 0 or batch.max() >= input.shape[0]):
        raise IndexError(
            f"{name}: roi batch indices must be in [0, {input.shape[0]}), got {batch.min()}..{batch.max()}"
        )
    return rois, batch


def _largest(counts, default: int) -> int:
    """The largest of an integer array, ``default`` when it is empty (no rois)."""
    return int(counts.max()) if counts.size else default


def _round_half_away(x):
    """C's round(): halves go away from zero (NumPy's round goes to even)."""
    xp = array_module(x)
    return xp.sign(x) * xp.floor(xp.abs(x) + 0.5)


def roi_pool(input: Tensor, boxes, output_size, spatial_scale: float = 1.0) -> Tensor:
    """Max over each of output_size bins of each roi: input (N, C, H, W) -> (K, C, PH, PW).

    Roi corners are rounded to pixels after scaling by ``spatial_scale``; a bin covers the
    pixels from floor(its start) to ceil(its end); an empty bin gives 0. The gradient goes
    to each bin's (first) maximum.
    """
    ph, pw = _pair(output_size, "roi_pool")
    rois, batch = _rois(boxes, input, "roi_pool")
    n, c, h, w = input.shape
    xp = array_module(input.data)
    start = _round_half_away(rois[:, 1:3] * rois.dtype.type(spatial_scale)).astype(backend.int64)
    end = _round_half_away(rois[:, 3:5] * rois.dtype.type(spatial_scale)).astype(backend.int64)
    extent = xp.maximum(end - start + 1, 1).astype(rois.dtype)  # (K, 2): width, height

    def bin_edges(bins, size, axis):  # (K, bins) first and past-the-end pixels of each bin
        step = extent[:, axis, None] / rois.dtype.type(bins)
        index = xp.arange(bins, dtype=rois.dtype)
        first = xp.floor(index * step).astype(backend.int64) + start[:, axis, None]
        last = xp.ceil((index + 1) * step).astype(backend.int64) + start[:, axis, None]
        return xp.clip(first, 0, size), xp.clip(last, 0, size)

    x_first, x_last = bin_edges(pw, w, 0)
    y_first, y_last = bin_edges(ph, h, 1)
    y_first, y_last = y_first[:, :, None], y_last[:, :, None]  # (K, PH, 1) against (K, 1, PW)
    x_first, x_last = x_first[:, None, :], x_last[:, None, :]
    empty = (y_last <= y_first) | (x_last <= x_first)  # (K, PH, PW)

    table = channels_last_table(input)
    pixels = table.data
    best = xp.full(empty.shape + (c,), -xp.inf, dtype=pixels.dtype)
    best_row = xp.zeros(best.shape, dtype=backend.int64)
    base = (batch * (h * w))[:, None, None]
    max_h = _largest(y_last - y_first, 0)
    max_w = _largest(x_last - x_first, 0)
    for dy in range(max_h):  # offsets within a bin, scanned row by row as torchvision does
        for dx in range(max_w):
            y, x = y_first + dy, x_first + dx
            valid = (y < y_last) & (x < x_last)
            row = base + xp.where(valid, y * w + x, 0)
            values = pixels[row]
            better = valid[..., None] & (values > best)
            best = xp.where(better, values, best)
            best_row = xp.where(better, row[..., None], best_row)
    flat_index = best_row * c + xp.arange(c)
    out = where(~empty[..., None], table.reshape(-1)[flat_index], 0.0)
    return out.permute(0, 3, 1, 2)


def roi_align(
    input: Tensor, boxes, output_size, spatial_scale: float = 1.0, sampling_ratio: int = -1, aligned: bool = False
) -> Tensor:
    """Average of bilinear samples on a regular grid in each bin: input (N, C, H, W) -> (K, C, PH, PW).

    Each bin holds sampling_ratio x sampling_ratio samples (or, if sampling_ratio <= 0,
    ceil(bin size) per side, per roi). ``aligned=True`` shifts the roi by half a pixel so
    that pixel centres sit at half-integers. Gradients go to the input.
    """
    ph, pw = _pair(output_size, "roi_align")
    rois, batch = _rois(boxes, input, "roi_align")
    n, c, h, w = input.shape
    xp = array_module(input.data)
    real = rois.dtype.type
    scaled = rois[:, 1:] * real(spatial_scale) - real(0.5 if aligned else 0.0)
    start, size = scaled[:, :2], scaled[:, 2:] - scaled[:, :2]  # (K, 2): x, y
    if not aligned:  # legacy behaviour: rois at least one pixel wide
        size = xp.maximum(size, 1)
    bins = xp.asarray([pw, ph], dtype=rois.dtype)
    bin_size = size / bins
    if sampling_ratio > 0:
        grid = xp.full(size.shape, sampling_ratio, dtype=backend.int64)
    else:
        grid = xp.ceil(size / bins).astype(backend.int64)
    count = xp.maximum(grid[:, 0] * grid[:, 1], 1).astype(rois.dtype)

    def positions(axis, n_bins, limit):  # (K, bins, samples) coordinates and (K, 1, samples) validity
        most = max(_largest(grid[:, axis], 1), 1)
        index = xp.arange(n_bins, dtype=rois.dtype)[None, :, None]
        sample = xp.arange(most, dtype=rois.dtype)[None, None, :]
        step = bin_size[:, axis, None, None]
        per = grid[:, axis, None, None].astype(rois.dtype)
        coord = start[:, axis, None, None] + index * step + (sample + real(0.5)) * step / per
        # torchvision: samples beyond a pixel outside the image read 0, others clamp to the image
        coord = xp.where((coord < -1) | (coord > limit), real(-2), xp.clip(coord, 0, limit - 1))
        return coord, sample < per

    px, valid_x = positions(0, pw, w)
    py, valid_y = positions(1, ph, h)
    px = px[:, None, None, :, :]  # (K, 1, 1, PW, Gx)
    py = py[:, :, :, None, None]  # (K, PH, Gy, 1, 1)
    weight = (valid_y[:, :, :, None, None] & valid_x[:, None, None, :, :]) / count[:, None, None, None, None]
    base = (batch * (h * w))[:, None, None, None, None]
    samples = bilinear_sample(channels_last_table(input), px, py, base, h, w)  # (K, PH, Gy, PW, Gx, C)
    out = (samples * weight[..., None].astype(input.dtype)).sum((2, 4))
    return out.permute(0, 3, 1, 2)


# ----------------------------------------------------------- deformable convolution
def deform_conv2d(
    input: Tensor,
    offset: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride=1,
    padding=0,
    dilation=1,
    mask: Tensor | None = None,
) -> Tensor:
    """Deformable convolution (v1; v2 with ``mask``).

    input: (N, C_in, H, W); offset: (N, 2 * G * kh * kw, Ho, Wo), the (dy, dx) shift of each
    kernel tap for each of G offset groups of input channels; weight: (C_out, C_in / groups,
    kh, kw); mask: (N, G * kh * kw, Ho, Wo), a factor per tap. Returns (N, C_out, Ho, Wo).
    The input is sampled bilinearly at the shifted taps (zero outside), then one GEMM.
    """
    sh, sw = _pair(stride, "deform_conv2d stride")
    dh, dw = _pair(dilation, "deform_conv2d dilation")
    pad_h, pad_w = padding if isinstance(padding, (tuple, list)) else (padding, padding)
    for name, t, rank in (("input", input, 4), ("offset", offset, 4), ("weight", weight, 4)):
        if t.ndim != rank:
            raise RuntimeError(f"deform_conv2d: expected a 4-D {name}, got shape {tuple(t.shape)}")
    n, c_in, h, w = input.shape
    c_out, c_group, kh, kw = weight.shape
    taps = kh * kw
    ho = (h + 2 * pad_h - (dh * (kh - 1) + 1)) // sh + 1
    wo = (w + 2 * pad_w - (dw * (kw - 1) + 1)) // sw + 1
    if c_in % c_group or c_out % (c_in // c_group):
        raise RuntimeError(
            f"deform_conv2d: weight {tuple(weight.shape)} does not fit an input with {c_in} channels "
            f"(C_in must be a multiple of weight.shape[1] and C_out of the number of groups)"
        )
    groups = c_in // c_group
    offset_groups = offset.shape[1] // (2 * taps)
    if offset.shape[1] % (2 * taps) or offset_groups == 0 or c_in % offset_groups:
        raise RuntimeError(
            f"deform_conv2d: offset has {offset.shape[1]} channels; expected 2 * kh * kw * offset_groups "
            f"= {2 * taps} * G with G dividing the {c_in} input channels"
        )
    if tuple(offset.shape) != (n, 2 * taps * offset_groups, ho, wo):
        raise RuntimeError(
            f"deform_conv2d: expected offset of shape {(n, 2 * taps * offset_groups, ho, wo)} for input "
            f"{tuple(input.shape)} and weight {tuple(weight.shape)}, got {tuple(offset.shape)}"
        )
    if mask is not None and tuple(mask.shape) != (n, taps * offset_groups, ho, wo):
        raise RuntimeError(
            f"deform_conv2d: expected mask of shape {(n, taps * offset_groups, ho, wo)}, got {tuple(mask.shape)}"
        )
    if bias is not None and tuple(bias.shape) != (c_out,):
        raise RuntimeError(f"deform_conv2d: expected bias of shape ({c_out},), got {tuple(bias.shape)}")

    xp = array_module(input.data)
    channels = c_in // offset_groups
    # The image of (batch n, offset group g), channel last: rows (n * G + g) * H * W onwards.
    table = input.reshape(n, offset_groups, channels, h, w).permute(0, 1, 3, 4, 2).reshape(-1, channels)
    base = (xp.arange(n * offset_groups) * (h * w)).reshape(n, 1, 1, offset_groups, 1)
    tap = xp.arange(taps)
    tap_y = (xp.arange(ho) * sh - pad_h)[:, None] + (tap // kw) * dh  # (Ho, taps)
    tap_x = (xp.arange(wo) * sw - pad_w)[:, None] + (tap % kw) * dw  # (Wo, taps)
    shifts = offset.reshape(n, offset_groups, taps, 2, ho, wo).permute(0, 4, 5, 1, 2, 3)  # (N, Ho, Wo, G, taps, 2)
    py = shifts[..., 0] + tap_y[:, None, None, :].astype(input.dtype)
    px = shifts[..., 1] + tap_x[None, :, None, :].astype(input.dtype)
    samples = bilinear_sample(table, px, py, base, h, w)  # (N, Ho, Wo, G, taps, channels)
    if mask is not None:
        samples = samples * mask.reshape(n, offset_groups, taps, ho, wo).permute(0, 3, 4, 1, 2)[..., None]
    columns = samples.transpose(-1, -2).reshape(n * ho * wo, groups, c_group * taps).permute(1, 0, 2)
    kernels = weight.reshape(groups, c_out // groups, c_group * taps)
    out = matmul(columns, kernels.mT)  # (groups, N * Ho * Wo, C_out / groups)
    out = out.permute(1, 0, 2).reshape(n, ho, wo, c_out).permute(0, 3, 1, 2)
    return out if bias is None else out + bias.reshape(1, c_out, 1, 1)


# ------------------------------------------------------------------------ focal loss
def sigmoid_focal_loss(
    inputs: Tensor, targets: Tensor, alpha: float = 0.25, gamma: float = 2, reduction: str = "none"
) -> Tensor:
    """Binary cross-entropy on logits, scaled by (1 - p_t)^gamma and alpha_t (RetinaNet).

    inputs: logits of any shape; targets: the same shape, 0 or 1 (soft labels work too).
    ``alpha < 0`` turns the class weighting off; reduction: "none", "mean" or "sum".
    """
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"sigmoid_focal_loss: invalid reduction {reduction!r}; expected 'none', 'mean' or 'sum'")
    if tuple(inputs.shape) != tuple(targets.shape):
        raise RuntimeError(
            f"sigmoid_focal_loss: targets of shape {tuple(targets.shape)} do not match inputs {tuple(inputs.shape)}"
        )
    p = sigmoid(inputs)
    # -log(1 - p) = log(1 + e^x), so the cross-entropy is log(1 + e^-x) + (1 - t) x, without overflow.
    zeros = Tensor._make(array_module(inputs.data).zeros_like(inputs.data))
    cross_entropy = logsumexp(stack([zeros, -inputs]), 0) + inputs * (1 - targets)
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = cross_entropy * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss
