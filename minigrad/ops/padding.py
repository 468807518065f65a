"""Padding: ``pad(input, pad, mode, value)`` with PyTorch's pad order (the last dim first).

Constant padding writes the input into a filled array; its gradient crops, which is constant
padding by the negated amounts, so one op is its own gradient (and negative padding crops).
The other modes read, along each padded dim, input position ``index[k]`` into output
position ``k`` (``BorderPad``): reflected, clamped or wrapped around past the edges. Its
adjoint (``BorderPadGrad``) copies the interior back in one block and adds only the few
border planes where they came from.
"""

from __future__ import annotations

from minigrad import backend
from minigrad.autograd import Function
from minigrad.backend import array_module
from minigrad.tensor import Tensor


class ConstantPad(Function):
    """x -> x padded by ``sides`` ((before, after) per dim, for the trailing dims) with ``value``."""

    def forward(self, x, sides, value):
        self.sides = sides
        shape, source, target = list(x.shape), [slice(None)] * x.ndim, [slice(None)] * x.ndim
        for d, (before, after) in zip(range(x.ndim - len(sides), x.ndim), sides):
            size = x.shape[d]
            shape[d] = size + before + after
            source[d] = slice(max(-before, 0), size - max(-after, 0))
            target[d] = slice(max(before, 0), shape[d] - max(after, 0))
        out = array_module(x).full(shape, value, dtype=x.dtype)
        out[tuple(target)] = x[tuple(source)]
        return out

    def backward(self, grad):
        return ConstantPad.apply(grad, sides=tuple((-before, -after) for before, after in self.sides), value=0)


class BorderPad(Function):
    """x -> x.take(index, axis=dim): output position k along ``dim`` reads input position ``index[k]``,
    which is ``k - before`` in the interior ``[start, stop)``."""

    def forward(self, x, dim, index, interior):
        self.dim, self.index, self.interior, self.size = dim, index, interior, x.shape[dim]
        return array_module(x).take(x, index, axis=dim)

    def backward(self, grad):
        return BorderPadGrad.apply(grad, dim=self.dim, index=self.index, interior=self.interior, size=self.size)


class BorderPadGrad(Function):
    """g -> (.., size, ..) along ``dim``: each position of g added at input position ``index[k]``."""

    def forward(self, g, dim, index, interior, size):
        self.dim, self.index, self.interior = dim, index, interior
        xp = array_module(g)
        shape = list(g.shape)
        shape[dim] = size
        out = xp.zeros(shape, dtype=g.dtype)
        start, stop = interior
        lead = (slice(None),) * dim
        if stop > start:
            first = int(index[start])  # index is on g's device: a 0-d array there
            out[lead + (slice(first, first + stop - start),)] = g[lead + (slice(start, stop),)]
        border = xp.concatenate([xp.arange(start), xp.arange(stop, len(index))])
        if len(border):  # a few planes, possibly onto one position (replicate): accumulate
            backend.scatter_add(out, lead + (index[border],), xp.take(g, border, axis=dim))
        return out

    def backward(self, grad):
        return BorderPad.apply(grad, dim=self.dim, index=self.index, interior=self.interior)


def border_index(size: int, before: int, after: int, mode: str, xp):
    """Where each output position along a dim reads from, and the interior [start, stop) that reads k - before."""
    position = xp.arange(-before, size + after)
    if mode == "reflect":
        position = xp.abs(position)
        position = xp.where(position >= size, 2 * (size - 1) - position, position)
    elif mode == "replicate":
        position = xp.clip(position, 0, size - 1)
    else:  # circular
        position = position % size
    return position, (max(before, 0), size + before - max(-after, 0))


_MODES = ("constant", "reflect", "replicate", "circular")


def pad(input: Tensor, pad, mode: str = "constant", value=None) -> Tensor:
    """Pad the trailing dims of ``input``: ``pad = (left, right, top, bottom, ...)``, the last dim first.

    "constant" fills with ``value`` (0 when None) and crops where a pad is negative; "reflect" mirrors
    without repeating the edge, "replicate" repeats it, "circular" wraps around."""
    if mode not in _MODES:
        raise ValueError(f"pad: mode must be one of {', '.join(_MODES)}, got {mode!r}")
    pad = tuple(pad)
    if len(pad) % 2 or not all(isinstance(p, int) and not isinstance(p, bool) for p in pad):
        raise ValueError(f"pad: expected an even number of ints (before, after per dim), got {pad}")
    if len(pad) // 2 > input.ndim:
        raise ValueError(
            f"pad: {pad} pads {len(pad) // 2} dims but the input has only {input.ndim} (shape {tuple(input.shape)})"
        )
    # PyTorch's order is last dim first: reverse it into (before, after) per dim, in dim order
    sides = tuple((pad[2 * i], pad[2 * i + 1]) for i in reversed(range(len(pad) // 2)))
    dims = range(input.ndim - len(sides), input.ndim)
    if mode == "constant":
        for d, (before, after) in zip(dims, sides):
            if input.shape[d] + before + after < 0:
                raise RuntimeError(
                    f"pad: padding {(before, after)} makes dim {d} (size {input.shape[d]}) negative in size"
                )
        return ConstantPad.apply(input, sides=sides, value=0 if value is None else value)
    if value is not None and value != 0:
        raise ValueError(f"pad: mode {mode!r} takes no value (got {value})")
    if len(sides) > 3 or input.ndim not in (len(sides) + 1, len(sides) + 2):
        raise ValueError(
            f"pad: mode {mode!r} pads the last 1, 2 or 3 dims of an input with 1 or 2 more (batch, channels): "
            f"got pad {pad} for an input of shape {tuple(input.shape)}"
        )
    xp = array_module(input.data)
    out = input
    for d, (before, after) in zip(dims, sides):
        size = input.shape[d]
        limit = size - 1 if mode == "reflect" else size
        if max(before, after) > limit or size + before + after < 1:
            raise RuntimeError(
                f"pad: mode {mode!r} needs padding at most {limit} for dim {d} of size {size}, "
                f"got {(before, after)} (input shape {tuple(input.shape)})"
            )
        if before or after:
            index, interior = border_index(size, before, after, mode, xp)
            out = BorderPad.apply(out, dim=d, index=index, interior=interior)
    return out
