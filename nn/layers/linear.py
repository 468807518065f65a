"""Linear: y = x W^T + b."""

from __future__ import annotations

import math

import minigrad as mg
import minigrad.functional as F
from nn import init
from nn.module import Module, Parameter


class Linear(Module):
    """x: (*, in_features) -> (*, out_features). weight: (out_features, in_features).

    PyTorch's default initialisation: weight and bias U(-1/sqrt(in_features), 1/sqrt(in_features)).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(mg.empty(out_features, in_features, device=device, dtype=dtype))
        self.bias = Parameter(mg.empty(out_features, device=device, dtype=dtype)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise RuntimeError(f"{self}: expected input of shape (*, {self.in_features}), got {tuple(x.shape)}")
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
