"""Pooling: max_pool1d/2d, avg_pool1d/2d, adaptive_avg_pool2d, adaptive_max_pool2d.

Pooling reads windows the way convolution does (ops/_windows.py). Max pooling remembers,
for each output, which kernel offset held the window's maximum (the first one on ties, as
PyTorch); its gradient adds each output's gradient back at that offset (``WindowScatter``),
whose gradient in turn reads the same offsets (``WindowGather``): each pair is the other's
adjoint, so double backward is exact and stays fast. Average pooling is a window sum
(``WindowSum``, adjoint ``WindowSpread``) times PyTorch's divisor.

Adaptive pooling gives output cell ``o`` of ``O`` the input rows ``floor(o * S / O)`` to
``ceil((o + 1) * S / O)``: averages are a product with an averaging matrix on each side
(or a reshape and mean when O divides S), maxima a max over rows, then over columns.
"""

from __future__ import annotations

import math

from minigrad import backend
from minigrad.autograd import Function
from minigrad.backend import array_module
from minigrad.ops._windows import (
    Geometry,
    as_4d,
    check_dims,
    col2im,
    from_4d,
    int_tuple,
    lift,
    out_length,
    pad,
    windows,
)
from minigrad.tensor import Tensor


def _lowest(x):
    """The padding that never wins a max: -inf for floats, the smallest integer otherwise."""
    return -math.inf if x.dtype.kind == "f" else array_module(x).iinfo(x.dtype).min


# ------------------------------------------------------------------------------- ops
class MaxPool2d(Function):
    """x: (N, C, H, W) -> the largest value of each window (N, C, OH, OW), and the kernel offset
    ``i * kw + j`` where it lies (an integer array of the same shape)."""

    def forward(self, x, geometry):
        xp = array_module(x)
        view = windows(pad(x, geometry, _lowest(x)), geometry)
        best = view[:, :, 0, 0].copy()
        which = xp.zeros(best.shape, dtype=xp.min_scalar_type(math.prod(geometry.kernel)))
        kw = geometry.kernel[1]
        for i, j, _, _ in geometry.offsets():
            candidate = view[:, :, i, j]
            better = candidate > best  # strictly: the first maximum keeps the gradient
            if x.dtype.kind == "f":
                better |= xp.isnan(candidate)  # NaN propagates, as in PyTorch
            xp.copyto(best, candidate, where=better)
            which[better] = i * kw + j
        self.geometry, self.which = geometry, which
        return best, which

    def backward(self, grad, _):
        return WindowScatter.apply(grad, which=self.which, geometry=self.geometry)


class WindowScatter(Function):
    """g: (N, C, OH, OW) -> (N, C, H, W): each value added at its window's offset ``which``."""

    def forward(self, g, which, geometry):
        self.which, self.geometry = which, geometry
        kw = geometry.kernel[1]
        out = col2im(lambda i, j, part: g[part] * (which[part] == i * kw + j), g.shape[:2], geometry, g)
        return backend.contiguous_copy(out)

    def backward(self, grad):
        return WindowGather.apply(grad, which=self.which, geometry=self.geometry)


class WindowGather(Function):
    """x: (N, C, H, W) -> (N, C, OH, OW): each window's value at offset ``which``."""

    def forward(self, x, which, geometry):
        self.which, self.geometry = which, geometry
        xp = array_module(x)
        view = windows(pad(x, geometry), geometry)
        out = xp.zeros(which.shape, dtype=x.dtype)
        kw = geometry.kernel[1]
        for i, j, _, _ in geometry.offsets():
            xp.copyto(out, view[:, :, i, j], where=which == i * kw + j)
        return out

    def backward(self, grad):
        return WindowScatter.apply(grad, which=self.which, geometry=self.geometry)


class WindowSum(Function):
    """x: (N, C, H, W) -> (N, C, OH, OW): the sum of each window (zero padding)."""

    def forward(self, x, geometry):
        self.geometry = geometry
        view = windows(pad(x, geometry), geometry)
        out = view[:, :, 0, 0].copy()
        for i, j, _, _ in geometry.offsets():
            if i or j:
                out += view[:, :, i, j]
        return out

    def backward(self, grad):
        return WindowSpread.apply(grad, geometry=self.geometry)


class WindowSpread(Function):
    """g: (N, C, OH, OW) -> (N, C, H, W): each value added over its whole window."""

    def forward(self, g, geometry):
        self.geometry = geometry
        return backend.contiguous_copy(col2im(lambda i, j, part: g[part], g.shape[:2], geometry, g))

    def backward(self, grad):
        return WindowSum.apply(grad, geometry=self.geometry)


