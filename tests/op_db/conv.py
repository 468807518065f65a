"""OpInfos for convolution (minigrad/ops/conv.py), with a direct NumPy reference."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import minigrad.functional as F
import minigrad.testing as mgt
from minigrad.ops.conv import conv2d_weight
from tests.op_db import OpInfo, Sample


def _np_conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """Cross-correlation by its definition, one kernel offset at a time (tiny shapes only)."""
    s = stride if isinstance(stride, tuple) else (stride, stride)
    d = dilation if isinstance(dilation, tuple) else (dilation, dilation)
    kh, kw = w.shape[2:]
    if padding == "same":
        pads = [(d[0] * (kh - 1)) // 2, d[0] * (kh - 1) - (d[0] * (kh - 1)) // 2]
        pads += [(d[1] * (kw - 1)) // 2, d[1] * (kw - 1) - (d[1] * (kw - 1)) // 2]
    else:
        p = padding if isinstance(padding, tuple) else (padding, padding)
        pads = [p[0], p[0], p[1], p[1]]
    x = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[1]), (pads[2], pads[3])))
    n, c, h, width = x.shape
    o = w.shape[0]
    ho, wo = (h - d[0] * (kh - 1) - 1) // s[0] + 1, (width - d[1] * (kw - 1) - 1) // s[1] + 1
    out = np.zeros((n, o, ho, wo))
    cg, og = c // groups, o // groups
    for g in range(groups):
        for i in range(kh):
            for j in range(kw):
                patch = x[:, g * cg : (g + 1) * cg, i * d[0] : i * d[0] + s[0] * (ho - 1) + 1 : s[0],
                          j * d[1] : j * d[1] + s[1] * (wo - 1) + 1 : s[1]]  # fmt: skip
                out[:, g * og : (g + 1) * og] += np.einsum("nchw,oc->nohw", patch, w[g * og : (g + 1) * og, :, i, j])
    return out + (0 if b is None else b.reshape(1, -1, 1, 1))


@st.composite
def _conv_geometry(draw):
    """groups, channels, kernel, stride, dilation, padding and a spatial size that fits them."""
    kind = draw(st.sampled_from(["dense", "grouped", "depthwise"]))
    groups = {"dense": 1, "grouped": 2, "depthwise": draw(st.integers(2, 3))}[kind]
    c_in = groups * (1 if kind == "depthwise" else draw(st.integers(1, 2)))
    c_out = groups * draw(st.integers(1, 2))
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride, dilation = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    padding = draw(st.sampled_from([0, 1, 2, "same"])) if stride == 1 else draw(st.integers(0, 1))
    return groups, c_in, c_out, k, stride, dilation, padding


@st.composite
def _conv2d_samples(draw):
    groups, c_in, c_out, k, stride, dilation, padding = draw(_conv_geometry())
    pad = 0 if padding == "same" else padding
    h, w = (draw(st.integers(max(1, dilation * (kk - 1) + 1 - 2 * pad), 5)) for kk in k)
    x = draw(mgt.tensors((draw(st.integers(1, 2)), c_in, h, w)))
    weight = draw(mgt.tensors((c_out, c_in // groups, *k)))
    bias = draw(st.one_of(st.none(), mgt.tensors((c_out,))))
    return Sample((x, weight, bias), dict(stride=stride, padding=padding, dilation=dilation, groups=groups))


@st.composite
def _conv1d_samples(draw):
    k, stride, padding = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(0, 1))
    x = draw(mgt.tensors((draw(st.integers(1, 2)), 2, draw(st.integers(max(1, k - 2 * padding), 6)))))
    weight, bias = draw(mgt.tensors((3, 2, k))), draw(st.one_of(st.none(), mgt.tensors((3,))))
    return Sample((x, weight, bias), dict(stride=stride, padding=padding))


def _np_conv1d(x, w, b=None, stride=1, padding=0):
    return _np_conv2d(x[:, :, None], w[:, :, None], b, (1, stride), (0, padding))[:, :, 0]


@st.composite
def _conv_transpose_samples(draw):
    groups, c_in, c_out, k, stride, dilation, padding = draw(_conv_geometry())
    padding = 0 if padding == "same" else padding
    output_padding = draw(st.integers(0, max(stride, dilation) - 1))
    h, w = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    size = [(n - 1) * stride - 2 * padding + dilation * (kk - 1) + output_padding + 1 for n, kk in zip((h, w), k)]
    if min(size) < 1:
        padding = 0
    x = draw(mgt.tensors((draw(st.integers(1, 2)), c_out, h, w)))
    weight = draw(mgt.tensors((c_out, c_in // groups, *k)))
    bias = draw(st.one_of(st.none(), mgt.tensors((c_in,))))
    return Sample((x, weight, bias), dict(stride=stride, padding=padding, output_padding=output_padding,
                                          groups=groups, dilation=dilation))  # fmt: skip


def _np_conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Scatter each input value times the kernel into the output (the definition), then crop."""
    n, _, h, width = x.shape
    kh, kw = w.shape[2:]
    cg, og = w.shape[0] // groups, w.shape[1]
    full = np.zeros((n, og * groups, (h - 1) * stride + dilation * (kh - 1) + 1 + output_padding,
                     (width - 1) * stride + dilation * (kw - 1) + 1 + output_padding))  # fmt: skip
    for g in range(groups):
        for i in range(kh):
            for j in range(kw):
                contribution = np.einsum(
                    "nchw,co->nohw", x[:, g * cg : (g + 1) * cg], w[g * cg : (g + 1) * cg, :, i, j]
                )
                full[:, g * og : (g + 1) * og, i * dilation : i * dilation + stride * (h - 1) + 1 : stride,
                     j * dilation : j * dilation + stride * (width - 1) + 1 : stride] += contribution  # fmt: skip
    out = full[:, :, padding : full.shape[2] - padding, padding : full.shape[3] - padding]
    return out + (0 if b is None else b.reshape(1, -1, 1, 1))


@st.composite
def _weight_grad_samples(draw):
    sample = draw(_conv2d_samples())
    x, weight, _ = sample.args
    kwargs = {k: v for k, v in sample.kwargs.items()}
    if kwargs["padding"] == "same":
        return draw(_weight_grad_samples())
    out = _np_conv2d(x.detach().numpy(), weight.detach().numpy(), **kwargs)
    grad = draw(mgt.tensors(out.shape))
    return Sample((x, tuple(weight.shape), grad), kwargs)


def _np_conv2d_weight(x, weight_size, grad, stride=1, padding=0, dilation=1, groups=1):
    """d<conv(x, W), grad>/dW, one weight element at a time through the reference convolution."""
    out = np.zeros(weight_size)
    for index in np.ndindex(*weight_size):
        basis = np.zeros(weight_size)
        basis[index] = 1.0
        out[index] = (_np_conv2d(x, basis, None, stride, padding, dilation, groups) * grad).sum()
    return out


OPS = [
    OpInfo("conv2d", F.conv2d, _conv2d_samples(), _np_conv2d),
    OpInfo("conv1d", F.conv1d, _conv1d_samples(), _np_conv1d),
    OpInfo("conv_transpose2d", F.conv_transpose2d, _conv_transpose_samples(), _np_conv_transpose2d),
    OpInfo("conv2d_weight", conv2d_weight, _weight_grad_samples(), _np_conv2d_weight),
]
