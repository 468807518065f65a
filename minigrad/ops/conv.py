"""Convolution: conv1d/conv2d, conv_transpose1d/2d, unfold/fold.

Three ops share one ``Geometry`` (ops/_windows.py) and are each other's gradients. With
``y = conv(x, w)``:

    Conv(x, w)            -> y: (N, O, OH, OW)
    ConvTranspose(g, w)   -> x: (N, C, H, W)          conv's input gradient, and conv_transpose2d
    ConvWeightGrad(x, g)  -> w: (O, C / groups, kh, kw)

They are the three partial derivatives of one trilinear form, ``sum(g * conv(x, w))``, so
the backward of each is made of the other two: backward of any order is recorded with the
same fast kernels (an R1 penalty's double backward is a few more convolutions).

The kernels: the general path is a strided window view of the padded input, copied once
into GEMM columns (im2col), and one batched GEMM over the groups; the input gradient
multiplies back into columns and adds them into place at each kernel offset (col2im). The
depthwise path (groups == input channels) multiplies and accumulates over the kernel
offsets instead, never forming a block-diagonal GEMM (at stride 1 on flat rows, where each
offset is a contiguous shifted slice: ``_depthwise_by_shifts``). The weight gradient is one GEMM
of the columns with the output gradient. The input gradient of a stride-1 convolution is a
forward convolution with the flipped kernel (``_flipped``), taken where it is cheaper than col2im:
ungrouped with no more output than input channels, or depthwise with one output per input
channel. A 1x1 stride-1 convolution is a matrix product per image in all three directions
(``_pointwise``). A 3x3, stride-1, dilation-1, ungrouped float32/float64
convolution with at least 32 input and output channels and 4096 output pixels in the batch, on
one CPU thread, runs forward as Winograd F(2x2, 3x3) instead (so does its input gradient, through
the flipped forward convolution): 16 GEMMs over transformed 4x4 tiles in place of one over 3x3
windows, 2.25 times fewer multiplies (see the Winograd section below). Its weight gradient
(written too, and tested) runs only when ``_WINOGRAD`` forces it: im2col measured faster there.
The copies and the col2im adds are split over the CPU threads (``backend.parallel``). conv1d
runs as conv2d over (1, L).
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
    pad_sides,
    windows,
)
from minigrad.tensor import Tensor


# --------------------------------------------------------------------------- kernels
def _depthwise(channels: int, geometry: Geometry) -> bool:
    return geometry.groups > 1 and geometry.groups == channels


def _pointwise(geometry: Geometry) -> bool:
    """A 1x1 convolution with stride 1 and no padding: a matrix product per image, no windows
    (conv_transpose's output_padding can still make the input larger than the output)."""
    unit = geometry.kernel == (1, 1) and geometry.stride == (1, 1) and not any(geometry.padding)
    return unit and geometry.in_size == geometry.out_size


def _columns(x, geometry: Geometry):
    """x: (N, C, H, W) -> GEMM columns (groups, C / groups * kh * kw, N * OH * OW): the one copy (im2col)."""
    view = windows(pad(x, geometry), geometry).transpose(1, 2, 3, 0, 4, 5)  # (C, kh, kw, N, OH, OW)
    return backend.contiguous_copy(view).reshape(geometry.groups, -1, x.shape[0] * math.prod(geometry.out_size))


def _group_major(y, groups: int):
    """y: (N, O, OH, OW) -> (groups, O / groups, N * OH * OW)."""
    n, channels = y.shape[:2]
    return y.reshape(n, channels, -1).transpose(1, 0, 2).reshape(groups, channels // groups, -1)


def _per_channel(y, channels: int):
    """y: (N, C * m, OH, OW) -> (N, C, m, OH, OW): the depthwise output channels of each input channel."""
    return y.reshape(y.shape[0], channels, -1, *y.shape[2:])


def convolve(x, weight, geometry: Geometry):
    """x: (N, C, H, W), weight: (O, C / groups, kh, kw) -> (N, O, OH, OW)."""
    xp = array_module(x)
    n, channels = x.shape[:2]
    out_channels, (oh, ow) = weight.shape[0], geometry.out_size
    if n == 0:  # an empty batch: no windows to copy
        return xp.zeros((0, out_channels, oh, ow), dtype=x.dtype)
    if _depthwise(channels, geometry):
        kernel = weight.reshape(channels, -1, *geometry.kernel)
        if kernel.shape[1] == 1 and geometry.stride == (1, 1):
            return _depthwise_by_shifts(x, kernel[:, 0], geometry)
        view = windows(pad(x, geometry), geometry)
        out = xp.empty((n, channels, kernel.shape[1], oh, ow), dtype=x.dtype)

        def accumulate(start, stop):  # images start:stop, one kernel offset at a time
            part = slice(start, stop)

            def product(i, j, out):
                return xp.multiply(view[part, :, None, i, j], kernel[:, :, i, j, None, None], out=out)

            (i, j, _, _), *rest = geometry.offsets()
            total, term = product(i, j, out[part]), None
            for i, j, _, _ in rest:
                term = product(i, j, term)
                total += term

        backend.parallel(accumulate, n, out, cache_blocks=True)
        return out.reshape(n, out_channels, oh, ow)
    if _winograd(geometry, x, out_channels):
        return _winograd_conv(x, weight, geometry)
    groups = geometry.groups
    if _pointwise(geometry):  # (G, O/G, C/G) @ (N, G, C/G, H*W), straight into (N, O, H, W)
        out = weight.reshape(groups, out_channels // groups, -1) @ x.reshape(n, groups, channels // groups, -1)
        return out.reshape(n, out_channels, oh, ow)
    out = weight.reshape(groups, out_channels // groups, -1) @ _columns(x, geometry)  # (G, O/G, N*OH*OW)
    return backend.contiguous_copy(out.reshape(out_channels, n, oh, ow).transpose(1, 0, 2, 3))


def _depthwise_by_shifts(x, kernel, geometry: Geometry):
    """A stride-1 depthwise convolution with one output channel per input channel, on flat rows.

    x: (N, C, H, W), kernel: (C, kh, kw) -> (N, C, OH, OW). Each padded (image, channel) plane is
    one flat row, so kernel offset (i, j) reads a contiguous slice of it, shifted by
    ``i * dh * Wp + j * dw``: the output comes out on an (OH, Wp) grid whose last Wp - OW columns
    are dropped. Each pass then runs over whole rows instead of OW-long pieces of the windows."""
    xp = array_module(x)
    n, channels, height, width = x.shape
    (kh, kw), (dh, dw), (oh, ow) = geometry.kernel, geometry.dilation, geometry.out_size
    top, _, left, _ = geometry.padding
    hp, wp = geometry.padded_size
    rows, length = n * channels, oh * wp
    flat = xp.zeros((rows, hp * wp + (kw - 1) * dw), dtype=x.dtype)  # the last shift reads past the grid
    backend.assign(flat[:, : hp * wp].reshape(n, channels, hp, wp)[:, :, top : top + height, left : left + width], x)
    weights = xp.tile(kernel.reshape(1, -1), (n, 1)).reshape(rows, kh * kw)  # each row's kernel
    shifts = [i * dh * wp + j * dw for i in range(kh) for j in range(kw)]
    wide = xp.empty((rows, length), dtype=x.dtype)

    def accumulate(start, stop):  # rows start:stop, one kernel offset at a time
        part, total, term = slice(start, stop), wide[start:stop], None
        xp.multiply(flat[part, :length], weights[part, :1], out=total)
        for k, shift in enumerate(shifts[1:], 1):
            term = xp.multiply(flat[part, shift : shift + length], weights[part, k : k + 1], out=term)
            total += term

    backend.parallel(accumulate, rows, wide, cache_blocks=True)
    out = xp.empty((n, channels, oh, ow), dtype=x.dtype)
    backend.assign(out, wide.reshape(n, channels, oh, wp)[..., :ow])
    return out


def convolve_transpose(g, weight, geometry: Geometry):
    """g: (N, O, OH, OW), weight: (O, C / groups, kh, kw) -> (N, C, H, W): the adjoint of ``convolve``."""
    xp = array_module(g)
    n, channels = g.shape[0], weight.shape[1] * geometry.groups
    if n == 0:
        return xp.zeros((0, channels, *geometry.in_size), dtype=g.dtype)
    if _depthwise(channels, geometry):
        kernel = weight.reshape(channels, -1, *geometry.kernel)
        flipped = _flipped(geometry)
        if kernel.shape[1] == 1 and flipped is not None:  # a depthwise convolution itself, kernel flipped
            return convolve(g, weight[:, :, ::-1, ::-1], flipped)
        if kernel.shape[1] == 1:  # one output channel per input channel: a plain product

            def piece(i, j, part):
                return g[part] * kernel[:, 0, i, j, None, None]

        else:
            per_channel = _per_channel(g, channels)

            def piece(i, j, part):
                return xp.einsum("ncmhw,cm->nchw", per_channel[part], kernel[:, :, i, j])

        out = col2im(piece, (n, channels), geometry, g)
        return backend.contiguous_copy(out)
    groups = geometry.groups
    kernel = weight.reshape(groups, weight.shape[0] // groups, -1).transpose(0, 2, 1)  # (G, C/G*kh*kw, O/G)
    if _pointwise(geometry):
        return (kernel @ g.reshape(n, groups, weight.shape[0] // groups, -1)).reshape(n, channels, *geometry.in_size)
    flipped = _flipped(geometry) if groups == 1 else None
    if flipped is not None and weight.shape[0] <= channels:  # its im2col copies O * kh * kw rows
        return convolve(g, weight.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1], flipped)
    columns = (kernel @ _group_major(g, groups)).reshape(channels, *geometry.kernel, n, *geometry.out_size)
    out = col2im(lambda i, j, part: columns[part, i, j], (channels, n), geometry, g)  # (C, N, H, W)
    return backend.contiguous_copy(out.transpose(1, 0, 2, 3))


def _flipped(geometry: Geometry) -> Geometry | None:
    """The input gradient of a stride-1 convolution is itself one: ``g`` convolved with the kernel
    flipped in space (and, in each group, in/out channels swapped), padded before by ``(k - 1) * d``
    less the forward padding. That geometry (same groups), or None where it does not apply
    (strided, or padded past the kernel's reach)."""
    if geometry.stride != (1, 1):
        return None
    (kh, kw), (dh, dw) = geometry.kernel, geometry.dilation
    top, _, left, _ = geometry.padding
    (height, width), (oh, ow) = geometry.in_size, geometry.out_size
    # before: the kernel's reach less the forward padding; after: whatever gives back (H, W)
    # (rows that no window read, as conv_transpose's output_padding adds, get zero gradient)
    before = ((kh - 1) * dh - top, (kw - 1) * dw - left)
    padding = (before[0], height - oh + top, before[1], width - ow + left)
    if min(padding) < 0:
        return None
    return Geometry(
        geometry.kernel, (1, 1), padding, geometry.dilation, geometry.out_size, geometry.in_size, geometry.groups
    )


def convolve_weight(x, g, geometry: Geometry):
    """x: (N, C, H, W), g: (N, O, OH, OW) -> (O, C / groups, kh, kw): the weight gradient."""
    xp = array_module(x)
    channels, out_channels = x.shape[1], g.shape[1]
    if x.shape[0] == 0:  # no image: no term in the sum
        return xp.zeros((out_channels, channels // geometry.groups, *geometry.kernel), dtype=x.dtype)
    if _depthwise(channels, geometry):
        view = windows(pad(x, geometry), geometry)
        per_channel = _per_channel(g, channels)
        out = xp.empty((channels, per_channel.shape[2], *geometry.kernel), dtype=x.dtype)

        def reduce(start, stop):  # channels start:stop
            part = slice(start, stop)
            for i, j, _, _ in geometry.offsets():
                out[part, :, i, j] = xp.einsum("ncmhw,nchw->cm", per_channel[:, part], view[:, part, i, j])

        backend.parallel(reduce, channels, x)
        return out.reshape(out_channels, 1, *geometry.kernel)
    groups = geometry.groups
    if _pointwise(geometry):  # sum over images of (G, O/G, H*W) @ (G, H*W, C/G)
        n = x.shape[0]
        g_rows = g.reshape(n, groups, out_channels // groups, -1)
        x_columns = x.reshape(n, groups, channels // groups, -1).swapaxes(2, 3)
        return (g_rows @ x_columns).sum(axis=0).reshape(out_channels, channels // groups, 1, 1)
    if _winograd(geometry, x, out_channels, weight_grad=True):
        return _winograd_weight(x, g, geometry)
    # (G, C/G*kh*kw, L) @ (G, L, O/G): the long axis L = N*OH*OW inside, the wide one outside
    # (faster in OpenBLAS than the transposed product, (G, O/G, L) @ (G, L, C/G*kh*kw))
    out = _columns(x, geometry) @ _group_major(g, groups).transpose(0, 2, 1)
    return backend.contiguous_copy(out.transpose(0, 2, 1)).reshape(out_channels, channels // groups, *geometry.kernel)


# ----------------------------------------------------------------- Winograd F(2x2, 3x3)
# Each 2x2 output tile y of a 3x3 convolution is computed from the 4x4 input tile d under it
# (tiles at stride 2) and the kernel g as  y = A^T [(G g G^T) * (B^T d B)] A,  with * elementwise
# over the 4x4 and summed over input channels:
#
#         | 1  0 -1  0 |           |  1    0    0  |
#   B^T = | 0  1  1  0 |       G = | 1/2  1/2  1/2 |       A^T = | 1  1  1  0 |
#         | 0 -1  1  0 |           | 1/2 -1/2  1/2 |             | 0  1 -1 -1 |
#         | 0  1  0 -1 |           |  0    0    1  |
#
# (in 1-D: y0 = d0 g0 + d1 g1 + d2 g2 = m0 + m1 + m2 and y1 = m1 - m2 - m3 with m = Gg * B^T d).
# For each of the 16 positions of the 4x4 the sum over channels is a GEMM, (tiles, C) @ (C, O):
# 16 products in place of 36 per tile and channel pair (9 per output pixel against 4). B^T and
# A^T hold only 0 and +-1, so the tile transforms are adds and subtracts of whole strided views.
_B_T = ((1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1))
_G = ((1, 0, 0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0, 0, 1))
_A_T = ((1, 1, 1, 0), (0, 1, -1, -1))
_A = tuple(zip(*_A_T))  # (4, 2): the weight gradient's output-gradient transform

# Where Winograd was measured faster than im2col (float32, N = 32, on a 2-core machine): on one
# thread, from 32 input and output channels (at 16 the tile transforms cost more than the smaller
# GEMMs save) and 1024 output tiles in the batch (on fewer, the per-block overheads win). With
# more threads it was not faster: im2col's copies split well over them and its one large GEMM
# gains more from OpenBLAS's threads than the 16 small ones per block.
_WINOGRAD = None  # None: there; True: every convolution it can run (tests); False: never
_WINOGRAD_MIN = 32
_WINOGRAD_MIN_TILES = 1024
_BLOCK_TILES = 1024  # tiles transformed and multiplied at once (``_row_blocks``)


def _winograd(geometry: Geometry, x, out_channels: int, weight_grad: bool = False) -> bool:
    """Whether to run Winograd on x: (N, C, H, W): a 3x3, stride-1, dilation-1, ungrouped
    float32/float64 convolution, where it pays (``_WINOGRAD``; the GPU is unmeasured: im2col there).
    Unforced, the weight gradient never takes it: im2col's one GEMM with the long axis inside
    measured faster on one thread and on two (11.5 against 13.7 ms at 32 channels, 32x32, batch 32).

    float64 takes it too: the coefficients (0, +-1, 1/2) are exact in binary and its results stay
    within about 1e-15 (relative) of im2col's. float16 is left on im2col, not measured here: its
    11 bits have less to spare for the sums the transforms add before the products."""
    shape = geometry.kernel == (3, 3) and geometry.stride == (1, 1) and geometry.dilation == (1, 1)
    if not (shape and geometry.groups == 1 and x.dtype in (backend.float32, backend.float64)):
        return False
    if _WINOGRAD is not None:
        return _WINOGRAD
    if weight_grad:
        return False
    n, channels = x.shape[:2]
    wide = min(channels, out_channels) >= _WINOGRAD_MIN and n * math.prod(_tiles(geometry)) >= _WINOGRAD_MIN_TILES
    return wide and backend.get_num_threads() == 1 and backend.device_of(x) == "cpu"


def _combine(matrix, parts, out) -> None:
    """``out[k] = sum_r matrix[k][r] * parts[r]`` for a matrix of 0 and +-1: whole-array adds."""
    xp = array_module(out)
    for row, target in zip(matrix, out):
        terms = sorted(((c, p) for c, p in zip(row, parts) if c), key=lambda term: -term[0])  # a + first
        (sign, first), *rest = terms
        if not rest:
            xp.multiply(first, sign, out=target)
            continue
        (sign, second), *rest = rest
        (xp.add if sign > 0 else xp.subtract)(first, second, out=target)
        for sign, part in rest:
            (xp.add if sign > 0 else xp.subtract)(target, part, out=target)


def _along(x, axis: int, start: int, count: int):
    """``count`` entries of ``x`` along ``axis`` from ``start`` at stride 2: one row of every tile."""
    return x[(slice(None),) * axis + (slice(start, start + 2 * count - 1, 2),)]


def _tiles(geometry: Geometry) -> tuple:
    """(th, tw): the 2x2 output tiles covering (OH, OW), the last ones cropped when odd."""
    return tuple(-(-size // 2) for size in geometry.out_size)


def _pixel_major(x, size: tuple, top: int, left: int):
    """x: (N, C, H, W) -> (Hp, Wp, N, C), zeros around, x at ``(top, left)``. With the pixels
    outermost, every slice of tiles is a pass whose inner loop runs over all N * C values.

    One input row at a time, through a (N * C, W) buffer: transposing that is fast, where the
    direct copy reads with a stride of H * W, a power of two that sends every read to one cache set."""
    xp = array_module(x)
    n, channels, height, width = x.shape
    out = xp.empty((*size, n, channels), dtype=x.dtype)
    for border in (out[:top], out[top + height :], out[:, :left], out[:, left + width :]):
        border[...] = 0

    def copy(start, stop):  # input rows start:stop
        row = xp.empty((n * channels, width), dtype=x.dtype)
        for h in range(start, stop):
            row.reshape(n, channels, width)[...] = x[:, :, h]
            out[top + h, left : left + width] = row.T.reshape(width, n, channels)

    backend.parallel(copy, height, x)
    return out


def _channel_major(y, size: tuple):
    """y: (Hp, Wp, N, C) -> (N, C, H, W), its first (H, W) pixels: ``_pixel_major`` undone."""
    xp = array_module(y)
    height, width = size
    out = xp.empty((*y.shape[2:], height, width), dtype=y.dtype)

    def copy(start, stop):  # rows start:stop
        for h in range(start, stop):
            out[:, :, h] = y[h, :width].transpose(1, 2, 0)

    backend.parallel(copy, height, out)
    return out


def _transform_rows(grid, matrix, out) -> None:
    """grid: (Hb, Wp, N, C), the input under a few rows of tiles -> out: (m, m, rows, tw, N, C),
    the ``matrix @ d @ matrix^T`` of each tile ``d`` (k rows and columns at stride 2) for an
    (m, k) matrix of 0 and +-1. The threads take the rows of tiles in parts."""
    xp = array_module(grid)
    m, k = len(matrix), len(matrix[0])

    def transform(start, stop):  # tile rows start:stop
        part = grid[2 * start : 2 * stop + k - 2]
        mixed = xp.empty((m, stop - start, *grid.shape[1:]), dtype=grid.dtype)  # matrix @ d
        _combine(matrix, [_along(part, 0, r, stop - start) for r in range(k)], mixed)
        for a in range(m):  # (matrix @ d) @ matrix^T
            _combine(matrix, [_along(mixed[a], 1, s, out.shape[3]) for s in range(k)], out[a, :, start:stop])

    backend.parallel(transform, out.shape[2], out)


def _output_rows(products, out) -> None:
    """products: (4, 4, rows, tw, N, O), M of a few rows of tiles -> out: (2, 2, rows, tw, N, O),
    A^T M A of each tile. The threads take the rows of tiles in parts."""
    xp = array_module(products)

    def transform(start, stop):  # tile rows start:stop
        part = products[:, :, start:stop]
        mixed = xp.empty((2, *part.shape[1:]), dtype=products.dtype)  # A^T M
        _combine(_A_T, part, mixed)
        for a in range(2):  # (A^T M) A
            _combine(_A_T, mixed[a], out[a, :, start:stop])

    backend.parallel(transform, products.shape[2], products)


def _row_blocks(count: int, row_tiles: int):
    """(start, stop) of the blocks of tile rows (``row_tiles`` tiles each) transformed and
    multiplied together: about ``_BLOCK_TILES`` tiles per thread, whose arrays then stay in cache."""
    step = max(1, -(-_BLOCK_TILES * backend.get_num_threads() // row_tiles))
    return [(i, min(i + step, count)) for i in range(0, count, step)]


def _kernel_matrix(like):
    return array_module(like).asarray(_G, dtype=like.dtype)


def _winograd_conv(x, weight, geometry: Geometry):
    """x: (N, C, H, W), weight: (O, C, 3, 3) -> (N, O, OH, OW) by Winograd F(2x2, 3x3).

    U = G w G^T once (16, C, O); then a block of tile rows at a time (``_row_blocks``), so that
    its arrays stay in cache: V = B^T d B (16, T, C) for its T = rows * tw * N tiles, M = V @ U
    (16, T, O), one batched GEMM on V and U as they lie, and A^T M A into the output, laid out
    (OH, OW, N, O) and transposed once at the end. Odd output sizes: the input is padded to whole
    tiles and the output cropped."""
    xp = array_module(x)
    n, channels, out_channels = x.shape[0], x.shape[1], weight.shape[0]
    th, tw = _tiles(geometry)
    top, _, left, _ = geometry.padding
    padded = _pixel_major(x, (2 * th + 2, 2 * tw + 2), top, left)  # (Hp, Wp, N, C), whole tiles
    g_matrix = _kernel_matrix(x)
    kernel = (g_matrix @ weight @ g_matrix.T).transpose(2, 3, 1, 0).reshape(16, channels, out_channels)  # U
    out = xp.empty((th, 2, tw, 2, n, out_channels), dtype=x.dtype)  # (OH, OW, N, O) in whole tiles
    out_tiles = out.transpose(1, 3, 0, 2, 4, 5)  # (2, 2, th, tw, N, O)
    for i, j in _row_blocks(th, tw * n):
        tiles = xp.empty((4, 4, j - i, tw, n, channels), dtype=x.dtype)  # V
        _transform_rows(padded[2 * i : 2 * j + 2], _B_T, tiles)
        products = tiles.reshape(16, -1, channels) @ kernel  # (16, rows * tw * N, O)
        _output_rows(products.reshape(4, 4, j - i, tw, n, out_channels), out_tiles[:, :, i:j])
    return _channel_major(out.reshape(2 * th, 2 * tw, n, out_channels), geometry.out_size)


def _winograd_weight(x, g, geometry: Geometry):
    """x: (N, C, H, W), g: (N, O, OH, OW) -> (O, C, 3, 3): the adjoint of ``_winograd_conv`` in the weight.

    With U = G w G^T, the loss ``sum over tiles of <dY, A^T (U * V) A>`` equals ``<U, dU>`` with
    ``dU = sum over tiles of (A dY A^T) * V``: 16 GEMMs (O, T) @ (T, C) per block of tile rows,
    summed. Then ``<G w G^T, dU> = <w, G^T dU G>`` gives the weight gradient."""
    xp = array_module(x)
    n, channels, out_channels = x.shape[0], x.shape[1], g.shape[1]
    th, tw = _tiles(geometry)
    top, _, left, _ = geometry.padding
    padded = _pixel_major(x, (2 * th + 2, 2 * tw + 2), top, left)  # (Hp, Wp, N, C)
    grid = _pixel_major(g, (2 * th, 2 * tw), 0, 0)  # (OH, OW, N, O) in whole tiles
    grad = xp.zeros((16, out_channels, channels), dtype=x.dtype)  # dU
    for i, j in _row_blocks(th, tw * n):
        tiles = xp.empty((4, 4, j - i, tw, n, channels), dtype=x.dtype)  # V
        _transform_rows(padded[2 * i : 2 * j + 2], _B_T, tiles)
        grads = xp.empty((4, 4, j - i, tw, n, out_channels), dtype=x.dtype)  # A dY A^T
        _transform_rows(grid[2 * i : 2 * j], _A, grads)
        grad += grads.reshape(16, -1, out_channels).transpose(0, 2, 1) @ tiles.reshape(16, -1, channels)
    g_matrix = _kernel_matrix(x)
    return g_matrix.T @ grad.reshape(4, 4, out_channels, channels).transpose(2, 3, 0, 1) @ g_matrix  # (O, C, 3, 3)


# ------------------------------------------------------------------------------- ops
class Conv(Function):
    """x: (N, C, H, W), weight: (O, C / groups, kh, kw), bias: (O,) or None -> (N, O, OH, OW)."""

    def forward(self, x, weight, bias, geometry):
        need_x, need_weight, _ = self.needs_input_grad
        self.geometry = geometry
        self.save_for_backward(x if need_weight else None, weight if need_x else None)
        out = convolve(x, weight, geometry)
        if bias is not None:
            out += bias.reshape(-1, 1, 1)
        return out

    def backward(self, grad):
        x, weight = self.saved_tensors
        need_x, need_weight, need_bias = self.needs_input_grad
        return (
            ConvTranspose.apply(grad, weight, None, geometry=self.geometry) if need_x else None,
            ConvWeightGrad.apply(x, grad, geometry=self.geometry) if need_weight else None,
            grad.sum((0, 2, 3)) if need_bias else None,
        )


class ConvTranspose(Function):
    """g: (N, O, OH, OW), weight: (O, C / groups, kh, kw), bias: (C,) or None -> (N, C, H, W)."""

    def forward(self, g, weight, bias, geometry):
        need_g, need_weight, _ = self.needs_input_grad
        self.geometry = geometry
        self.save_for_backward(g if need_weight else None, weight if need_g else None)
        out = convolve_transpose(g, weight, geometry)
        if bias is not None:
            out += bias.reshape(-1, 1, 1)
        return out

    def backward(self, grad):
        g, weight = self.saved_tensors
        need_g, need_weight, need_bias = self.needs_input_grad
        return (
            Conv.apply(grad, weight, None, geometry=self.geometry) if need_g else None,
            ConvWeightGrad.apply(grad, g, geometry=self.geometry) if need_weight else None,
            grad.sum((0, 2, 3)) if need_bias else None,
        )


class ConvWeightGrad(Function):
    """x: (N, C, H, W), g: (N, O, OH, OW) -> (O, C / groups, kh, kw)."""

    def forward(self, x, g, geometry):
        need_x, need_g = self.needs_input_grad
        self.geometry = geometry
        self.save_for_backward(x if need_g else None, g if need_x else None)
        return convolve_weight(x, g, geometry)

    def backward(self, grad):
        x, g = self.saved_tensors
        need_x, need_g = self.needs_input_grad
        return (
            ConvTranspose.apply(g, grad, None, geometry=self.geometry) if need_x else None,
            Conv.apply(x, grad, None, geometry=self.geometry) if need_g else None,
        )


class Unfold(Function):
    """x: (N, C, H, W) -> (N, C * kh * kw, OH * OW): every window as a column."""

    def forward(self, x, geometry):
        self.geometry = geometry
        n, channels = x.shape[:2]
        return windows(pad(x, geometry), geometry).reshape(n, channels * math.prod(geometry.kernel), -1)

    def backward(self, grad):
        return Fold.apply(grad, geometry=self.geometry)


class Fold(Function):
    """columns: (N, C * kh * kw, OH * OW) -> (N, C, H, W): each column added back where its window lies."""

    def forward(self, columns, geometry):
        self.geometry = geometry
        n = columns.shape[0]
        blocks = columns.reshape(n, -1, *geometry.kernel, *geometry.out_size)
        out = col2im(lambda i, j, part: blocks[part, :, i, j], blocks.shape[:2], geometry, columns)
        return array_module(columns).ascontiguousarray(out)

    def backward(self, grad):
        return Unfold.apply(grad, geometry=self.geometry)


# ------------------------------------------------------------------ argument checks
def _check_weight(name: str, input: Tensor, weight: Tensor, bias, dims: int, groups) -> None:
    if not isinstance(weight, Tensor) or weight.ndim != dims + 2:
        raise RuntimeError(f"{name}: expected a {dims + 2}-D weight, got shape {tuple(getattr(weight, 'shape', ()))}")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{name}: groups must be a positive int, got {groups!r}")
    for what, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.dtype != input.dtype:
            raise RuntimeError(f"{name}: input is {input.dtype} but {what} is {t.dtype}; they must match")


def _check_fits(name: str, size: tuple, pads: tuple, kernel: tuple, dilation: tuple) -> None:
    padded = tuple(s + before + after for s, (before, after) in zip(size, pads))
    reach = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    if any(r > p for r, p in zip(reach, padded)):
        raise RuntimeError(
            f"{name}: the kernel {tuple(kernel)} (spanning {reach} with dilation {dilation}) is larger "
            f"than the padded input {padded}"
        )


def _conv_padding(name: str, padding, kernel: tuple, stride: tuple, dilation: tuple) -> tuple:
    """``padding`` as (before, after) per dim. "same" pads ``dilation * (kernel - 1)`` in all,
    the odd one after (PyTorch's rule); "valid" pads nothing."""
    dims = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * dims
        if padding != "same":
            raise ValueError(f"{name}: padding must be an int, a tuple, 'valid' or 'same', got {padding!r}")
        if any(s != 1 for s in stride):
            raise ValueError(f"{name}: padding='same' needs stride 1, got stride {stride}")
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple((t // 2, t - t // 2) for t in totals)
    return tuple((p, p) for p in int_tuple(padding, dims, name, "padding", 0))


# ------------------------------------------------------------------- public functions
def _conv(name, dims, input, weight, bias, stride, padding, dilation, groups) -> Tensor:
    layout = "C, L" if dims == 1 else "C, H, W"
    check_dims(name, input, dims, layout)
    _check_weight(name, input, weight, bias, dims, groups)
    channels, out_channels = input.shape[-dims - 1], weight.shape[0]
    if channels % groups:
        raise RuntimeError(f"{name}: groups={groups} does not divide the {channels} input channels")
    if out_channels % groups:
        raise RuntimeError(f"{name}: groups={groups} does not divide the {out_channels} output channels of the weight")
    if channels != weight.shape[1] * groups:
        raise RuntimeError(
            f"{name}: expected input with {weight.shape[1] * groups} channels (weight {tuple(weight.shape)}, "
            f"groups={groups}), got input of shape {tuple(input.shape)}"
        )
    if bias is not None and tuple(bias.shape) != (out_channels,):
        raise RuntimeError(f"{name}: expected a bias of shape ({out_channels},), got {tuple(bias.shape)}")
    kernel, size = tuple(weight.shape[2:]), tuple(input.shape[-dims:])
    stride = int_tuple(stride, dims, name, "stride", 1)
    dilation = int_tuple(dilation, dims, name, "dilation", 1)
    pads = _conv_padding(name, padding, kernel, stride, dilation)
    _check_fits(name, size, pads, kernel, dilation)
    out_size = tuple(out_length(*args) for args in zip(size, kernel, stride, *zip(*pads), dilation))
    geometry = Geometry(
        lift(kernel, 1), lift(stride, 1), pad_sides(pads), lift(dilation, 1), lift(size, 1), lift(out_size, 1), groups
    )
    x, w = as_4d(input, dims), (weight.unsqueeze(2) if dims == 1 else weight)
    return from_4d(Conv.apply(x, w, bias, geometry=geometry), input, dims)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """input: (N, C, L), weight: (O, C / groups, k), bias: (O,) -> (N, O, L_out)."""
    return _conv("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """input: (N, C, H, W), weight: (O, C / groups, kh, kw), bias: (O,) -> (N, O, OH, OW).

    ``padding`` is an int, a pair, "valid" or "same" (stride 1; uneven when the dilated kernel is even)."""
    return _conv("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def _conv_transpose(name, dims, input, weight, bias, stride, padding, output_padding, groups, dilation) -> Tensor:
    layout = "C, L" if dims == 1 else "C, H, W"
    check_dims(name, input, dims, layout)
    _check_weight(name, input, weight, bias, dims, groups)
    channels = input.shape[-dims - 1]
    if channels != weight.shape[0]:
        raise RuntimeError(
            f"{name}: expected input with {weight.shape[0]} channels (weight {tuple(weight.shape)}, "
            f"groups={groups}), got input of shape {tuple(input.shape)}"
        )
    if channels % groups:
        raise RuntimeError(f"{name}: groups={groups} does not divide the {channels} input channels")
    out_channels = weight.shape[1] * groups
    if bias is not None and tuple(bias.shape) != (out_channels,):
        raise RuntimeError(f"{name}: expected a bias of shape ({out_channels},), got {tuple(bias.shape)}")
    kernel, size = tuple(weight.shape[2:]), tuple(input.shape[-dims:])
    stride = int_tuple(stride, dims, name, "stride", 1)
    dilation = int_tuple(dilation, dims, name, "dilation", 1)
    padding = int_tuple(padding, dims, name, "padding", 0)
    output_padding = int_tuple(output_padding, dims, name, "output_padding", 0)
    if any(o >= s and o >= d for o, s, d in zip(output_padding, stride, dilation)):
        raise ValueError(
            f"{name}: output_padding {output_padding} must be smaller than either stride {stride} "
            f"or dilation {dilation}"
        )
    out_size = tuple(
        (s - 1) * st - 2 * p + d * (k - 1) + o + 1
        for s, st, p, d, k, o in zip(size, stride, padding, dilation, kernel, output_padding)
    )
    if any(o < 1 for o in out_size):
        raise RuntimeError(f"{name}: the output size {out_size} is too small (input {tuple(input.shape)})")
    pads = tuple((p, p) for p in padding)
    geometry = Geometry(
        lift(kernel, 1), lift(stride, 1), pad_sides(pads), lift(dilation, 1), lift(out_size, 1), lift(size, 1), groups
    )
    x, w = as_4d(input, dims), (weight.unsqueeze(2) if dims == 1 else weight)
    return from_4d(ConvTranspose.apply(x, w, bias, geometry=geometry), input, dims)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1) -> Tensor:
    """input: (N, C, L), weight: (C, O / groups, k), bias: (O,) -> (N, O, L_out)."""
    return _conv_transpose(
        "conv_transpose1d", 1, input, weight, bias, stride, padding, output_padding, groups, dilation
    )


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1) -> Tensor:
    """input: (N, C, H, W), weight: (C, O / groups, kh, kw), bias: (O,) -> (N, O, OH, OW):
    the gradient of conv2d with respect to its input, with ``output_padding`` extra rows/columns."""
    return _conv_transpose(
        "conv_transpose2d", 2, input, weight, bias, stride, padding, output_padding, groups, dilation
    )


def _window_geometry(name, size, kernel_size, dilation, padding, stride) -> Geometry:
    kernel = int_tuple(kernel_size, 2, name, "kernel_size", 1)
    dilation = int_tuple(dilation, 2, name, "dilation", 1)
    padding = int_tuple(padding, 2, name, "padding", 0)
    stride = int_tuple(stride, 2, name, "stride", 1)
    pads = tuple((p, p) for p in padding)
    _check_fits(name, size, pads, kernel, dilation)
    out_size = tuple(out_length(s, k, st, p, p, d) for s, k, st, p, d in zip(size, kernel, stride, padding, dilation))
    return Geometry(kernel, stride, pad_sides(pads), dilation, tuple(size), out_size)


def unfold(input: Tensor, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """input: (N, C, H, W) -> (N, C * kh * kw, L): each sliding window as a column (im2col)."""
    check_dims("unfold", input, 2, "C, H, W")
    geometry = _window_geometry("unfold", tuple(input.shape[-2:]), kernel_size, dilation, padding, stride)
    out = Unfold.apply(input if input.ndim == 4 else input.unsqueeze(0), geometry=geometry)
    return out if input.ndim == 4 else out.squeeze(0)


def fold(input: Tensor, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """input: (N, C * kh * kw, L) -> (N, C, *output_size), overlapping values summed (col2im)."""
    if input.ndim not in (2, 3):
        raise RuntimeError(
            f"fold: expected a 3-D input (N, C * kh * kw, L) or an unbatched 2-D one, got shape {tuple(input.shape)}"
        )
    size = int_tuple(output_size, 2, "fold", "output_size", 1)
    geometry = _window_geometry("fold", size, kernel_size, dilation, padding, stride)
    blocks, count = math.prod(geometry.kernel), math.prod(geometry.out_size)
    if input.shape[-2] % blocks:
        raise RuntimeError(
            f"fold: expected input's dim {input.ndim - 2} to be divisible by the kernel's {blocks} elements "
            f"(kernel_size {geometry.kernel}), got shape {tuple(input.shape)}"
        )
    if input.shape[-1] != count:
        raise RuntimeError(
            f"fold: output_size {size} with kernel_size {geometry.kernel}, dilation {geometry.dilation}, "
            f"padding {geometry.padding[::2]} and stride {geometry.stride} has {count} sliding blocks, "
            f"but the input has {input.shape[-1]} (shape {tuple(input.shape)})"
        )
    out = Fold.apply(input if input.ndim == 3 else input.unsqueeze(0), geometry=geometry)
    return out if input.ndim == 3 else out.squeeze(0)
