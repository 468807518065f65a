"""Dropout layers: active in training mode, the identity in eval mode."""

from __future__ import annotations

import minigrad as mg
import minigrad.functional as F
from nn.module import Module


class Dropout(Module):
    """Zeroes each element with probability p and scales the rest by 1/(1-p)."""

    function = "dropout"

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"{type(self).__name__}: dropout probability has to be between 0 and 1, but got {p}")
        self.p = p

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        return getattr(F, self.function)(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Dropout2d(Dropout):
    """Zeroes whole channels of (N, C, H, W)."""

    function = "dropout2d"


class DropPath(Dropout):
    """Stochastic depth: drops a residual branch for whole samples (timm's DropPath)."""

    function = "drop_path"

    def __init__(self, p: float = 0.0):
        super().__init__(p)