# ------------------------------------------------------------------ window geometry
def _pool_geometry(name, dims, input, kernel_size, stride, padding, dilation, ceil_mode) -> Geometry:
    kernel = int_tuple(kernel_size, dims, name, "kernel_size", 1)
    stride = kernel if stride is None or stride == () or stride == [] else int_tuple(stride, dims, name, "stride", 1)
    padding = int_tuple(padding, dims, name, "padding", 0)
    dilation = int_tuple(dilation, dims, name, "dilation", 1)
    if any(2 * p > d * (k - 1) + 1 for p, k, d in zip(padding, kernel, dilation)):
        raise ValueError(
            f"{name}: padding should be at most half of the (dilated) kernel size, got padding={padding}, "
            f"kernel_size={kernel} and dilation={dilation}"
        )
    size = tuple(input.shape[-dims:])
    out = tuple(out_length(*args, ceil_mode) for args in zip(size, kernel, stride, padding, padding, dilation))
    if any(o < 1 for o in out):
        raise RuntimeError(
            f"{name}: the output size {out} is too small (input {tuple(input.shape)}, kernel_size={kernel}, "
            f"stride={stride}, padding={padding}, dilation={dilation})"
        )
    # with ceil_mode the last window may run past the padding: pad after enough to hold it
    after = tuple(
        max(p, (o - 1) * st + d * (k - 1) + 1 - s - p)
        for o, st, d, k, s, p in zip(out, stride, dilation, kernel, size, padding)
    )
    sides = tuple(side for before, end in zip(lift(padding, 0), lift(after, 0)) for side in (before, end))
    return Geometry(lift(kernel, 1), lift(stride, 1), sides, lift(dilation, 1), lift(size, 1), lift(out, 1))


