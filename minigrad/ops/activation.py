"""Activations: leaky_relu, gelu, silu, softplus, elu, glu, logsigmoid, hardtanh, relu6, mish.

Each is one op with its own derivative. Piecewise-linear ones multiply the gradient by a
constant slope mask (PyTorch's value at the kinks); smooth ones write their derivative
with Tensor ops, so it can be differentiated again. Forwards stay finite for any |x|:
exponentials only ever see non-positive arguments (``logaddexp``, ``expm1`` of ``min(x, 0)``).
"""

from __future__ import annotations

import math

from minigrad import backend
from minigrad.autograd import Function
from minigrad.backend import array_module
from minigrad.ops._dims import normalize_dim
from minigrad.ops.elementwise import clamp, exp, sigmoid, tanh, where
from minigrad.ops.shape import cat
from minigrad.tensor import Tensor

_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
_TANH_SCALE = math.sqrt(2 / math.pi)  # gelu's tanh approximation: tanh(c * (x + 0.044715 x^3))
_TANH_CUBIC = 0.044715


# -------------------------------------------------------------------- piecewise linear
class LeakyRelu(Function):
    def forward(self, x, negative_slope):
        one, slope = x.dtype.type(1), x.dtype.type(negative_slope)
        self.slope = array_module(x).where(x > 0, one, slope)  # the slope at 0 is negative_slope
        return x * self.slope

    def backward(self, grad):
        return grad * self.slope


class Hardtanh(Function):
    def forward(self, x, min_val, max_val):
        self.inside = (x > min_val) & (x < max_val)  # the gradient is 0 at both kinks, as in PyTorch
        return array_module(x).clip(x, min_val, max_val)

    def backward(self, grad):
        return grad * self.inside


# ------------------------------------------------------------------------------ smooth
def _sigmoid(x):
    """sigmoid on an array, accurate in both tails (1 + tanh would cancel for x << 0); exp never overflows."""
    xp = array_module(x)
    # e^min(x, 0) / (1 + e^-|x|): 1 / (1 + e^-x) for x >= 0 and e^x / (1 + e^x) below, without a
    # per-element branch (np.where on a random mask costs several plain passes)
    out = xp.exp(xp.minimum(x, 0))
    out /= 1 + xp.exp(-xp.abs(x))
    return out


def _gelu_and_slope(x, approximate):
    """gelu(x) = x gate(x) and its derivative gelu'(x) = gate + x gate', in x's dtype. gate is
    Phi(x), or sigmoid(2u) for the tanh approximation (0.5 (1 + tanh(u)) = sigmoid(2u), without
    cancellation for x < 0). The exact form works in float64 and rounds once, so that float32
    results stay within an ulp even where Phi(x) itself is subnormal; Phi and the density come
    from one evaluation, so the derivative costs gelu's forward a few passes, not its backward an exp."""
    xp = array_module(x)
    if approximate == "tanh":
        gate = _sigmoid((2 * _TANH_SCALE) * x * (1 + _TANH_CUBIC * x * x))
        slope = 1 - gate  # gate' = 2 u' gate (1 - gate)
        slope *= gate
        slope *= (2 * _TANH_SCALE) * x * (1 + 3 * _TANH_CUBIC * x * x)
        slope += gate
        return x * gate, slope
    if xp is not backend.numpy:  # GPU: CuPy's ndtr, in float64 and rounded once, as on the CPU
        x64 = x.astype(backend.float64, copy=False)
        gate = backend.normal_cdf(x64)
        slope = gate + x64 * xp.exp(-0.5 * x64 * x64) * _INV_SQRT_2PI
        return (x64 * gate).astype(x.dtype, copy=False), slope.astype(x.dtype, copy=False)
    x64 = x.astype(backend.float64, copy=False)
    phi, density = backend.normal_cdf_and_pdf(x64, exact=x.dtype == backend.float64)
    with backend.numpy.errstate(invalid="ignore"):  # gelu(-inf) = -inf * 0 is nan, as in PyTorch
        out = phi * x64
        density *= x64
    density += phi
    return out.astype(x.dtype, copy=False), density.astype(x.dtype, copy=False)


class Gelu(Function):
    """``x * gate(x)``: ``gate = Phi`` (``approximate="none"``) or its tanh approximation.
    The forward also keeps gelu'(x): its backward is then one product."""

    def forward(self, x, approximate):
        self.approximate = approximate
        self.save_for_backward(x)
        out, self.slope = backend.in_chunks(lambda part: _gelu_and_slope(part, approximate), x, float64_work=True)
        return out

    def backward(self, grad):
        (x,) = self.saved_tensors
        return GeluBackward.apply(grad, x, approximate=self.approximate, slope=self.slope)


class GeluBackward(Function):
    """grad * gelu'(x): an op of its own so that gelu's backward is one product and still
    differentiable (``slope``: gelu'(x) from gelu's forward, when it has it)."""

    def forward(self, grad, x, approximate, slope=None):
        self.approximate = approximate
        self.save_for_backward(grad, x)
        if slope is None:
            slope = backend.in_chunks(lambda part: _gelu_and_slope(part, approximate)[1], x, float64_work=True)
        return backend.elementwise(array_module(grad).multiply, grad, slope)

    def backward(self, out_grad):
        grad, x = self.saved_tensors
        need_grad, need_x = self.needs_input_grad
        by_grad = GeluBackward.apply(out_grad, x, approximate=self.approximate) if need_grad else None
        return by_grad, (out_grad * grad * _gelu_second_derivative(x, self.approximate) if need_x else None)


