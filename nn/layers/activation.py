"""Activation modules: each holds its options and calls one functional op."""

from __future__ import annotations

import minigrad as mg
import minigrad.functional as F
from nn.module import Module


class _Activation(Module):
    """An activation with no options: forward is ``getattr(F, self.function)(x)``."""

    function = ""  # the name of the op in minigrad.functional

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        return getattr(F, self.function)(x)


class ReLU(_Activation):
    function = "relu"

    def __init__(self, inplace: bool = False):  # in-place is accepted for compatibility; results are the same
        super().__init__()


class Sigmoid(_Activation):
    function = "sigmoid"


class Tanh(_Activation):
    function = "tanh"


class SiLU(_Activation):
    function = "silu"

    def __init__(self, inplace: bool = False):
        super().__init__()


class Mish(_Activation):
    function = "mish"


class LogSigmoid(_Activation):
    function = "logsigmoid"


class ReLU6(_Activation):
    function = "relu6"

    def __init__(self, inplace: bool = False):
        super().__init__()


class GELU(Module):
    def __init__(self, approximate: str = "none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        return F.gelu(x, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class ELU(Module):
    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        self.alpha = alpha

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        return F.elu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class Softplus(Module):
    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        return F.softplus(x, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Hardtanh(Module):
    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False):
        super().__init__()
        self.min_val, self.max_val = min_val, max_val

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        return F.hardtanh(x, self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}"


class _DimActivation(Module):
    """An activation along one dim: forward is ``getattr(F, self.function)(x, dim)``."""

    function = ""  # the name of the op in minigrad.functional

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        return getattr(F, self.function)(x, self.dim if self.dim is not None else -1)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax(_DimActivation):
    function = "softmax"


class LogSoftmax(_DimActivation):
    function = "log_softmax"


class GLU(_DimActivation):
    function = "glu"

    def __init__(self, dim: int = -1):
        super().__init__(dim)
