"""Shape ops: reshape, permute, expand, repeat/tile, cat/split, flip/roll, triangles.

Most return views of their input (no copy), so they share its version counter: an
in-place change through one is seen by the other.
"""

from __future__ import annotations

import math

from minigrad.autograd import Function
from minigrad.backend import array_module
from minigrad.ops._dims import normalize_dim, normalize_dims
from minigrad.tensor import Tensor


class Reshape(Function):
    view = True

    def forward(self, x, shape):
        self.shape = x.shape
        return x.reshape(shape)

    def backward(self, grad):
        return grad.reshape(self.shape)


class Permute(Function):
    view = True

    def forward(self, x, dims):
        self.dims = dims
        return x.transpose(dims)

    def backward(self, grad):
        inverse = sorted(range(len(self.dims)), key=self.dims.__getitem__)
        return grad.permute(inverse)


class Expand(Function):
    view = True

    def forward(self, x, shape):
        self.shape = x.shape
        return array_module(x).broadcast_to(x, shape)

    def backward(self, grad):
        return grad.sum_to(self.shape)


class Repeat(Function):
    def forward(self, x, repeats):
        self.shape, self.repeats = x.shape, repeats
        return array_module(x).tile(x, repeats)

    def backward(self, grad):
        padded = (1,) * (len(self.repeats) - len(self.shape)) + tuple(self.shape)
        interleaved = [n for pair in zip(self.repeats, padded) for n in pair]
        summed = grad.reshape(interleaved).sum(tuple(range(0, 2 * len(padded), 2)))
        return summed.reshape(self.shape)


class Contiguous(Function):
    view = True

    def forward(self, x):
        return array_module(x).ascontiguousarray(x)

    def backward(self, grad):
        return grad


class Cat(Function):
    def forward(self, *arrays, dim):
        self.dim, self.sizes = dim, [a.shape[dim] for a in arrays]
        return array_module(arrays[0]).concatenate(arrays, axis=dim)

    def backward(self, grad):
        pieces = split(grad, self.sizes, self.dim)
        return pieces if len(pieces) > 1 else pieces[0]


class Split(Function):
    view = True

    def forward(self, x, sizes, dim):
        self.dim, self.shape, self.dtype = dim, x.shape, x.dtype
        self.sizes = sizes
        offsets = [sum(sizes[: i + 1]) for i in range(len(sizes) - 1)]
        return tuple(array_module(x).split(x, offsets, axis=dim))

    def backward(self, *grads):
        pieces = []
        for g, size in zip(grads, self.sizes):
            if g is None:  # an unused piece: its gradient is zero
                shape = list(self.shape)
                shape[self.dim] = size
                g = _zeros_like_grad(grads, shape)
            pieces.append(g)
        return cat(pieces, self.dim)


def _zeros_like_grad(grads, shape):
    present = next(g for g in grads if g is not None)
    return Tensor._make(array_module(present.data).zeros(shape, dtype=present.dtype))


class Flip(Function):
    """A copy, as PyTorch's flip (NumPy's flip is a view)."""

    def forward(self, x, dims):
        self.dims = dims
        return array_module(x).flip(x, axis=dims).copy()

    def backward(self, grad):
        return grad.flip(self.dims)


class Roll(Function):
    """Shift the elements by ``shifts[i]`` along ``dims[i]``, wrapping around the end."""

    def forward(self, x, shifts, dims):
        self.shifts, self.dims = shifts, dims
        return array_module(x).roll(x, shifts, axis=dims)

    def backward(self, grad):
        return Roll.apply(grad, shifts=tuple(-s for s in self.shifts), dims=self.dims)


class _Triangle(Function):
    def forward(self, x, diagonal):
        self.diagonal = diagonal
        return getattr(array_module(x), self.array_fn)(x, diagonal)

    def backward(self, grad):
        return type(self).apply(grad, diagonal=self.diagonal)


class Tril(_Triangle):
    array_fn = "tril"


class Triu(_Triangle):
    array_fn = "triu"


