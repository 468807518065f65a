"""Hypothesis strategies for property-based tests of minigrad ops (needs ``pip install hypothesis``).

Write your own gradient checks the way minigrad's test suite does::

    from hypothesis import given
    import minigrad as mg
    import minigrad.testing as mgt

    @given(mgt.tensors(shape=mgt.shapes(max_dims=3), low=-2, high=2, avoid=(0.0,)))
    def test_abs_gradient(x):          # kinks (abs at 0) are kept away from by construction
        assert mg.gradcheck(mg.abs, (x,))

Every strategy draws float64 data by default: finite differences need it.
"""

from __future__ import annotations

import math

from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minigrad import backend
from minigrad.tensor import Tensor

__all__ = [
    "shapes",
    "floats",
    "arrays",
    "tensors",
    "broadcastable_shapes",
    "valid_dims",
    "dims",
    "index_expressions",
    "permutations_of",
]


def shapes(min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 4):
    """Array shapes, including scalars (0 dims) and, with ``min_side=0``, empty dims."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def floats(low: float = -3.0, high: float = 3.0, avoid=(), margin: float = 0.05):
    """Floats in ``[low, high]`` at least ``margin`` away from each point in ``avoid`` (kinks)."""
    base = st.floats(low, high, allow_nan=False, allow_infinity=False, allow_subnormal=False)
    if not avoid:
        return base
    return base.filter(lambda v: all(abs(v - k) > margin for k in avoid))


def _distinct(shape, low, high, dtype, avoid, margin):
    """Values with no ties: a spread of distinct integers, scaled into [low, high], each at least
    ``margin`` away from the points in ``avoid``."""
    n = math.prod(shape)
    span = max(4 * n, 8 + 4 * len(avoid))
    step = (high - low) / span
    ints = st.integers(0, span)
    if avoid:
        ints = ints.filter(lambda i: all(abs(low + i * step - k) > margin for k in avoid))
    return hnp.arrays(backend.int64, shape, elements=ints, unique=True).map(
        lambda ints: backend.numpy.asarray(low + ints * step, dtype=dtype)
    )


@st.composite
def arrays(
    draw,
    shape=None,
    dtype=backend.float64,
    low: float = -3.0,
    high: float = 3.0,
    avoid=(),
    margin: float = 0.05,
    distinct: bool = False,
    contiguous: bool | None = None,
):
    """NumPy arrays of ``shape`` (a tuple or a strategy). ``distinct=True`` rules out ties
    (for max, sort); ``contiguous=False`` forces, and ``None`` sometimes draws, a strided
    (non-contiguous) layout."""
    if shape is None:
        shape = shapes()
    if not isinstance(shape, tuple):
        shape = draw(shape)
    dtype = backend.numpy.dtype(dtype)
    if dtype.kind == "b":
        array = draw(hnp.arrays(dtype, shape))
    elif dtype.kind in "iu":
        array = draw(hnp.arrays(dtype, shape, elements=st.integers(int(low), int(high))))
    elif distinct:
        array = draw(_distinct(shape, low, high, dtype, avoid, margin))
    else:
        array = draw(hnp.arrays(dtype, shape, elements=floats(low, high, avoid, margin)))
    strided = (not contiguous) if contiguous is not None else draw(st.booleans())
    if strided and array.ndim >= 1 and array.size > 1:
        # The same values, laid out every other element in a bigger buffer.
        buffer = backend.numpy.zeros(array.shape[:-1] + (2 * array.shape[-1],), dtype)
        buffer[..., ::2] = array
        array = buffer[..., ::2]
    return array


@st.composite
def tensors(
    draw,
    shape=None,
    dtype=backend.float64,
    requires_grad: bool = True,
    low: float = -3.0,
    high: float = 3.0,
    avoid=(),
    margin: float = 0.05,
    distinct: bool = False,
    contiguous: bool | None = None,
    device: str | None = None,
):
    """Tensors (float64 and requiring grad by default) with the data of ``arrays``."""
    array = draw(arrays(shape, dtype, low, high, avoid, margin, distinct, contiguous))
    device = backend.check_device(device or backend.get_default_device())
    t = Tensor._make(backend.to_device(array, device))
    t.requires_grad = requires_grad and backend.numpy.dtype(dtype).kind == "f"
    return t


def broadcastable_shapes(num_shapes: int = 2, min_dims: int = 0, max_dims: int = 3, max_side: int = 4):
    """Tuples of shapes that broadcast together (``(3, 1)`` with ``(4,)``, and so on)."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=num_shapes, min_dims=min_dims, max_dims=max_dims, max_side=max_side
    ).map(lambda result: result.input_shapes)


def valid_dims(ndim: int, allow_none: bool = True, allow_tuple: bool = True, negative: bool = True):
    """A ``dim`` argument valid for a reduction over ``ndim`` dims: None, an int (maybe negative)
    or a tuple of them, the empty tuple included (every dim, as None, in PyTorch's reductions)."""
    if ndim == 0:
        return st.sampled_from([None] if allow_none else [0])
    low = -ndim if negative else 0
    options = [st.integers(low, ndim - 1)]
    if allow_none:
        options.append(st.none())
    if allow_tuple:
        options.append(st.lists(st.integers(low, ndim - 1), max_size=ndim, unique_by=lambda d: d % ndim).map(tuple))
    return st.one_of(options)


def dims(ndim: int):
    """A single dim in ``[-ndim, ndim)``."""
    return st.integers(-max(ndim, 1), max(ndim, 1) - 1)


def permutations_of(ndim: int):
    return st.permutations(range(ndim)).map(tuple)


@st.composite
def index_expressions(draw, shape: tuple):
    """An index for an array of ``shape``: basic (ints, slices, None, ...), integer arrays
    (which may repeat positions, so gradients must accumulate) or a boolean mask."""
    np = backend.numpy
    kind = draw(st.sampled_from(["basic", "integer", "mask"] if shape else ["basic"]))
    if kind == "basic":
        return draw(hnp.basic_indices(shape, min_dims=0, allow_newaxis=True, allow_ellipsis=True))
    if kind == "mask":
        return draw(hnp.arrays(np.bool_, shape[: draw(st.integers(1, len(shape)))]))
    index = draw(hnp.integer_array_indices(shape, result_shape=hnp.array_shapes(min_dims=1, max_dims=2, max_side=4)))
    return tuple(i.astype(np.int64) for i in index)