def _gelu_second_derivative(x: Tensor, approximate: str) -> Tensor:
    if approximate == "tanh":
        x2 = x * x
        t = tanh(_TANH_SCALE * x * (1 + _TANH_CUBIC * x2))
        slope = _TANH_SCALE * (1 + 3 * _TANH_CUBIC * x2)
        curvature = (6 * _TANH_SCALE * _TANH_CUBIC) * x
        return (1 - t * t) * (slope + 0.5 * x * (curvature - 2 * t * slope * slope))
    return (2 - x * x) * exp(-0.5 * x * x) * _INV_SQRT_2PI


class Silu(Function):
    def forward(self, x):
        self.save_for_backward(x)
        out = _sigmoid(x)
        out *= x
        return out

    def backward(self, grad):
        (x,) = self.saved_tensors
        s = sigmoid(x)
        return grad * s * (1 + x * (1 - s))


class Softplus(Function):
    """``log(1 + exp(beta x)) / beta``, and ``x`` itself where ``beta x > threshold``."""

    def forward(self, x, beta, threshold):
        xp = array_module(x)
        self.beta = beta
        scaled = x * beta
        self.linear = xp.asarray(scaled > threshold)
        self.save_for_backward(x)
        out = xp.logaddexp(0, scaled)
        out /= beta
        return xp.where(self.linear, x, out)

    def backward(self, grad):
        (x,) = self.saved_tensors
        return grad * where(Tensor._make(self.linear), 1.0, sigmoid(x * self.beta))


class Elu(Function):
    def forward(self, x, alpha):
        xp = array_module(x)
        self.alpha = alpha
        self.positive = xp.asarray(x > 0)
        self.save_for_backward(x)
        negative = xp.expm1(xp.minimum(x, 0))
        negative *= alpha
        return xp.where(self.positive, x, negative)

    def backward(self, grad):
        (x,) = self.saved_tensors
        # alpha * exp(x) for x <= 0 (alpha at 0, as in PyTorch); clamping keeps exp finite where unused
        negative_slope = exp(clamp(x, max=0.0)) * self.alpha
        return grad * where(Tensor._make(self.positive), 1.0, negative_slope)


class Logsigmoid(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return -array_module(x).logaddexp(0, -x)

    def backward(self, grad):
        (x,) = self.saved_tensors
        return grad * sigmoid(-x)


class Mish(Function):
    """``x * tanh(softplus(x))``."""

    def forward(self, x):
        self.save_for_backward(x)
        xp = array_module(x)
        out = xp.tanh(xp.logaddexp(0, x))
        out *= x
        return out

    def backward(self, grad):
        (x,) = self.saved_tensors
        t = tanh(softplus(x))
        return grad * (t + x * sigmoid(x) * (1 - t * t))


class Glu(Function):
    """``a * sigmoid(b)`` for the two halves ``a, b`` of the input along ``dim``."""

    def forward(self, x, dim):
        self.dim = dim
        self.save_for_backward(x)
        xp = array_module(x)
        a, b = xp.split(x, 2, axis=dim)
        out = _sigmoid(b)
        out *= a
        return out

    def backward(self, grad):
        (x,) = self.saved_tensors
        a, b = x.chunk(2, self.dim)
        s = sigmoid(b)
        grad_a = grad * s
        return cat([grad_a, grad_a * a * (1 - s)], self.dim)


# -------------------------------------------------------------------- public functions
def _float_input(input, name):
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}: expected a Tensor, got {type(input).__name__}")
    if input.dtype.kind != "f":
        raise RuntimeError(f"{name}: expected a floating-point tensor, got {input.dtype}")


def leaky_relu(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    """``x`` for ``x > 0``, else ``negative_slope * x`` (the slope at 0 is ``negative_slope``)."""
    _float_input(input, "leaky_relu")
    return LeakyRelu.apply(input, negative_slope=negative_slope)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """``clamp(x, min_val, max_val)`` with zero gradient at both kinks."""
    _float_input(input, "hardtanh")
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) must not exceed max_val ({max_val})")
    return Hardtanh.apply(input, min_val=min_val, max_val=max_val)


def relu6(input: Tensor) -> Tensor:
    return hardtanh(input, 0.0, 6.0)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """``x * Phi(x)`` (Phi the standard normal CDF), or ``approximate="tanh"``'s formula."""
    _float_input(input, "gelu")
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return Gelu.apply(input, approximate=approximate)


def silu(input: Tensor) -> Tensor:
    """``x * sigmoid(x)`` (swish)."""
    _float_input(input, "silu")
    return Silu.apply(input)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    _float_input(input, "softplus")
    if beta == 0:
        raise ValueError("softplus: beta must be nonzero")
    return Softplus.apply(input, beta=beta, threshold=threshold)


def elu(input: Tensor, alpha: float = 1.0) -> Tensor:
    """``x`` for ``x > 0``, else ``alpha * (exp(x) - 1)``."""
    _float_input(input, "elu")
    return Elu.apply(input, alpha=alpha)


def logsigmoid(input: Tensor) -> Tensor:
    """``log(sigmoid(x))``, finite for any x."""
    _float_input(input, "logsigmoid")
    return Logsigmoid.apply(input)


def mish(input: Tensor) -> Tensor:
    _float_input(input, "mish")
    return Mish.apply(input)


def glu(input: Tensor, dim: int = -1) -> Tensor:
    """Gated linear unit: the input's first half along ``dim`` times sigmoid of its second half."""
    _float_input(input, "glu")
    if input.ndim == 0:
        raise RuntimeError("glu: does not support 0-d (scalar) tensors")
    d = normalize_dim(dim, input.ndim, "glu")
    if input.shape[d] % 2:
        raise RuntimeError(f"glu: halving dimension must be even, but dimension {d} is size {input.shape[d]}")
    return Glu.apply(input, dim=d)
