"""Checking and normalising ``dim`` arguments, shared by the reduce and shape ops."""

from __future__ import annotations


def normalize_dim(dim, ndim: int, op: str, extra: int = 0) -> int:
    """A dim in ``[-ndim-extra, ndim+extra)`` as a non-negative int (``extra`` is 1 for
    ops such as unsqueeze that may name the position past the last dim)."""
    size = max(ndim + extra, 1)
    if not isinstance(dim, int) or isinstance(dim, bool):
        if hasattr(dim, "__index__"):
            dim = dim.__index__()
        else:
            raise TypeError(f"{op}: dim must be an int, got {type(dim).__name__}")
    if not -size <= dim < size:
        raise IndexError(f"{op}: dim {dim} is out of range for a tensor of {ndim} dims (expected {-size}..{size - 1})")
    return dim % size


def normalize_dims(dim, ndim: int, op: str, reduction: bool = True) -> tuple:
    """``None`` (every dim), an int or a sequence of ints, as a sorted tuple of dims. An empty
    sequence means every dim to a reduction and none to a shape op, as in PyTorch."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if not isinstance(dim, (tuple, list)) else tuple(dim)
    if not dims:
        return tuple(range(ndim)) if reduction else ()
    if ndim == 0:  # PyTorch lets a 0-d tensor be reduced over dim 0 or -1
        for d in dims:
            normalize_dim(d, 0, op)
        return ()
    result = tuple(sorted(normalize_dim(d, ndim, op) for d in dims))
    if len(set(result)) != len(result):
        raise RuntimeError(f"{op}: dim {dim} names a dimension twice")
    return result


def kept_shape(shape: tuple, dims: tuple) -> tuple:
    """The shape of a reduction over ``dims`` with ``keepdim=True``."""
    return tuple(1 if i in dims else s for i, s in enumerate(shape))
