"""Indexing: x[index], gather, scatter_add, masked_fill, index_put, and sort/topk (a gather
at the sorting indices, so their gradient is gather's).

Reading at an index and adding into zeros at that index are each other's gradient
(``Index`` and ``IndexScatter``; ``Gather`` and ``ScatterAdd``). Repeated indices
accumulate, because the scatter side adds (``backend.scatter_add``).
"""

from __future__ import annotations

from collections import namedtuple

from minigrad import backend
from minigrad.autograd import Function
from minigrad.backend import array_module
from minigrad.ops._dims import normalize_dim
from minigrad.ops.elementwise import where
from minigrad.ops.nondiff import argsort
from minigrad.tensor import Tensor

ValuesIndices = namedtuple("ValuesIndices", ["values", "indices"])

_BASIC = (int, slice, type(None), type(Ellipsis))


def _is_basic(index) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(p, _BASIC) and not isinstance(p, bool) for p in parts)


class Index(Function):
    view = True

    def forward(self, x, index):
        self.index, self.shape = index, x.shape
        out = x[index]
        if not backend.is_array(out):  # an integer index gives a 0-d view, as in PyTorch
            out = x[(*index, Ellipsis) if isinstance(index, tuple) else (index, Ellipsis)]
        return out

    def backward(self, grad):
        return IndexScatter.apply(grad, index=self.index, shape=self.shape)


class IndexScatter(Function):
    """zeros(shape) with ``values`` added at ``index``: the gradient of indexing."""

    def forward(self, values, index, shape):
        self.index = index
        out = array_module(values).zeros(shape, dtype=values.dtype)
        if _is_basic(index):  # no position repeats: plain assignment
            out[index] = values
        else:
            backend.scatter_add(out, index, values)
        return out

    def backward(self, grad):
        return Index.apply(grad, index=self.index)


class IndexPut(Function):
    """A copy of ``x`` with ``values`` written at ``index`` (x[index] = values, out of place)."""

    def forward(self, x, values, index):
        self.index = index
        out = x.copy()
        out[index] = values
        return out

    def backward(self, grad):
        need_x, need_values = self.needs_input_grad
        grad_x = IndexPut.apply(grad, 0.0, index=self.index) if need_x else None
        grad_values = Index.apply(grad, index=self.index) if need_values else None
        return grad_x, grad_values


class Gather(Function):
    def forward(self, x, dim, index):
        self.dim, self.index, self.shape = dim, index, x.shape
        window = tuple(slice(None) if d == dim else slice(0, s) for d, s in enumerate(index.shape))
        return array_module(x).take_along_axis(x[window], index, axis=dim)

    def backward(self, grad):
        return ScatterAdd.apply(grad, dim=self.dim, index=self.index, shape=self.shape)


class ScatterAdd(Function):
    """zeros(shape) with ``src[i]`` added at position ``index[i]`` along ``dim``: the gradient of gather."""

    def forward(self, src, dim, index, shape):
        self.dim, self.index = dim, index
        xp = array_module(src)
        out = xp.zeros(shape, dtype=src.dtype)
        coords = list(xp.indices(index.shape, sparse=True))
        coords[dim] = index
        backend.scatter_add(out, tuple(coords), src)
        return out

    def backward(self, grad):
        return Gather.apply(grad, dim=self.dim, index=self.index)


# -------------------------------------------------------------------- public functions
def as_index(index, tensor: Tensor):
    """An index with its Tensors replaced by their arrays (integer or bool only)."""
    if isinstance(index, tuple):
        return tuple(_index_part(p, tensor) for p in index)
    return _index_part(index, tensor)


def _index_part(part, tensor):
    if isinstance(part, Tensor):
        if part.dtype.kind not in "iub":
            raise IndexError(f"index: tensors used as indices must be integer or bool, got {part.dtype}")
        if part.device != tensor.device:
            raise RuntimeError(f"index: the index is on {part.device} but the tensor is on {tensor.device}")
        return part.data
    return part


def getitem(input: Tensor, index) -> Tensor:
    return Index.apply(input, index=as_index(index, input))


def index_put(input: Tensor, index, values) -> Tensor:
    """Out of place ``input[index] = values``."""
    return IndexPut.apply(input, values, index=as_index(index, input))


def index_select(input: Tensor, dim: int, index: Tensor) -> Tensor:
    d = normalize_dim(dim, input.ndim, "index_select")
    return getitem(input, (slice(None),) * d + (index,))


def _check_index(name, input, dim, index, bound_by):
    if not isinstance(index, Tensor) or index.dtype.kind not in "iu":
        raise RuntimeError(
            f"{name}: index must be an integer tensor, got {getattr(index, 'dtype', type(index).__name__)}"
        )
    if index.ndim != input.ndim:
        raise RuntimeError(f"{name}: index has {index.ndim} dims but the input has {input.ndim}")
    for d, (i, s) in enumerate(zip(index.shape, bound_by.shape)):
        if d != dim and i > s:
            raise RuntimeError(f"{name}: index shape {tuple(index.shape)} exceeds {tuple(bound_by.shape)} in dim {d}")


def gather(input: Tensor, dim: int, index: Tensor) -> Tensor:
    """``out[i][j] = input[index[i][j]][j]`` for dim 0 (and likewise for other dims)."""
    d = normalize_dim(dim, input.ndim, "gather")
    _check_index("gather", input, d, index, input)
    return Gather.apply(input, dim=d, index=index.data)


def scatter_add(input: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    """``input`` plus ``src`` added along ``dim`` at ``index`` (out of place)."""
    d = normalize_dim(dim, input.ndim, "scatter_add")
    _check_index("scatter_add", input, d, index, src)
    src = src[tuple(slice(0, s) for s in index.shape)]
    return input + ScatterAdd.apply(src, dim=d, index=index.data, shape=input.shape)


def masked_fill(input: Tensor, mask, value) -> Tensor:
    """``value`` where ``mask`` is True, ``input`` elsewhere."""
    out = where(mask, value, input)
    return out if out.dtype == input.dtype else out.to(input.dtype)


def sort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False):
    """(values, indices) sorted along ``dim``. Always stable: ties keep their order (NaN sorts
    as the largest). The gradient goes back to each value's index."""
    d = normalize_dim(dim, input.ndim, "sort")
    indices = argsort(input, d, descending=descending)
    if input.ndim == 0:
        return ValuesIndices(input.clone(), indices)
    return ValuesIndices(Gather.apply(input, dim=d, index=indices.data), indices)


def topk(input: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
    """(values, indices) of the ``k`` largest (``largest=False``: smallest) elements along
    ``dim``, always in sorted order; ties go to the earlier index."""
    if not hasattr(k, "__index__"):
        raise TypeError(f"topk: k must be an int, got {type(k).__name__}")
    k, d = k.__index__(), normalize_dim(dim, input.ndim, "topk")
    size = input.shape[d] if input.ndim else 1
    if not 0 <= k <= size:
        raise RuntimeError(f"topk: selected index k out of range (k={k}, dim {d} has size {size})")
    indices = argsort(input, d, descending=largest)
    if input.ndim == 0:
        return ValuesIndices(input.clone(), indices)
    indices = indices[(slice(None),) * d + (slice(0, k),)]
    return ValuesIndices(Gather.apply(input, dim=d, index=indices.data), indices)
