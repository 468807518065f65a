"""Embedding lookup and one-hot encoding.

Looking rows up and adding gradients into zeros at those rows are each other's gradient
(``Embedding`` and ``IndexScatter``); repeated indices accumulate.
"""

from __future__ import annotations

from minigrad import backend
from minigrad.autograd import Function, no_grad
from minigrad.backend import array_module
from minigrad.ops.index import IndexScatter
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
