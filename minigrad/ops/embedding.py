"""Embedding lookup, bags of embeddings, and one-hot encoding.

Looking rows up and adding gradients into zeros at those rows are each other's gradient
(``Embedding`` and ``IndexScatter``); repeated indices accumulate. A bag (``embedding_bag``)
is a lookup followed by a sum over each bag's rows, built from those ops.
"""

from __future__ import annotations

from minigrad import backend
from minigrad.autograd import Function, no_grad
from minigrad.backend import array_module
from minigrad.ops.index import IndexScatter, ScatterAdd
from minigrad.tensor import Tensor


class Embedding(Function):
    """``weight[indices]``: weight ``(num_embeddings, embedding_dim)``, indices ``(*)`` -> ``(*, embedding_dim)``."""

    def forward(self, weight, indices, padding_idx, scale_grad_by_freq):
        self.indices, self.shape = indices, weight.shape
        self.row_scale = None  # a constant per looked-up row: 0 for padding, 1 / count for scale_grad_by_freq
        if padding_idx is not None or scale_grad_by_freq:
            xp = array_module(weight)
            scale = xp.ones(indices.shape, dtype=weight.dtype)
            if scale_grad_by_freq:
                scale /= xp.bincount(indices.ravel(), minlength=weight.shape[0])[indices]
            if padding_idx is not None:
                scale[indices == padding_idx] = 0
            self.row_scale = scale[..., None]
        return array_module(weight).take(weight, indices, axis=0)

    def backward(self, grad):
        if self.row_scale is not None:
            grad = grad * self.row_scale
        return IndexScatter.apply(grad, index=self.indices, shape=self.shape), None


def _check_indices(name: str, input, size: int) -> None:
    if not isinstance(input, Tensor) or input.dtype.kind not in "iu":
        raise RuntimeError(
            f"{name}: expected an integer (Long) index tensor, got {getattr(input, 'dtype', type(input).__name__)}"
        )
    if input.data.size and (int(input.data.min()) < 0 or int(input.data.max()) >= size):
        raise IndexError(
            f"{name}: index out of range: indices span [{int(input.data.min())}, {int(input.data.max())}] "
            f"but there are {size} rows"
        )