# -------------------------------------------------------------------- public functions
def _sizes(args) -> tuple:
    """Accept ``f(2, 3)`` and ``f((2, 3))``."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = args[0]
    return tuple(int(a) for a in args)


def reshape(input: Tensor, *shape) -> Tensor:
    shape = _sizes(shape)
    if shape == input.shape:
        return input
    return Reshape.apply(input, shape=shape)


def view(input: Tensor, *shape) -> Tensor:
    """Like reshape, but never copies: fails when the memory layout does not allow it."""
    shape = _sizes(shape)
    try:
        trial = input.data.reshape(shape)
    except ValueError as error:
        raise RuntimeError(f"view: cannot view shape {tuple(input.shape)} as {shape}: {error}") from None
    if trial.size and not array_module(trial).may_share_memory(trial, input.data):
        raise RuntimeError(
            f"view: shape {tuple(input.shape)} cannot be viewed as {shape} without a copy "
            "(the tensor is not contiguous, e.g. after transpose); use .reshape()"
        )
    return Reshape.apply(input, shape=shape)


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    if input.ndim == 0:
        return input.reshape(1)
    start = normalize_dim(start_dim, input.ndim, "flatten")
    end = normalize_dim(end_dim, input.ndim, "flatten")
    if start > end:
        raise RuntimeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    shape = input.shape[:start] + (math.prod(input.shape[start : end + 1]),) + input.shape[end + 1 :]
    return reshape(input, shape)


def permute(input: Tensor, *dims) -> Tensor:
    dims = _sizes(dims)
    if len(dims) != input.ndim:
        raise RuntimeError(f"permute: got {len(dims)} dims for a tensor of {input.ndim} dims")
    dims = tuple(normalize_dim(d, input.ndim, "permute") for d in dims)
    if sorted(dims) != list(range(input.ndim)):
        raise RuntimeError(f"permute: {dims} is not a permutation of the tensor's dims")
    return Permute.apply(input, dims=dims)


def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    if input.ndim < 2 and dim0 in (0, -1) and dim1 in (0, -1):
        return input
    dims = list(range(input.ndim))
    a, b = normalize_dim(dim0, input.ndim, "transpose"), normalize_dim(dim1, input.ndim, "transpose")
    dims[a], dims[b] = dims[b], dims[a]
    return Permute.apply(input, dims=tuple(dims))


def squeeze(input: Tensor, dim=None) -> Tensor:
    """Drop size-1 dims (only those in ``dim`` when it is given; others are left alone)."""
    dims = normalize_dims(dim, input.ndim, "squeeze", reduction=False)
    shape = tuple(s for i, s in enumerate(input.shape) if not (i in dims and s == 1))
    return reshape(input, shape)


def unsqueeze(input: Tensor, dim: int) -> Tensor:
    d = normalize_dim(dim, input.ndim, "unsqueeze", extra=1)
    return Reshape.apply(input, shape=input.shape[:d] + (1,) + input.shape[d:])


def expand(input: Tensor, *sizes) -> Tensor:
    """Broadcast to ``sizes`` without copying (-1 keeps a dim's size)."""
    sizes = _sizes(sizes)
    lead = len(sizes) - input.ndim
    if lead < 0:
        raise RuntimeError(f"expand: cannot expand shape {tuple(input.shape)} to {sizes} (fewer dims)")
    shape = []
    for i, size in enumerate(sizes):
        own = input.shape[i - lead] if i >= lead else None
        if size == -1:
            if own is None:
                raise RuntimeError(f"expand: -1 is not allowed for the new leading dim {i}")
            size = own
        if own not in (None, 1, size):
            raise RuntimeError(
                f"expand: cannot expand shape {tuple(input.shape)} to {sizes} (dim {i}: {own} to {size})"
            )
        shape.append(size)
    shape = tuple(shape)
    if shape == input.shape:
        return input
    return Expand.apply(input, shape=shape)


def expand_as(input: Tensor, other: Tensor) -> Tensor:
    return expand(input, other.shape)


def repeat(input: Tensor, *repeats) -> Tensor:
    """Tile the tensor ``repeats[i]`` times along dim ``i`` (PyTorch's repeat)."""
    repeats = _sizes(repeats)
    if len(repeats) < input.ndim:
        raise RuntimeError(f"repeat: got {len(repeats)} repeats for a tensor of {input.ndim} dims")
    return Repeat.apply(input, repeats=repeats)


def tile(input: Tensor, *dims) -> Tensor:
    """``repeat``, but a ``dims`` shorter than ``input.ndim`` is padded with leading 1s."""
    dims = _sizes(dims)
    if any(n < 0 for n in dims):
        raise RuntimeError(f"tile: dims must be non-negative, got {dims}")
    return repeat(input, (1,) * (input.ndim - len(dims)) + dims)


def contiguous(input: Tensor) -> Tensor:
    if input.data.flags.c_contiguous:
        return input
    return Contiguous.apply(input)


def cat(tensors, dim: int = 0) -> Tensor:
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("cat: expected a non-empty list of tensors")
    first = tensors[0]
    d = normalize_dim(dim, first.ndim, "cat")
    for i, t in enumerate(tensors[1:], 1):
        if t.ndim != first.ndim or any(a != b for k, (a, b) in enumerate(zip(t.shape, first.shape)) if k != d):
            raise RuntimeError(
                f"cat: tensor {i} has shape {tuple(t.shape)} but tensor 0 has {tuple(first.shape)}; "
                f"shapes must match except in dim {d}"
            )
    return Cat.apply(*tensors, dim=d)


concat = cat


def stack(tensors, dim: int = 0) -> Tensor:
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack: expected a non-empty list of tensors")
    for i, t in enumerate(tensors[1:], 1):
        if t.shape != tensors[0].shape:
            raise RuntimeError(
                f"stack: tensor {i} has shape {tuple(t.shape)} but tensor 0 has {tuple(tensors[0].shape)}"
            )
    d = normalize_dim(dim, tensors[0].ndim, "stack", extra=1)
    return cat([t.unsqueeze(d) for t in tensors], d)


def split(input: Tensor, split_size_or_sections, dim: int = 0) -> tuple:
    """Pieces of ``split_size`` along ``dim`` (the last may be smaller), or of the given sizes."""
    d = normalize_dim(dim, input.ndim, "split")
    n = input.shape[d]
    if isinstance(split_size_or_sections, int):
        size = split_size_or_sections
        if size <= 0:
            raise ValueError(f"split: split_size must be positive, got {size}")
        sizes = [min(size, n - start) for start in range(0, n, size)] or [0]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != n:
            raise RuntimeError(f"split: sizes {sizes} add up to {sum(sizes)}, but dim {d} has size {n}")
    out = Split.apply(input, sizes=sizes, dim=d)
    return out if isinstance(out, tuple) else (out,)


def chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple:
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    n = input.shape[normalize_dim(dim, input.ndim, "chunk")]
    return split(input, max(-(-n // chunks), 1), dim)


def flip(input: Tensor, dims) -> Tensor:
    dims = normalize_dims(dims, input.ndim, "flip", reduction=False)
    return Flip.apply(input, dims=dims)


def roll(input: Tensor, shifts, dims=None) -> Tensor:
    """Shift by ``shifts`` along ``dims`` (ints or equal-length tuples), wrapping around;
    with ``dims=None``, along the flattened tensor, then reshaped back."""
    shifts = tuple(shifts) if isinstance(shifts, (tuple, list)) else (shifts,)
    if not all(hasattr(s, "__index__") for s in shifts):
        raise TypeError(f"roll: shifts must be ints, got {shifts}")
    shifts = tuple(s.__index__() for s in shifts)
    if dims is None:
        if len(shifts) != 1:
            raise RuntimeError(f"roll: shifts and dimensions must align. shifts: {len(shifts)}, dims: 0")
        return Roll.apply(input.reshape(-1), shifts=shifts, dims=(0,)).reshape(input.shape)
    dims = tuple(dims) if isinstance(dims, (tuple, list)) else (dims,)
    if len(shifts) != len(dims):
        raise RuntimeError(f"roll: shifts and dimensions must align. shifts: {len(shifts)}, dims: {len(dims)}")
    dims = tuple(normalize_dim(d, input.ndim, "roll") for d in dims)
    return Roll.apply(input, shifts=shifts, dims=dims)


def _need_matrix(input, name):
    if input.ndim < 2:
        raise RuntimeError(f"{name}: expected a tensor of at least 2 dims, got shape {tuple(input.shape)}")


def tril(input: Tensor, diagonal: int = 0) -> Tensor:
    _need_matrix(input, "tril")
    return Tril.apply(input, diagonal=diagonal)


def triu(input: Tensor, diagonal: int = 0) -> Tensor:
    _need_matrix(input, "triu")
    return Triu.apply(input, diagonal=diagonal)


def movedim(input: Tensor, source: int, destination: int) -> Tensor:
    dims = list(range(input.ndim))
    src = normalize_dim(source, input.ndim, "movedim")
    dims.insert(normalize_dim(destination, input.ndim, "movedim"), dims.pop(src))
    return permute(input, dims)


def unbind(input: Tensor, dim: int = 0) -> tuple:
    d = normalize_dim(dim, input.ndim, "unbind")
    return tuple(piece.squeeze(d) for piece in split(input, 1, d))
