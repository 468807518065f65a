"""OpInfos for convolution, unfold/fold (minigrad/ops/conv.py), pooling (ops/pool.py) and padding
(ops/padding.py), with NumPy references that loop over output positions: slow, plain and independent
of the strided kernels they check."""

from __future__ import annotations

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

import minigrad.functional as F
import minigrad.testing as mgt
from minigrad.backend import to_device
from minigrad.ops._windows import Geometry
from minigrad.ops.conv import ConvWeightGrad
from minigrad.ops.padding import BorderPadGrad, border_index
from minigrad.ops.pool import WindowGather, WindowScatter, WindowSpread
from tests.op_db import OpInfo, Sample


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _same_pads(kernel, dilation):
    totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
    return [(t // 2, t - t // 2) for t in totals]


def _pads(padding, kernel, dilation):
    """(before, after) for each of the two spatial dims."""
    if padding == "same":
        return _same_pads(kernel, dilation)
    if padding == "valid":
        return [(0, 0), (0, 0)]
    return [(p, p) for p in _pair(padding)]


def _np_pad(x, pads, value=0.0):
    return np.pad(x, [(0, 0)] * (x.ndim - 2) + list(pads), constant_values=value)


def _positions(padded_shape, kernel, stride, dilation):
    """Every output position with the slices of the padded input its window covers."""
    out = [(p - d * (k - 1) - 1) // s + 1 for p, k, s, d in zip(padded_shape, kernel, stride, dilation)]
    for oh in range(out[0]):
        for ow in range(out[1]):
            rows = slice(oh * stride[0], oh * stride[0] + dilation[0] * (kernel[0] - 1) + 1, dilation[0])
            columns = slice(ow * stride[1], ow * stride[1] + dilation[1] * (kernel[1] - 1) + 1, dilation[1])
            yield oh, ow, rows, columns, out


# ------------------------------------------------------------------ NumPy references
def np_conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    stride, dilation, kernel = _pair(stride), _pair(dilation), weight.shape[2:]
    padded = _np_pad(x, _pads(padding, kernel, dilation))
    n, channels = x.shape[:2]
    grouped_weight = weight.reshape(groups, -1, *weight.shape[1:])
    positions = list(_positions(padded.shape[2:], kernel, stride, dilation))
    out = np.zeros((n, weight.shape[0], *positions[0][4]))
    for oh, ow, rows, columns, _ in positions:
        patch = padded[:, :, rows, columns].reshape(n, groups, channels // groups, *kernel)
        out[:, :, oh, ow] = np.einsum("ngcij,gocij->ngo", patch, grouped_weight).reshape(n, -1)
    return out if bias is None else out + bias.reshape(-1, 1, 1)


def np_conv2d_weight(x, grad, kernel, stride=1, padding=0, dilation=1, groups=1):
    """The gradient of conv2d with respect to its weight (O, C / groups, *kernel)."""
    stride, dilation = _pair(stride), _pair(dilation)
    padded = _np_pad(x, _pads(padding, kernel, dilation))
    n, channels = x.shape[:2]
    out = np.zeros((groups, grad.shape[1] // groups, channels // groups, *kernel))
    for oh, ow, rows, columns, _ in _positions(padded.shape[2:], kernel, stride, dilation):
        patch = padded[:, :, rows, columns].reshape(n, groups, channels // groups, *kernel)
        out += np.einsum("ngo,ngcij->gocij", grad[:, :, oh, ow].reshape(n, groups, -1), patch)
    return out.reshape(grad.shape[1], channels // groups, *kernel)


def np_conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    stride, padding, output_padding, dilation = map(_pair, (stride, padding, output_padding, dilation))
    n, channels, height, width = x.shape
    kernel = weight.shape[2:]
    full = [
        (s - 1) * st + d * (k - 1) + 1 + o
        for s, st, d, k, o in zip((height, width), stride, dilation, kernel, output_padding)
    ]
    out = np.zeros((n, weight.shape[1] * groups, *full))
    grouped_weight = weight.reshape(groups, channels // groups, *weight.shape[1:])
    for ih in range(height):
        for iw in range(width):
            rows = slice(ih * stride[0], ih * stride[0] + dilation[0] * (kernel[0] - 1) + 1, dilation[0])
            columns = slice(iw * stride[1], iw * stride[1] + dilation[1] * (kernel[1] - 1) + 1, dilation[1])
            value = np.einsum("ngc,gcoij->ngoij", x[:, :, ih, iw].reshape(n, groups, -1), grouped_weight)
            out[:, :, rows, columns] += value.reshape(n, -1, *kernel)
    size = [f - 2 * p for f, p in zip(full, padding)]
    out = out[:, :, padding[0] : padding[0] + size[0], padding[1] : padding[1] + size[1]]
    return out if bias is None else out + bias.reshape(-1, 1, 1)


def np_conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    padding = padding if isinstance(padding, str) else (0, padding)
    return np_conv2d(x[:, :, None], weight[:, :, None], bias, (1, stride), padding, (1, dilation), groups)[:, :, 0]


def np_conv_transpose1d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    out = np_conv_transpose2d(
        x[:, :, None], weight[:, :, None], bias, (1, stride), (0, padding), (0, output_padding), groups, (1, dilation)
    )
    return out[:, :, 0]


def np_unfold(x, kernel_size, dilation=1, padding=0, stride=1):
    kernel, dilation, stride = _pair(kernel_size), _pair(dilation), _pair(stride)
    padded = _np_pad(x, [(p, p) for p in _pair(padding)])
    columns = [
        padded[:, :, r, c].reshape(x.shape[0], -1)
        for _, _, r, c, _ in _positions(padded.shape[2:], kernel, stride, dilation)
    ]
    return np.stack(columns, axis=-1)


def np_fold(x, output_size, kernel_size, dilation=1, padding=0, stride=1):
    kernel, dilation, stride, padding = _pair(kernel_size), _pair(dilation), _pair(stride), _pair(padding)
    size = [s + 2 * p for s, p in zip(_pair(output_size), padding)]
    out = np.zeros((x.shape[0], x.shape[1] // (kernel[0] * kernel[1]), *size))
    for index, (_, _, r, c, _) in enumerate(_positions(size, kernel, stride, dilation)):
        out[:, :, r, c] += x[:, :, index].reshape(x.shape[0], -1, *kernel)
    return out[:, :, padding[0] : size[0] - padding[0], padding[1] : size[1] - padding[1]]


# ------------------------------------------------------------------------ strategies
@st.composite
def _conv_setup(draw, dims=2, transposed=False):
    """Channels, groups (depthwise among them), kernel, stride, dilation, padding and an input size that fits."""
    groups = draw(st.sampled_from([1, 1, 2, "depthwise"]))
    if groups == "depthwise":
        groups = draw(st.integers(2, 3))
        per_group_in, per_group_out = 1, draw(st.integers(1, 2))
    else:
        per_group_in, per_group_out = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    stride = tuple(draw(st.integers(1, 2)) for _ in range(dims))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(dims))
    padding = tuple(draw(st.integers(0, 1)) for _ in range(dims))
    size = tuple(draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), 5)) for k, d, p in zip(kernel, dilation, padding))
    return {
        "n": draw(st.integers(1, 2)),
        "groups": groups,
        "channels": groups * per_group_in,
        "out_channels": groups * per_group_out,
        "kernel": kernel,
        "stride": stride,
        "dilation": dilation,
        "padding": padding,
        "size": size,
    }


def _scalar(values):
    return values[0] if len(values) == 1 else values


@st.composite
def _conv_samples(draw, dims=2):
    c = draw(_conv_setup(dims))
    x = draw(mgt.tensors((c["n"], c["channels"], *c["size"])))
    weight = draw(mgt.tensors((c["out_channels"], c["channels"] // c["groups"], *c["kernel"])))
    bias = draw(st.one_of(st.none(), mgt.tensors((c["out_channels"],))))
    padding = _scalar(c["padding"])
    stride = _scalar(c["stride"])
    if all(s == 1 for s in c["stride"]) and draw(st.booleans()):
        padding = draw(st.sampled_from(["same", "valid"]))
        if padding == "valid" and any(s < d * (k - 1) + 1 for s, k, d in zip(c["size"], c["kernel"], c["dilation"])):
            padding = "same"
    kwargs = {"stride": stride, "padding": padding, "dilation": _scalar(c["dilation"]), "groups": c["groups"]}
    return Sample((x, weight, bias), kwargs)


@st.composite
def _conv_transpose_samples(draw, dims=2):
    c = draw(_conv_setup(dims))
    x = draw(mgt.tensors((c["n"], c["channels"], *tuple(draw(st.integers(1, 4)) for _ in range(dims)))))
    weight = draw(mgt.tensors((c["channels"], c["out_channels"] // c["groups"], *c["kernel"])))
    bias = draw(st.one_of(st.none(), mgt.tensors((c["out_channels"],))))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(c["stride"], c["dilation"]))
    size = [
        (s - 1) * st_ - 2 * p + d * (k - 1) + o + 1
        for s, st_, p, d, k, o in zip(
            x.shape[2:], c["stride"], c["padding"], c["dilation"], c["kernel"], output_padding
        )
    ]
    padding = c["padding"] if min(size) >= 1 else (0,) * dims
    kwargs = {
        "stride": _scalar(c["stride"]),
        "padding": _scalar(padding),
        "output_padding": _scalar(output_padding),
        "groups": c["groups"],
        "dilation": _scalar(c["dilation"]),
    }
    return Sample((x, weight, bias), kwargs)


@st.composite
def _weight_grad_samples(draw):
    """ConvWeightGrad called directly: it appears only in backward graphs."""
    c = draw(_conv_setup())
    pads = [(p, p) for p in c["padding"]]
    out_size = tuple(
        (s + 2 * p - d * (k - 1) - 1) // st_ + 1
        for s, p, d, k, st_ in zip(c["size"], c["padding"], c["dilation"], c["kernel"], c["stride"])
    )
    geometry = Geometry(
        c["kernel"],
        c["stride"],
        tuple(p for pair in pads for p in pair),
        c["dilation"],
        c["size"],
        out_size,
        c["groups"],
    )
    x = draw(mgt.tensors((c["n"], c["channels"], *c["size"])))
    grad = draw(mgt.tensors((c["n"], c["out_channels"], *out_size)))
    return Sample((x, grad), {"geometry": geometry})


def _np_weight_grad(x, grad, geometry):
    return np_conv2d_weight(
        x, grad, geometry.kernel, geometry.stride, geometry.padding[::2], geometry.dilation, geometry.groups
    )


@st.composite
def _unfold_samples(draw):
    c = draw(_conv_setup())
    x = draw(mgt.tensors((c["n"], c["channels"], *c["size"])))
    return Sample((x, c["kernel"]), {"dilation": c["dilation"], "padding": c["padding"], "stride": c["stride"]})


@st.composite
def _fold_samples(draw):
    c = draw(_conv_setup())
    blocks = [
        (s + 2 * p - d * (k - 1) - 1) // st_ + 1
        for s, p, d, k, st_ in zip(c["size"], c["padding"], c["dilation"], c["kernel"], c["stride"])
    ]
    x = draw(mgt.tensors((c["n"], c["channels"] * c["kernel"][0] * c["kernel"][1], blocks[0] * blocks[1])))
    kwargs = {"dilation": c["dilation"], "padding": c["padding"], "stride": c["stride"]}
    return Sample((x, c["size"], c["kernel"]), kwargs)


CONV = [
    OpInfo("conv2d", F.conv2d, _conv_samples(), np_conv2d, fast=True),
    OpInfo("conv1d", F.conv1d, _conv_samples(dims=1), np_conv1d, fast=True),
    OpInfo("conv_transpose2d", F.conv_transpose2d, _conv_transpose_samples(), np_conv_transpose2d, fast=True),
    OpInfo("conv_transpose1d", F.conv_transpose1d, _conv_transpose_samples(dims=1), np_conv_transpose1d, fast=True),
    OpInfo(
        "conv2d_weight_grad",
        lambda x, grad, geometry: ConvWeightGrad.apply(x, grad, geometry=geometry),
        _weight_grad_samples(),
        _np_weight_grad,
        fast=True,
    ),
    OpInfo("unfold", F.unfold, _unfold_samples(), np_unfold, fast=True),
    OpInfo("fold", F.fold, _fold_samples(), np_fold, fast=True),
]


# ---------------------------------------------------------------------------- pooling
def _pool_size(size, kernel, stride, pad, dilation, ceil_mode):
    span = size + 2 * pad - dilation * (kernel - 1) - 1
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    return out - 1 if ceil_mode and (out - 1) * stride >= size + pad else out


def _pool_windows(x, kernel, stride, padding, dilation, ceil_mode):
    """Every output position (oh, ow) with its window's rows and columns inside the input (-1: padding)."""
    height, width = x.shape[-2:]
    out = [_pool_size(*args, ceil_mode) for args in zip((height, width), kernel, stride, padding, dilation)]
    for oh in range(out[0]):
        for ow in range(out[1]):
            rows = [oh * stride[0] - padding[0] + i * dilation[0] for i in range(kernel[0])]
            columns = [ow * stride[1] - padding[1] + j * dilation[1] for j in range(kernel[1])]
            yield oh, ow, rows, columns, out


def _window_cells(rows, columns, height, width):
    return [(r, c) for r in rows for c in columns if 0 <= r < height and 0 <= c < width]


def np_max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    kernel = _pair(kernel_size)
    stride = kernel if stride is None else _pair(stride)
    height, width = x.shape[-2:]
    positions = list(_pool_windows(x, kernel, stride, _pair(padding), _pair(dilation), ceil_mode))
    out = np.zeros(x.shape[:-2] + tuple(positions[0][4]))
    indices = np.zeros(out.shape, dtype=np.int64)
    for oh, ow, rows, columns, _ in positions:
        cells = _window_cells(rows, columns, height, width)
        values = np.stack([x[..., r, c] for r, c in cells], axis=-1)
        first = np.argmax(values, axis=-1)  # the first maximum in row-major order
        out[..., oh, ow] = np.take_along_axis(values, first[..., None], -1)[..., 0]
        indices[..., oh, ow] = np.array([r * width + c for r, c in cells])[first]
    return (out, indices) if return_indices else out


def np_avg_pool2d(
    x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None
):
    kernel = _pair(kernel_size)
    stride, padding = kernel if stride is None else _pair(stride), _pair(padding)
    height, width = x.shape[-2:]
    positions = list(_pool_windows(x, kernel, stride, padding, (1, 1), ceil_mode))
    out = np.zeros(x.shape[:-2] + tuple(positions[0][4]))
    for oh, ow, rows, columns, _ in positions:
        cells = _window_cells(rows, columns, height, width)
        total = sum(x[..., r, c] for r, c in cells)
        # the window clipped to the padded input counts padding, not what lies past it
        in_padded = [r for r in rows if r < height + padding[0]], [c for c in columns if c < width + padding[1]]
        count = len(in_padded[0]) * len(in_padded[1]) if count_include_pad else len(cells)
        out[..., oh, ow] = total / (divisor_override or count)
    return out


def np_max_pool1d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    stride = kernel_size if stride is None else stride
    result = np_max_pool2d(x[..., None, :], (1, kernel_size), (1, stride), (0, padding), (1, dilation), ceil_mode, True)
    return (result[0][..., 0, :], result[1][..., 0, :]) if return_indices else result[0][..., 0, :]


def np_avg_pool1d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    stride = kernel_size if stride is None else stride
    return np_avg_pool2d(x[..., None, :], (1, kernel_size), (1, stride), (0, padding), ceil_mode, count_include_pad)[
        ..., 0, :
    ]


def _adaptive_cells(size, out):
    return [(o * size // out, -(-(o + 1) * size // out)) for o in range(out)]


def _adaptive(x, output_size, reduce):
    output_size = _pair(output_size)
    output_size = [s if o is None else o for o, s in zip(output_size, x.shape[-2:])]
    out = np.zeros(x.shape[:-2] + tuple(output_size))
    for oh, (top, bottom) in enumerate(_adaptive_cells(x.shape[-2], output_size[0])):
        for ow, (left, right) in enumerate(_adaptive_cells(x.shape[-1], output_size[1])):
            out[..., oh, ow] = reduce(x[..., top:bottom, left:right], axis=(-2, -1))
    return out


def np_adaptive_max_pool2d(x, output_size, return_indices=False):
    out = _adaptive(x, output_size, np.max)
    if not return_indices:
        return out
    width = x.shape[-1]
    flat = np.arange(x.shape[-2] * width).reshape(x.shape[-2:])
    indices = np.zeros(out.shape, dtype=np.int64)
    cells_h, cells_w = _adaptive_cells(x.shape[-2], out.shape[-2]), _adaptive_cells(width, out.shape[-1])
    for oh, (top, bottom) in enumerate(cells_h):
        for ow, (left, right) in enumerate(cells_w):
            window = x[..., top:bottom, left:right].reshape(*x.shape[:-2], -1)
            positions = flat[top:bottom, left:right].ravel()
            indices[..., oh, ow] = positions[np.argmax(window, axis=-1)]
    return out, indices


@st.composite
def _pool_setup(draw, dims=2, dilation=True):
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    stride = tuple(draw(st.integers(1, 2)) for _ in range(dims))
    dil = tuple(draw(st.integers(1, 2)) if dilation else 1 for _ in range(dims))
    padding = tuple(draw(st.integers(0, (d * (k - 1) + 1) // 2)) for k, d in zip(kernel, dil))
    size = tuple(draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), 6)) for k, d, p in zip(kernel, dil, padding))
    lead = (draw(st.integers(1, 2)), draw(st.integers(1, 3)))[draw(st.integers(0, 1)) :]
    return kernel, stride, dil, padding, lead + size


@st.composite
def _max_pool_samples(draw, dims=2):
    kernel, stride, dil, padding, shape = draw(_pool_setup(dims))
    stride = None if draw(st.booleans()) else stride
    ceil_mode = draw(st.booleans())
    # a window wholly in the padding has no maximum (PyTorch gives -inf and an arbitrary index)
    padded = [(1,) * (2 - dims) + kernel, (1,) * (2 - dims) + (stride or kernel), (0,) * (2 - dims) + padding]
    windows = _pool_windows(np.zeros((1,) * (2 - dims) + shape[-dims:]), *padded, (1,) * (2 - dims) + dil, ceil_mode)
    assume(
        all(
            _window_cells(rows, columns, *shape[-2:] if dims == 2 else (1, shape[-1]))
            for _, _, rows, columns, _ in windows
        )
    )
    x = draw(mgt.tensors(shape, distinct=True))
    kwargs = {
        "stride": None if stride is None else _scalar(stride),
        "padding": _scalar(padding),
        "dilation": _scalar(dil),
        "ceil_mode": ceil_mode,
        "return_indices": draw(st.booleans()),
    }
    return Sample((x, _scalar(kernel)), kwargs)


@st.composite
def _avg_pool_samples(draw, dims=2):
    kernel, stride, _, padding, shape = draw(_pool_setup(dims, dilation=False))
    kwargs = {
        "stride": None if draw(st.booleans()) else _scalar(stride),
        "padding": _scalar(padding),
        "ceil_mode": draw(st.booleans()),
        "count_include_pad": draw(st.booleans()),
    }
    if dims == 2 and draw(st.booleans()):
        kwargs["divisor_override"] = draw(st.integers(1, 5))
    return Sample((draw(mgt.tensors(shape)), _scalar(kernel)), kwargs)


@st.composite
def _adaptive_samples(draw, distinct=False):
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    x = draw(mgt.tensors(shape[draw(st.integers(0, 1)) :], distinct=distinct))
    size = draw(st.one_of(st.integers(1, 6), st.tuples(st.one_of(st.none(), st.integers(1, 6)), st.integers(1, 6))))
    kwargs = {"return_indices": draw(st.booleans())} if distinct else {}
    return Sample((x, size), kwargs)


@st.composite
def _window_samples(draw, kind):
    """WindowScatter, WindowGather and WindowSpread called directly: they appear only in backward graphs."""
    kernel, stride, dil, padding, shape = draw(_pool_setup())
    out = tuple(_pool_size(s, k, st_, p, d, False) for s, k, st_, p, d in zip(shape[-2:], kernel, stride, padding, dil))
    geometry = Geometry(kernel, stride, (padding[0], padding[0], padding[1], padding[1]), dil, shape[-2:], out)
    lead = (draw(st.integers(1, 2)), draw(st.integers(1, 3)))
    which = mgt.arrays(lead + out, dtype=np.int64, low=0, high=kernel[0] * kernel[1] - 1)
    if kind == "gather":
        return Sample((draw(mgt.tensors(lead + shape[-2:])),), {"which": draw(which), "geometry": geometry})
    kwargs = {"which": draw(which), "geometry": geometry} if kind == "scatter" else {"geometry": geometry}
    return Sample((draw(mgt.tensors(lead + out)),), kwargs)


def _np_window_positions(geometry):
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = geometry.kernel, geometry.stride, geometry.dilation, geometry.out_size
    top, _, left, _ = geometry.padding
    for h in range(oh):
        for w in range(ow):
            for i in range(kh):
                for j in range(kw):
                    yield h, w, i * kw + j, h * sh + i * dh - top, w * sw + j * dw - left


def _inside(r, c, geometry):
    return 0 <= r < geometry.in_size[0] and 0 <= c < geometry.in_size[1]


def np_window_gather(x, which, geometry):
    out = np.zeros(which.shape)
    for h, w, k, r, c in _np_window_positions(geometry):
        if _inside(r, c, geometry):
            out[..., h, w] += np.where(which[..., h, w] == k, x[..., r, c], 0.0)
    return out


def np_window_scatter(g, which, geometry):
    out = np.zeros(g.shape[:2] + tuple(geometry.in_size))
    for h, w, k, r, c in _np_window_positions(geometry):
        if _inside(r, c, geometry):
            out[..., r, c] += np.where(which[..., h, w] == k, g[..., h, w], 0.0)
    return out


def np_window_spread(g, geometry):
    out = np.zeros(g.shape[:2] + tuple(geometry.in_size))
    for h, w, _, r, c in _np_window_positions(geometry):
        if _inside(r, c, geometry):
            out[..., r, c] += g[..., h, w]
    return out


POOL = [
    OpInfo("max_pool2d", F.max_pool2d, _max_pool_samples(), np_max_pool2d),
    OpInfo("max_pool1d", F.max_pool1d, _max_pool_samples(dims=1), np_max_pool1d),
    OpInfo("avg_pool2d", F.avg_pool2d, _avg_pool_samples(), np_avg_pool2d),
    OpInfo("avg_pool1d", F.avg_pool1d, _avg_pool_samples(dims=1), np_avg_pool1d),
    OpInfo("adaptive_avg_pool2d", F.adaptive_avg_pool2d, _adaptive_samples(), lambda x, s: _adaptive(x, s, np.mean)),
    OpInfo("adaptive_max_pool2d", F.adaptive_max_pool2d, _adaptive_samples(distinct=True), np_adaptive_max_pool2d),
    OpInfo(
        "window_gather",
        lambda x, which, geometry: WindowGather.apply(x, which=to_device(which, x.device), geometry=geometry),
        _window_samples("gather"),
        np_window_gather,
    ),
    OpInfo(
        "window_scatter",
        lambda g, which, geometry: WindowScatter.apply(g, which=to_device(which, g.device), geometry=geometry),
        _window_samples("scatter"),
        np_window_scatter,
    ),
    OpInfo(
        "window_spread",
        lambda g, geometry: WindowSpread.apply(g, geometry=geometry),
        _window_samples("spread"),
        np_window_spread,
    ),
]


# ---------------------------------------------------------------------------- padding
_NP_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def np_pad(x, pad, mode="constant", value=None):
    sides = [(pad[2 * i], pad[2 * i + 1]) for i in reversed(range(len(pad) // 2))]
    sides = [(0, 0)] * (x.ndim - len(sides)) + sides
    extra = {"constant_values": value or 0} if mode == "constant" else {}
    out = np.pad(x, [(max(b, 0), max(a, 0)) for b, a in sides], mode=_NP_MODES[mode], **extra)
    return out[tuple(slice(max(-b, 0), out.shape[d] - max(-a, 0)) for d, (b, a) in enumerate(sides))]


@st.composite
def _pad_sides(draw, shape, mode):
    """PyTorch-ordered pads (last dim first) for the trailing dims of ``shape``."""
    pad = []
    for size in reversed(shape):
        limit = size - 1 if mode == "reflect" else size if mode != "constant" else 2
        low = -1 if size > 1 else 0
        before, after = (draw(st.integers(low, limit)) for _ in range(2))
        pad += [before, max(after, 1 - size - before)]  # at least one element left
    return tuple(pad)


@st.composite
def _pad_samples(draw):
    mode = draw(st.sampled_from(list(_NP_MODES)))
    padded = draw(st.integers(1, 3))
    lead = draw(st.integers(1, 2)) if mode != "constant" else draw(st.integers(0, 2))
    shape = tuple(draw(st.integers(1, 3)) for _ in range(lead)) + tuple(draw(st.integers(1, 4)) for _ in range(padded))
    pad = draw(_pad_sides(shape[lead:], mode))
    kwargs = {"mode": mode}
    if mode == "constant" and draw(st.booleans()):
        kwargs["value"] = draw(st.floats(-2, 2))
    return Sample((draw(mgt.tensors(shape)), pad), kwargs)


@st.composite
def _border_pad_grad_samples(draw):
    """BorderPadGrad called directly: it appears only in backward graphs."""
    mode = draw(st.sampled_from(["reflect", "replicate", "circular"]))
    shape = tuple(draw(st.integers(2, 4)) for _ in range(draw(st.integers(1, 3))))
    dim = draw(st.integers(0, len(shape) - 1))
    before, after = draw(_pad_sides((shape[dim],), mode))
    index, interior = border_index(shape[dim], before, after, mode, np)
    grad_shape = shape[:dim] + (len(index),) + shape[dim + 1 :]
    kwargs = {"dim": dim, "index": index, "interior": interior, "size": shape[dim]}
    return Sample((draw(mgt.tensors(grad_shape)),), kwargs)


def np_border_pad_grad(g, dim, index, interior, size):
    shape = list(g.shape)
    shape[dim] = size
    out = np.zeros(shape)
    np.add.at(out, (slice(None),) * dim + (index,), g)
    return out


PADDING = [
    OpInfo("pad", F.pad, _pad_samples(), np_pad),
    OpInfo(
        "border_pad_grad",
        lambda g, index, **kwargs: BorderPadGrad.apply(g, index=to_device(index, g.device), **kwargs),
        _border_pad_grad_samples(),
        np_border_pad_grad,
    ),
]

OPS = CONV + POOL + PADDING