def embedding(
    input: Tensor,
    weight: Tensor,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    """Rows of ``weight`` ``(num_embeddings, embedding_dim)`` at ``input`` ``(*)``: ``(*, embedding_dim)``.

    The ``padding_idx`` row gets no gradient. ``max_norm`` rescales, in place, the looked-up
    rows whose ``norm_type``-norm exceeds it. ``sparse=True`` (sparse gradients) is not supported.
    """
    if sparse:
        raise NotImplementedError("embedding: sparse gradients are not supported; use sparse=False")
    if weight.ndim != 2:
        raise RuntimeError(f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got {tuple(weight.shape)}")
    n = weight.shape[0]
    _check_indices("embedding", input, n)
    if padding_idx is not None:
        if not -n <= padding_idx < n:
            raise ValueError(f"embedding: padding_idx {padding_idx} must be within [{-n}, {n - 1}]")
        padding_idx %= n
    if max_norm is not None:
        _renorm_rows(weight, input, max_norm, norm_type)
    return Embedding.apply(weight, input.data, padding_idx=padding_idx, scale_grad_by_freq=scale_grad_by_freq)


def embedding_bag(
    input: Tensor,
    weight: Tensor,
    offsets: Tensor | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    mode: str = "mean",
    sparse: bool = False,
    per_sample_weights: Tensor | None = None,
    include_last_offset: bool = False,
    padding_idx: int | None = None,
) -> Tensor:
    """The sum or mean of each bag's rows of ``weight`` ``(num_embeddings, embedding_dim)``: ``(B, embedding_dim)``.

    Bags are the rows of a 2-D ``input`` ``(B, L)`` (``offsets`` None), or the runs of a 1-D ``input``
    ``(N,)`` that start at ``offsets`` ``(B,)`` (``(B + 1,)`` with ``include_last_offset``, whose last
    entry is then N). Entries equal to ``padding_idx`` are left out of the bag (and of a mean's count);
    an empty bag gives zeros. ``per_sample_weights`` (shaped like ``input``) scales each row first,
    with ``mode="sum"`` only. ``mode="max"`` is not supported.
    """
    if mode not in ("sum", "mean"):
        raise NotImplementedError(f"embedding_bag: mode must be 'sum' or 'mean', got {mode!r}")
    if per_sample_weights is not None:
        if mode != "sum":
            raise NotImplementedError(f"embedding_bag: per_sample_weights needs mode='sum', got mode={mode!r}")
        if tuple(per_sample_weights.shape) != tuple(input.shape):
            raise ValueError(
                f"embedding_bag: per_sample_weights has shape {tuple(per_sample_weights.shape)}, "
                f"expected the input's {tuple(input.shape)}"
            )
    rows = embedding(input, weight, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse)  # (*input, D)
    xp = array_module(weight.data)
    keep = xp.ones(input.shape, dtype=bool) if padding_idx is None else input.data != padding_idx % weight.shape[0]
    if padding_idx is not None:
        rows = rows * Tensor._make(keep.astype(weight.dtype)[..., None])
    if per_sample_weights is not None:
        rows = rows * per_sample_weights.unsqueeze(-1)
    if input.ndim == 2:
        if offsets is not None:
            raise ValueError("embedding_bag: offsets must be None when input is 2-D (B, L): each row is a bag")
        bags, count = rows.sum(1), keep.sum(1)
    elif input.ndim == 1:
        bag_of = _bag_of_each_entry(offsets, len(input), include_last_offset, xp)
        n_bags = len(offsets) - include_last_offset
        index = xp.broadcast_to(bag_of[:, None], rows.shape)
        bags = ScatterAdd.apply(rows, dim=0, index=index, shape=(n_bags, weight.shape[1]))
        count = xp.bincount(bag_of, weights=keep, minlength=n_bags)
    else:
        raise ValueError(f"embedding_bag: input must be 1-D (N,) with offsets or 2-D (B, L), got {tuple(input.shape)}")
    if mode == "mean":
        bags = bags / Tensor._make(xp.maximum(count, 1).astype(weight.dtype)[:, None])
    return bags


def _bag_of_each_entry(offsets, n: int, include_last_offset: bool, xp):
    """The bag index of each of the ``n`` entries of a 1-D input: ``(n,)``."""
    if offsets is None or offsets.ndim != 1 or offsets.dtype.kind not in "iu":
        shape = None if offsets is None else (tuple(offsets.shape), offsets.dtype)
        raise ValueError(f"embedding_bag: a 1-D input needs 1-D integer offsets, got {shape}")
    starts = offsets.data
    if include_last_offset:
        if len(starts) == 0 or int(starts[-1]) != n:
            raise ValueError(
                f"embedding_bag: with include_last_offset the last offset must be {n} (the input's length)"
            )
        starts = starts[:-1]
    if len(starts) == 0 and n:
        raise ValueError(f"embedding_bag: offsets hold no bag but the input has {n} entries")
    if len(starts) and (int(starts[0]) != 0 or bool((xp.diff(starts) < 0).any()) or int(starts[-1]) > n):
        raise ValueError(f"embedding_bag: offsets must start at 0 and rise to at most {n}, got {starts.tolist()}")
    sizes = xp.diff(xp.append(starts, n))
    return xp.repeat(xp.arange(len(starts)), sizes)


def _renorm_rows(weight: Tensor, input: Tensor, max_norm: float, norm_type: float) -> None:
    """Scale the looked-up rows whose norm exceeds ``max_norm`` back to it, in place (PyTorch's embedding_renorm_)."""
    xp = array_module(weight.data)
    rows = xp.unique(input.data)
    norms = (xp.abs(weight.data[rows]) ** norm_type).sum(axis=1) ** (1 / norm_type)
    too_long = norms > max_norm
    if too_long.any():
        rows = rows[too_long]
        scale = (max_norm / (norms[too_long] + 1e-7)).astype(weight.dtype)
        with no_grad():
            weight[Tensor._make(rows)] = weight.data[rows] * scale[:, None]


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """``(*)`` integer classes -> ``(*, num_classes)`` int64 (``num_classes=-1``: max + 1)."""
    if not isinstance(tensor, Tensor) or tensor.dtype.kind not in "iu":
        raise RuntimeError(
            f"one_hot: expected an integer (Long) tensor, got {getattr(tensor, 'dtype', type(tensor).__name__)}"
        )
    xp = array_module(tensor.data)
    if num_classes == -1:
        if tensor.data.size == 0:
            raise RuntimeError("one_hot: cannot infer the number of classes from an empty tensor")
        num_classes = int(tensor.data.max()) + 1
    _check_indices("one_hot", tensor, num_classes)
    return Tensor._make((tensor.data[..., None] == xp.arange(num_classes)).astype(backend.int64))
