"""Dropout: zero elements (dropout), whole channels (dropout2d) or whole samples (drop_path).

Masks come from ``backend.generator(device)``, so ``mg.manual_seed`` makes them
reproducible. Kept values are scaled by ``1 / (1 - p)`` so the expectation is unchanged;
the gradient is the same mask times the incoming gradient (a product with a constant).
"""

from __future__ import annotations

from minigrad import backend
from minigrad.tensor import Tensor


def keep_mask(shape: tuple, p: float, like: Tensor):
    """An array of ``shape``: ``1 / (1 - p)`` with probability ``1 - p``, else 0 (all 0 for p = 1)."""
    xp = backend.array_module(like.data)
    draw = backend.generator(like.device).random(
        shape, dtype=backend.float64 if like.dtype == backend.float64 else backend.float32
    )
    scale = 1 / (1 - p) if p < 1 else 0.0
    return xp.multiply(draw >= p, like.dtype.type(scale))


def _check(name: str, input, p: float) -> None:
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}: expected a Tensor, got {type(input).__name__}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name}: dropout probability has to be between 0 and 1, but got {p}")


def dropout(input: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``."""
    _check("dropout", input, p)
    if not training or p == 0:
        return input
    return input * Tensor._make(keep_mask(input.shape, p, input))


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero whole channels: input ``(N, C, H, W)`` or ``(C, H, W)``; a 3-D input is taken as
    ``(N, C, L)``, as PyTorch does today (it warns that this will change)."""
    _check("dropout2d", input, p)
    if input.ndim not in (3, 4):
        raise RuntimeError(f"dropout2d: expected a 3-D or 4-D input, got shape {tuple(input.shape)}")
    if not training or p == 0:
        return input
    return input * Tensor._make(keep_mask(input.shape[:2] + (1,) * (input.ndim - 2), p, input))


def drop_path(input: Tensor, p: float = 0.0, training: bool = False, scale_by_keep: bool = True) -> Tensor:
    """Stochastic depth (timm's ``drop_path``): zero each sample of the batch (dim 0) with
    probability ``p``, scaling the kept ones by ``1 / (1 - p)`` when ``scale_by_keep``."""
    _check("drop_path", input, p)
    if not training or p == 0:
        return input
    mask = keep_mask(input.shape[:1] + (1,) * (input.ndim - 1), p, input)
    if not scale_by_keep and p < 1:
        mask *= 1 - p
    return input * Tensor._make(mask)
