"""Convolution: conv1d, conv2d, conv_transpose2d.

Three ops close under differentiation. ``Conv2d`` maps (x, W) to y; its input gradient is
``ConvTranspose2d(g, W)`` and its weight gradient ``Conv2dWeightGrad(x, g)``. Each of the three
is bilinear, and the derivatives of each are again the other two, so every backward is made of
recorded, fast ops and double backward (an R1 penalty, say) costs a few GEMMs, not a loop.

The kernels work on a strided window view of the padded input (no copy), turned into one
column matrix and one GEMM (batched over groups). Depthwise convolutions (groups == channels,
any channel multiplier) take a direct path instead: a multiply-accumulate over the kh*kw kernel
offsets, which never builds the block-diagonal GEMM that would waste all but 1/C of its work.
"""

from __future__ import annotations

from minigrad import backend
from minigrad.autograd import Function
from minigrad.backend import array_module
from minigrad.tensor import Tensor


class _Geometry:
    """Everything about one convolution but its values: shapes, stride, padding, dilation, groups.

    ``x_shape`` (N, C, H, W) is the input of the forward convolution; ``w_shape`` (O, C/groups, kh, kw);
    ``padding`` (top, bottom, left, right).
    """

    __slots__ = ("x_shape", "w_shape", "stride", "padding", "dilation", "groups", "out_hw")

    def __init__(self, x_shape, w_shape, stride, padding, dilation, groups):
        self.x_shape, self.w_shape = tuple(x_shape), tuple(w_shape)
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        (_, _, h, w), (kh, kw) = self.x_shape, self.w_shape[2:]
        top, bottom, left, right = padding
        self.out_hw = (
            (h + top + bottom - dilation[0] * (kh - 1) - 1) // stride[0] + 1,
            (w + left + right - dilation[1] * (kw - 1) - 1) // stride[1] + 1,
        )

    @property
    def depthwise(self) -> bool:
        return self.groups == self.x_shape[1] and self.w_shape[1] == 1 and self.groups > 1

    def windows(self, x):
        """(N, C, H, W) -> read-only view (N, C, Ho, Wo, kh, kw) of the padded input's windows."""
        xp = array_module(x)
        top, bottom, left, right = self.padding
        if any(p > 0 for p in self.padding):
            x = xp.pad(x, ((0, 0), (0, 0), (top, max(bottom, 0)), (left, max(right, 0))))
        if min(bottom, right) < 0:  # (a transposed convolution's output_padding beyond a stride)
            x = x[:, :, : x.shape[2] + min(bottom, 0), : x.shape[3] + min(right, 0)]
        n, c, _, _ = x.shape
        sn, sc, sh, sw = x.strides
        (kh, kw), (ho, wo) = self.w_shape[2:], self.out_hw
        shape = (n, c, ho, wo, kh, kw)
        strides = (sn, sc, sh * self.stride[0], sw * self.stride[1], sh * self.dilation[0], sw * self.dilation[1])
        return backend.as_strided(x, shape, strides)

    def columns(self, x):
        """The im2col matrix, grouped: (groups, N*Ho*Wo, C/groups*kh*kw), one contiguous copy."""
        n, c = self.x_shape[:2]
        g = self.groups
        win = self.windows(x).transpose(0, 2, 3, 1, 4, 5)  # (N, Ho, Wo, C, kh, kw)
        cols = array_module(x).ascontiguousarray(win).reshape(-1, g, c // g * self.w_shape[2] * self.w_shape[3])
        return cols.transpose(1, 0, 2)

    def grouped(self, y):
        """(N, O, Ho, Wo) -> (groups, N*Ho*Wo, O/groups): an output (or its gradient) as GEMM rows."""
        g, o = self.groups, self.w_shape[0]
        rows = array_module(y).ascontiguousarray(y.transpose(0, 2, 3, 1)).reshape(-1, g, o // g)
        return rows.transpose(1, 0, 2)

    def scatter_windows(self, d_win):
        """col2im: the adjoint of ``windows``. d_win (N, C, Ho, Wo, kh, kw) -> (N, C, H, W), overlaps summed."""
        xp = array_module(d_win)
        n, c, h, w = self.x_shape
        top, bottom, left, right = self.padding
        (kh, kw), (ho, wo) = self.w_shape[2:], self.out_hw
        (sh, sw), (dh, dw) = self.stride, self.dilation
        padded = xp.zeros((n, c, h + top + max(bottom, 0), w + left + max(right, 0)), dtype=d_win.dtype)
        for i in range(kh):  # a loop over kernel offsets only: each adds a strided slab at once
            for j in range(kw):
                padded[:, :, i * dh : i * dh + sh * (ho - 1) + 1 : sh, j * dw : j * dw + sw * (wo - 1) + 1 : sw] += (
                    d_win[:, :, :, :, i, j]
                )
        if any(self.padding):
            return xp.ascontiguousarray(padded[:, :, top : top + h, left : left + w])
        return padded


# ----------------------------------------------------------------- array kernels
def _forward(x, w, geo: _Geometry):
    """y = conv(x, w): (N, C, H, W), (O, C/g, kh, kw) -> (N, O, Ho, Wo)."""
    xp = array_module(x)
    n, (o, _, kh, kw), (ho, wo) = geo.x_shape[0], geo.w_shape, geo.out_hw
    if geo.depthwise:
        c = geo.x_shape[1]
        win, taps = geo.windows(x), w.reshape(c, o // c, kh, kw)
        out = xp.zeros((n, c, o // c, ho, wo), dtype=xp.result_type(x, w))
        for i in range(kh):
            for j in range(kw):
                out += win[:, :, None, :, :, i, j] * taps[None, :, :, i, j, None, None]
        return out.reshape(n, o, ho, wo)
    g = geo.groups
    out = geo.columns(x) @ w.reshape(g, o // g, -1).transpose(0, 2, 1)  # (g, N*Ho*Wo, O/g)
    out = out.transpose(1, 0, 2).reshape(n, ho, wo, o)
    return xp.ascontiguousarray(out.transpose(0, 3, 1, 2))


def _input_grad(grad, w, geo: _Geometry):
    """dL/dx from dL/dy: the transposed convolution of grad (N, O, Ho, Wo) -> (N, C, H, W)."""
    xp = array_module(grad)
    n, c = geo.x_shape[:2]
    (o, _, kh, kw), (ho, wo) = geo.w_shape, geo.out_hw
    if geo.depthwise:
        g5, taps = grad.reshape(n, c, o // c, ho, wo), w.reshape(c, o // c, kh, kw)
        d_win = xp.empty((n, c, ho, wo, kh, kw), dtype=xp.result_type(grad, w))
        for i in range(kh):
            for j in range(kw):
                d_win[..., i, j] = (g5 * taps[None, :, :, i, j, None, None]).sum(2)
        return geo.scatter_windows(d_win)
    g = geo.groups
    d_cols = geo.grouped(grad) @ w.reshape(g, o // g, -1)  # (g, N*Ho*Wo, C/g*kh*kw)
    d_win = d_cols.transpose(1, 0, 2).reshape(n, ho, wo, c, kh, kw).transpose(0, 3, 1, 2, 4, 5)
    return geo.scatter_windows(d_win)


def _weight_grad(x, grad, geo: _Geometry):
    """dL/dW from dL/dy: sum over batch and positions of grad times the input windows -> (O, C/g, kh, kw)."""
    xp = array_module(x)
    n, c = geo.x_shape[:2]
    (o, cg, kh, kw), (ho, wo) = geo.w_shape, geo.out_hw
    if geo.depthwise:
        win, g5 = geo.windows(x), grad.reshape(n, c, o // c, ho, wo)
        out = xp.empty((c, o // c, kh, kw), dtype=xp.result_type(x, grad))
        for i in range(kh):
            for j in range(kw):
                out[:, :, i, j] = xp.einsum("ncmhw,nchw->cm", g5, win[:, :, :, :, i, j])
        return out.reshape(o, 1, kh, kw)
    out = geo.grouped(grad).transpose(0, 2, 1) @ geo.columns(x)  # (g, O/g, C/g*kh*kw)
    return out.reshape(o, cg, kh, kw)


# -------------------------------------------------------------------------- ops
class Conv2d(Function):
    """x: (N, C, H, W), weight: (O, C/groups, kh, kw), bias: (O,) -> (N, O, Ho, Wo)."""

    def forward(self, x, weight, bias=None, geometry=None):
        self.geo = geometry
        need_x, need_w, _ = self.needs_input_grad
        self.save_for_backward(x if need_w else None, weight if need_x else None)
        out = _forward(x, weight, geometry)
        if bias is not None:
            out += bias.reshape(1, -1, 1, 1)
        return out

    def backward(self, grad):
        x, weight = self.saved_tensors
        need_x, need_w, need_b = self.needs_input_grad
        return (
            ConvTranspose2d.apply(grad, weight, geometry=self.geo) if need_x else None,
            Conv2dWeightGrad.apply(x, grad, geometry=self.geo) if need_w else None,
            grad.sum((0, 2, 3)) if need_b else None,
        )


class ConvTranspose2d(Function):
    """The input gradient of the convolution ``geometry`` describes, as an op of (grad, weight):
    grad (N, O, Ho, Wo), weight (O, C/groups, kh, kw) -> (N, C, H, W). Also ``F.conv_transpose2d``."""

    def forward(self, grad, weight, geometry=None):
        self.geo = geometry
        need_g, need_w = self.needs_input_grad
        self.save_for_backward(grad if need_w else None, weight if need_g else None)
        return _input_grad(grad, weight, geometry)

    def backward(self, upstream):  # upstream: (N, C, H, W), the shape of the convolution's input
        grad, weight = self.saved_tensors
        need_g, need_w = self.needs_input_grad
        return (
            Conv2d.apply(upstream, weight, None, geometry=self.geo) if need_g else None,
            Conv2dWeightGrad.apply(upstream, grad, geometry=self.geo) if need_w else None,
        )


class Conv2dWeightGrad(Function):
    """The weight gradient of a convolution, as an op of (x, grad) -> (O, C/groups, kh, kw)."""

    def forward(self, x, grad, geometry=None):
        self.geo = geometry
        need_x, need_g = self.needs_input_grad
        self.save_for_backward(x if need_g else None, grad if need_x else None)
        return _weight_grad(x, grad, geometry)

    def backward(self, upstream):  # upstream: the shape of the weight
        x, grad = self.saved_tensors
        need_x, need_g = self.needs_input_grad
        return (
            ConvTranspose2d.apply(grad, upstream, geometry=self.geo) if need_x else None,
            Conv2d.apply(x, upstream, None, geometry=self.geo) if need_g else None,
        )


# ----------------------------------------------------------------- public functions
def _pair(value, name: str, op: str) -> tuple:
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2 or not all(isinstance(v, int) for v in pair):
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    return pair


def _same_padding(kernel: tuple, dilation: tuple) -> tuple:
    """PyTorch's "same": total padding d*(k-1) per dim, the odd pixel on the bottom/right."""
    pads = []
    for k, d in zip(kernel, dilation):
        total = d * (k - 1)
        pads += [total // 2, total - total // 2]
    return tuple(pads)


def _check(op: str, input: Tensor, weight: Tensor, groups: int, transposed: bool) -> None:
    if input.ndim != 4:
        raise RuntimeError(f"{op}: expected a 4-D input (N, C, H, W), got shape {tuple(input.shape)}")
    if weight.ndim != 4:
        raise RuntimeError(f"{op}: expected a 4-D weight, got shape {tuple(weight.shape)}")
    if not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    channels = weight.shape[0] if transposed else weight.shape[1] * groups
    if input.shape[1] != channels:
        raise RuntimeError(
            f"{op}: expected input with {channels} channels (weight {tuple(weight.shape)}, groups={groups}), "
            f"got input of shape {tuple(input.shape)}"
        )
    if weight.shape[0] % groups:
        raise ValueError(f"{op}: {weight.shape[0]} {'input' if transposed else 'output'} channels are not "
                         f"divisible by groups={groups}")  # fmt: skip


def conv2d(input: Tensor, weight: Tensor, bias=None, stride=1, padding=0, dilation=1, groups: int = 1) -> Tensor:
    """2-D convolution (cross-correlation, as PyTorch): input (N, C, H, W), weight (O, C/groups, kh, kw).

    ``padding``: an int, a pair, "valid" or "same" (stride 1 only; asymmetric when the total is odd).
    """
    _check("conv2d", input, weight, groups, transposed=False)
    stride, dilation = _pair(stride, "stride", "conv2d"), _pair(dilation, "dilation", "conv2d")
    if min(stride) < 1 or min(dilation) < 1:
        raise ValueError(f"conv2d: stride and dilation must be positive, got {stride} and {dilation}")
    if padding == "same":
        if stride != (1, 1):
            raise ValueError("conv2d: padding='same' is not supported for strided convolutions")
        pads = _same_padding(weight.shape[2:], dilation)
    elif padding == "valid":
        pads = (0, 0, 0, 0)
    else:
        ph, pw = _pair(padding, "padding", "conv2d")
        if min(ph, pw) < 0:
            raise ValueError(f"conv2d: padding must be non-negative, got {padding!r}")
        pads = (ph, ph, pw, pw)
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise RuntimeError(f"conv2d: bias has shape {tuple(bias.shape)}, expected ({weight.shape[0]},)")
    geometry = _Geometry(input.shape, weight.shape, stride, pads, dilation, groups)
    if min(geometry.out_hw) < 1:
        raise RuntimeError(
            f"conv2d: kernel {tuple(weight.shape[2:])} (dilation {dilation}) is larger than the padded input "
            f"{(input.shape[2] + pads[0] + pads[1], input.shape[3] + pads[2] + pads[3])}"
        )
    return Conv2d.apply(input, weight, bias, geometry=geometry)


def conv1d(input: Tensor, weight: Tensor, bias=None, stride=1, padding=0, dilation=1, groups: int = 1) -> Tensor:
    """1-D convolution: input (N, C, L), weight (O, C/groups, k), as a conv2d over a height of 1."""
    if input.ndim != 3 or weight.ndim != 3:
        raise RuntimeError(
            f"conv1d: expected input (N, C, L) and weight (O, C/groups, k), got {tuple(input.shape)} and "
            f"{tuple(weight.shape)}"
        )
    first = lambda v: v[0] if isinstance(v, (tuple, list)) else v  # noqa: E731
    padding = padding if isinstance(padding, str) else (0, first(padding))
    out = conv2d(input.unsqueeze(2), weight.unsqueeze(2), bias, (1, first(stride)), padding, (1, first(dilation)),
                 groups)  # fmt: skip
    return out.squeeze(2)


def conv2d_weight(input: Tensor, weight_size: tuple, grad_output: Tensor, stride=1, padding=0, dilation=1,
                  groups: int = 1) -> Tensor:  # fmt: skip
    """The gradient of conv2d with respect to its weight (``torch.nn.grad.conv2d_weight``): input (N, C, H, W),
    grad_output (N, O, Ho, Wo) -> (O, C/groups, kh, kw). Differentiable in both arguments."""
    pads = _pair(padding, "padding", "conv2d_weight")
    stride, dilation = _pair(stride, "stride", "conv2d_weight"), _pair(dilation, "dilation", "conv2d_weight")
    geometry = _Geometry(input.shape, weight_size, stride, (pads[0], pads[0], pads[1], pads[1]), dilation, groups)
    if (input.shape[0], weight_size[0], *geometry.out_hw) != tuple(grad_output.shape):
        raise RuntimeError(f"conv2d_weight: grad_output has shape {tuple(grad_output.shape)}, the convolution gives "
                           f"{(input.shape[0], weight_size[0], *geometry.out_hw)}")  # fmt: skip
    return Conv2dWeightGrad.apply(input, grad_output, geometry=geometry)


def conv_transpose2d(input: Tensor, weight: Tensor, bias=None, stride=1, padding=0, output_padding=0,
                     groups: int = 1, dilation=1) -> Tensor:  # fmt: skip
    """The adjoint of conv2d: input (N, C_in, H, W), weight (C_in, C_out/groups, kh, kw) -> (N, C_out, H', W')
    with H' = (H - 1) * stride - 2 * padding + dilation * (kh - 1) + output_padding + 1."""
    _check("conv_transpose2d", input, weight, groups, transposed=True)
    stride, dilation = _pair(stride, "stride", "conv_transpose2d"), _pair(dilation, "dilation", "conv_transpose2d")
    (ph, pw), (oph, opw) = _pair(padding, "padding", "conv_transpose2d"), _pair(output_padding, "output_padding",
                                                                                "conv_transpose2d")  # fmt: skip
    if oph >= max(stride[0], dilation[0]) or opw >= max(stride[1], dilation[1]) or min(oph, opw) < 0:
        raise ValueError(f"conv_transpose2d: output_padding {(oph, opw)} must be smaller than stride or dilation")
    kh, kw = weight.shape[2:]
    h = (input.shape[2] - 1) * stride[0] - 2 * ph + dilation[0] * (kh - 1) + oph + 1
    w = (input.shape[3] - 1) * stride[1] - 2 * pw + dilation[1] * (kw - 1) + opw + 1
    if min(h, w) < 1:
        raise RuntimeError(f"conv_transpose2d: the output size {(h, w)} would not be positive")
    c_out = weight.shape[1] * groups
    # The convolution whose input gradient this is: input (N, C_out, h, w) -> (N, C_in, H, W). The
    # output_padding rows lie past the last window (no gradient reaches them); where they span a
    # whole stride or more (dilation > stride), the bottom/right padding shrinks to keep H windows.
    bottom, right = ph - stride[0] * (oph // stride[0]), pw - stride[1] * (opw // stride[1])
    geometry = _Geometry((input.shape[0], c_out, h, w), weight.shape, stride, (ph, bottom, pw, right), dilation,
                         groups)  # fmt: skip
    out = ConvTranspose2d.apply(input, weight, geometry=geometry)
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1)
    return out