def _flat_indices(which, geometry: Geometry, xp):
    """Max pooling's ``which`` (a kernel offset per output) as flat indices into each (H, W) plane."""
    kw, (sh, sw), (dh, dw), (oh, ow) = geometry.kernel[1], geometry.stride, geometry.dilation, geometry.out_size
    top, _, left, _ = geometry.padding
    which = which.astype(xp.int64)
    rows = xp.arange(oh).reshape(-1, 1) * sh - top + (which // kw) * dh
    columns = xp.arange(ow) * sw - left + (which % kw) * dw
    return rows * geometry.in_size[1] + columns


# ------------------------------------------------------------------- public functions
def _max_pool(name, dims, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    layout = "C, L" if dims == 1 else "C, H, W"
    check_dims(name, input, dims, layout)
    geometry = _pool_geometry(name, dims, input, kernel_size, stride, padding, dilation, ceil_mode)
    pool, which = MaxPool2d.apply(as_4d(input, dims), geometry=geometry)
    out = from_4d(pool, input, dims)
    if not return_indices:
        return out
    indices = _flat_indices(which.data, geometry, array_module(input.data)).reshape(out.shape)
    return out, Tensor._make(indices)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """input: (N, C, L) -> (N, C, L_out), the maximum of each window."""
    return _max_pool("max_pool1d", 1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """input: (N, C, H, W) -> (N, C, OH, OW), the maximum of each window (``stride`` defaults to
    ``kernel_size``; padding never wins). With ``return_indices``, also each maximum's flat index in (H, W)."""
    return _max_pool("max_pool2d", 2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def _divisor_1d(size, kernel, stride, pad, out, count_include_pad, xp):
    """PyTorch's averaging count along one dim: the window clipped to the padded input, or to the input."""
    start = xp.arange(out) * stride - pad
    end = xp.minimum(start + kernel, size + pad)
    if count_include_pad:
        return end - start
    return xp.minimum(end, size) - xp.maximum(start, 0)


def _avg_pool(name, dims, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    layout = "C, L" if dims == 1 else "C, H, W"
    check_dims(name, input, dims, layout)
    geometry = _pool_geometry(name, dims, input, kernel_size, stride, padding, 1, ceil_mode)
    if divisor_override is not None and (not isinstance(divisor_override, int) or divisor_override == 0):
        raise ValueError(f"{name}: divisor_override must be a non-zero int, got {divisor_override!r}")
    summed = WindowSum.apply(as_4d(input, dims), geometry=geometry)
    if divisor_override is not None:
        return from_4d(summed / divisor_override, input, dims)
    xp = array_module(input.data)
    rows, columns = (
        _divisor_1d(*args, count_include_pad, xp)
        for args in zip(geometry.in_size, geometry.kernel, geometry.stride, geometry.padding[::2], geometry.out_size)
    )
    if (rows == rows[0]).all() and (columns == columns[0]).all():
        return from_4d(summed / float(rows[0] * columns[0]), input, dims)
    scale = (1.0 / xp.outer(rows, columns)).astype(input.dtype)
    return from_4d(summed * scale, input, dims)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True) -> Tensor:
    """input: (N, C, L) -> (N, C, L_out), the mean of each window."""
    return _avg_pool("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


def avg_pool2d(
    input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None
) -> Tensor:
    """input: (N, C, H, W) -> (N, C, OH, OW), the mean of each window: divided by the window's size
    within the padded input (``count_include_pad``) or within the input, or by ``divisor_override``."""
    return _avg_pool(
        "avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
    )


def _adaptive_size(name, input, output_size) -> tuple:
    check_dims(name, input, 2, "C, H, W")
    sizes = (output_size, output_size) if not isinstance(output_size, (tuple, list)) else tuple(output_size)
    if len(sizes) != 2:
        raise ValueError(f"{name}: output_size must be an int or a pair, got {output_size!r}")
    sizes = tuple(s if o is None else o for o, s in zip(sizes, input.shape[-2:]))
    if not all(isinstance(o, int) and o >= 1 for o in sizes):
        raise ValueError(f"{name}: output_size must be positive ints (or None), got {output_size!r}")
    if any(s == 0 for s in input.shape[-2:]):
        raise RuntimeError(f"{name}: expected a non-empty input, got shape {tuple(input.shape)}")
    return sizes


def _bounds(size: int, out: int, xp):
    """Start and end (exclusive) of each adaptive cell: floor(o * S / O), ceil((o + 1) * S / O)."""
    o = xp.arange(out)
    return (o * size) // out, -((-(o + 1) * size) // out)


def _averaging_matrix(size: int, out: int, dtype, xp):
    """(out, size): row o averages the input cells of adaptive window o."""
    start, end = _bounds(size, out, xp)
    position = xp.arange(size)
    inside = (position >= start[:, None]) & (position < end[:, None])
    return (inside / (end - start)[:, None]).astype(dtype)


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """input: (N, C, H, W) -> (N, C, *output_size), the mean of each adaptive window."""
    out_h, out_w = _adaptive_size("adaptive_avg_pool2d", input, output_size)
    height, width = input.shape[-2:]
    if height % out_h == 0 and width % out_w == 0:  # even windows: a reshape and a mean
        lead = input.shape[:-2]
        cells = input.reshape(*lead, out_h, height // out_h, out_w, width // out_w)
        return cells.mean((-3, -1))
    xp = array_module(input.data)
    rows = Tensor._make(_averaging_matrix(height, out_h, input.dtype, xp))
    columns = Tensor._make(_averaging_matrix(width, out_w, input.dtype, xp).T)
    return rows @ input @ columns


def _max_over(input: Tensor, dim: int, size: int, out: int):
    """The max along ``dim`` over each adaptive window: (values, index of the first maximum)."""
    xp = array_module(input.data)
    start, end = _bounds(size, out, xp)
    width = int((end - start).max())
    # every window padded to the widest by repeating its last element, which never wins a tie
    gather = xp.minimum(start[:, None] + xp.arange(width), end[:, None] - 1)  # (out, width)
    index = (slice(None),) * (dim % input.ndim) + (Tensor._make(gather),)
    values, offsets = input[index].max(dim % input.ndim + 1)
    return values, gather[xp.arange(out).reshape((-1,) + (1,) * (input.ndim - 1 - dim % input.ndim)), offsets.data]


def adaptive_max_pool2d(input: Tensor, output_size, return_indices: bool = False):
    """input: (N, C, H, W) -> (N, C, *output_size), the max of each adaptive window (the first on ties)."""
    out_h, out_w = _adaptive_size("adaptive_max_pool2d", input, output_size)
    height, width = input.shape[-2:]
    row_max, column_of = _max_over(input, -1, width, out_w)  # (..., H, OW)
    out, row_of = _max_over(row_max, -2, height, out_h)  # (..., OH, OW)
    if not return_indices:
        return out
    column = array_module(input.data).take_along_axis(column_of, row_of, axis=-2)
    return out, Tensor._make(row_of * width + column)
