"""Sliding windows over the last two dims, shared by convolution, unfold/fold and pooling.

A ``Geometry`` says where the windows are: output position ``(oh, ow)`` and kernel offset
``(i, j)`` read the padded input at ``(oh * sh + i * dh, ow * sw + j * dw)``. Reading every
window is a strided view (``windows``, no copy); the adjoint, adding each window back where
it came from (``col2im``), is a loop over the ``kh * kw`` kernel offsets, each one strided
add of a whole ``(.., OH, OW)`` plane.
"""

from __future__ import annotations

from typing import NamedTuple

from minigrad import backend
from minigrad.backend import array_module


class Geometry(NamedTuple):
    kernel: tuple  # (kh, kw)
    stride: tuple  # (sh, sw)
    padding: tuple  # (top, bottom, left, right): "same" and ceil_mode may pad unevenly
    dilation: tuple  # (dh, dw)
    in_size: tuple  # (H, W) of the unpadded input
    out_size: tuple  # (OH, OW)
    groups: int = 1

    @property
    def padded_size(self) -> tuple:
        top, bottom, left, right = self.padding
        return self.in_size[0] + top + bottom, self.in_size[1] + left + right

    def offsets(self):
        """Each kernel offset ``(i, j)`` with the (rows, columns) slices of the padded input it reads."""
        (kh, kw), (sh, sw), (dh, dw), (oh, ow) = self.kernel, self.stride, self.dilation, self.out_size
        for i in range(kh):
            for j in range(kw):
                yield i, j, slice(i * dh, i * dh + sh * (oh - 1) + 1, sh), slice(j * dw, j * dw + sw * (ow - 1) + 1, sw)


def out_length(size: int, kernel: int, stride: int, before: int, after: int, dilation: int, ceil_mode=False) -> int:
    """Output positions along one dim padded by ``before`` and ``after``: PyTorch's rule."""
    span = size + before + after - dilation * (kernel - 1) - 1
    if span < 0:
        return 0
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    # the last window must start inside the input or the leading padding
    if (out - 1) * stride >= size + before:
        out -= 1
    return out


def pad(x, geometry: Geometry, value: float = 0.0):
    """x: (..., H, W) -> (..., Hp, Wp), filled with ``value`` around (x itself when unpadded)."""
    top, bottom, left, right = geometry.padding
    if not (top or bottom or left or right):
        return x
    height, width = x.shape[-2:]
    out = array_module(x).full(x.shape[:-2] + geometry.padded_size, value, dtype=x.dtype)
    backend.assign(out[..., top : top + height, left : left + width], x)
    return out


def windows(padded, geometry: Geometry):
    """padded: (A, B, Hp, Wp) -> a read-only view (A, B, kh, kw, OH, OW) of every window."""
    a, b, row, col = padded.strides
    (sh, sw), (dh, dw) = geometry.stride, geometry.dilation
    shape = padded.shape[:2] + tuple(geometry.kernel) + tuple(geometry.out_size)
    return backend.as_strided(padded, shape, (a, b, row * dh, col * dw, row * sh, col * sw))


def col2im(piece, lead: tuple, geometry: Geometry, like):
    """Add ``piece(i, j, part)``, the (*lead, OH, OW) plane of kernel offset ``(i, j)`` cut to the
    slice ``part`` of its first dim, at every kernel offset; crop the padding. The threads each
    take a part (``backend.parallel``).

    Returns (*lead, H, W), a view into the padded buffer when there is padding."""
    xp = array_module(like)
    out = xp.zeros(lead + geometry.padded_size, dtype=like.dtype)

    def add(start, stop):
        part = slice(start, stop)
        for i, j, rows, columns in geometry.offsets():
            out[part, ..., rows, columns] += piece(i, j, part)

    backend.parallel(add, lead[0], out, cache_blocks=True)
    top, _, left, _ = geometry.padding
    height, width = geometry.in_size
    return out[..., top : top + height, left : left + width]


# ------------------------------------------------------------------ argument checks
def int_tuple(value, n: int, name: str, what: str, minimum: int) -> tuple:
    """An int or a sequence of ``n`` ints, each at least ``minimum``, as a tuple of ``n``."""
    values = (value,) * n if isinstance(value, int) else value
    if (
        not isinstance(values, (tuple, list))
        or len(values) != n
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in values)
    ):
        raise ValueError(f"{name}: {what} must be an int or a tuple of {n} ints, got {value!r}")
    if any(v < minimum for v in values):
        rule = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{name}: {what} must be {rule}, got {value!r}")
    return tuple(values)


def lift(values: tuple, fill: int) -> tuple:
    """A 1-D argument as the 2-D one it runs as (over a height of 1)."""
    return (fill,) * (2 - len(values)) + values


def pad_sides(pairs: tuple) -> tuple:
    """((before, after) per dim) -> (top, bottom, left, right) over the 2 dims ops run on."""
    return tuple(p for pair in ((0, 0),) * (2 - len(pairs)) + pairs for p in pair)


def check_dims(name: str, input, dims: int, layout: str) -> None:
    if input.ndim not in (dims + 1, dims + 2):
        raise RuntimeError(
            f"{name}: expected a {dims + 2}-D input (N, {layout}) or an unbatched {dims + 1}-D one ({layout}), "
            f"got shape {tuple(input.shape)}"
        )


def as_4d(input, dims: int):
    """Input as (N, C, H, W): a batch of one for unbatched input, a height of 1 for 1-D."""
    if input.ndim == dims + 1:
        input = input.unsqueeze(0)
    return input.unsqueeze(2) if dims == 1 else input


def from_4d(out, input, dims: int):
    if dims == 1:
        out = out.squeeze(2)
    return out.squeeze(0) if input.ndim == dims + 1 else out
