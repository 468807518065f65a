"""Elementwise ops: arithmetic, unary math, where, casts and copies.

Gradients are written for the output's (broadcast) shape; the engine sums them down
to each input's shape.
"""

from __future__ import annotations

import math

from minigrad import backend
from minigrad.autograd import Function
from minigrad.backend import array_module
from minigrad.tensor import Tensor

_TWO_OVER_SQRT_PI = 2 / math.sqrt(math.pi)


# ------------------------------------------------------------------------ arithmetic
class Add(Function):
    array_backward = True

    def forward(self, a, b):
        return a + b

    def backward(self, grad):
        return grad, grad


class Sub(Function):
    array_backward = True

    def forward(self, a, b):
        return a - b

    def backward(self, grad):
        return grad, (-grad if self.needs_input_grad[1] else None)


class Mul(Function):
    array_backward = True

    def forward(self, a, b):
        need_a, need_b = self.needs_input_grad
        self.save_for_backward(a if need_b else None, b if need_a else None)
        return a * b

    def backward(self, grad):
        a, b = self.saved_tensors
        need_a, need_b = self.needs_input_grad
        return (grad * b if need_a else None), (grad * a if need_b else None)


class Div(Function):
    array_backward = True

    def forward(self, a, b):
        self.save_for_backward(a if self.needs_input_grad[1] else None, b)
        return a / b

    def backward(self, grad):
        a, b = self.saved_tensors
        need_a, need_b = self.needs_input_grad
        return (grad / b if need_a else None), (-grad * a / (b * b) if need_b else None)


class Neg(Function):
    array_backward = True

    def forward(self, x):
        return -x

    def backward(self, grad):
        return -grad


class Pow(Function):
    """``a ** b`` for tensors or numbers on either side."""

    def forward(self, a, b):
        out = a**b
        self.save_for_backward(a, b, out)
        return out

    def backward(self, grad):
        a, b, out = self.saved_tensors
        need_a, need_b = self.needs_input_grad
        grad_a = grad_b = None
        if need_a:
            # d(x**0)/dx is 0, also at x == 0 where b x^(b-1) reads 0 * inf (PyTorch's convention)
            if isinstance(b, Tensor):
                grad_a = grad * b * where((a == 0) & (b == 0), 1.0, a) ** (b - 1)
            elif b == 0:
                grad_a = grad * 0.0
            else:
                grad_a = grad * b * a ** (b - 1)
        if need_b:
            # d(a**b)/db = a**b * log(a), taken as 0 where a == 0 (PyTorch's convention)
            if isinstance(a, Tensor):
                log_a = log(where(a == 0, 1.0, a))
            else:
                log_a = math.log(a) if a != 0 else 0.0
            grad_b = grad * out * log_a
        return grad_a, grad_b


# --------------------------------------------------------------------- unary math
class Exp(Function):
    array_backward = True

    def forward(self, x):
        out = array_module(x).exp(x)
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        (out,) = self.saved_tensors
        return grad * out


class Log(Function):
    array_backward = True

    def forward(self, x):
        self.save_for_backward(x)
        return array_module(x).log(x)

    def backward(self, grad):
        (x,) = self.saved_tensors
        return grad / x


class Sqrt(Function):
    array_backward = True

    def forward(self, x):
        out = array_module(x).sqrt(x)
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        (out,) = self.saved_tensors
        return grad / (2 * out)


class Rsqrt(Function):
    array_backward = True

    def forward(self, x):
        out = 1 / array_module(x).sqrt(x)
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        (out,) = self.saved_tensors
        return grad * -0.5 * out**3


class Abs(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return array_module(x).abs(x)

    def backward(self, grad):
        (x,) = self.saved_tensors
        return grad * sign(x)  # 0 at x == 0, as in PyTorch


class Sin(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return array_module(x).sin(x)

    def backward(self, grad):
        (x,) = self.saved_tensors
        return grad * cos(x)


class Cos(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return array_module(x).cos(x)

    def backward(self, grad):
        (x,) = self.saved_tensors
        return -grad * sin(x)


class Tanh(Function):
    array_backward = True

    def forward(self, x):
        out = array_module(x).tanh(x)
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        (out,) = self.saved_tensors
        return grad * (1 - out * out)


class Erf(Function):
    """The error function (Cody's rational approximations, backend.erf); erf'(x) = 2/sqrt(pi) exp(-x^2)."""

    def forward(self, x):
        self.save_for_backward(x)
        return backend.erf(_as_float(x))

    def backward(self, grad):
        (x,) = self.saved_tensors
        return grad * _TWO_OVER_SQRT_PI * exp(-x * x)


class Erfc(Function):
    """1 - erf(x), accurate in the right tail where 1 - erf(x) would be 0."""

    def forward(self, x):
        self.save_for_backward(x)
        return backend.erfc(_as_float(x))

    def backward(self, grad):
        (x,) = self.saved_tensors
        return grad * -_TWO_OVER_SQRT_PI * exp(-x * x)


def _as_float(x):
    """Integer and bool arrays in the default float dtype, as PyTorch's floating-point functions take them."""
    return x if x.dtype.kind == "f" else x.astype(backend.get_default_dtype())


class Sigmoid(Function):
    array_backward = True

    def forward(self, x):
        out = 0.5 + 0.5 * array_module(x).tanh(0.5 * x)  # no overflow for large |x|
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        (out,) = self.saved_tensors
        return grad * out * (1 - out)


class Relu(Function):
    array_backward = True

    def forward(self, x):
        xp = array_module(x)
        out = backend.elementwise(lambda x, out: xp.maximum(x, 0, out=out), x)
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        (out,) = self.saved_tensors  # its gradient is 0 at x == 0, as in PyTorch
        if isinstance(grad, Tensor):  # the backward pass is being recorded
            return grad * (out > 0)
        xp = array_module(out)
        return backend.elementwise(lambda g, y, out: xp.multiply(g, y > 0, out=out), grad, out)


class Clamp(Function):
    def forward(self, x, low=None, high=None):
        self.low, self.high = low, high
        self.save_for_backward(x)
        return array_module(x).clip(x, low, high)

    def backward(self, grad):
        (x,) = self.saved_tensors
        inside = True  # the gradient passes where low <= x <= high, bounds included
        if self.low is not None:
            inside = inside & (x.data >= self.low)
        if self.high is not None:
            inside = inside & (x.data <= self.high)
        return grad * inside


class _Extremum(Function):
    """maximum / minimum: at ties each input gets half the gradient (PyTorch's rule)."""

    def forward(self, a, b):
        xp = array_module(a if backend.is_array(a) else b)
        out = xp.maximum(a, b) if self.pick == "max" else xp.minimum(a, b)
        wins = (a > b) if self.pick == "max" else (a < b)
        self.share_a = (wins + 0.5 * (a == b)).astype(out.dtype)
        return out

    def backward(self, grad):
        need_a, need_b = self.needs_input_grad
        return (grad * self.share_a if need_a else None), (grad * (1 - self.share_a) if need_b else None)


class Maximum(_Extremum):
    pick = "max"


class Minimum(_Extremum):
    pick = "min"


class Where(Function):
    def forward(self, condition, a, b):
        self.condition = condition
        xp = array_module(condition)
        return xp.where(condition, a, b)

    def backward(self, grad):
        _, need_a, need_b = self.needs_input_grad
        grad_a = Where.apply(self.condition, grad, 0.0) if need_a else None
        grad_b = Where.apply(self.condition, 0.0, grad) if need_b else None
        return None, grad_a, grad_b


class _PiecewiseConstant(Function):
    """Steps (sign, floor, ceil, round): the gradient is zero wherever it exists."""

    def forward(self, x):
        self.save_for_backward(x)
        return getattr(array_module(x), self.array_fn)(x)

    def backward(self, grad):
        return grad * 0.0


class Sign(_PiecewiseConstant):
    array_fn = "sign"


class Floor(_PiecewiseConstant):
    array_fn = "floor"


class Ceil(_PiecewiseConstant):
    array_fn = "ceil"


class Round(_PiecewiseConstant):
    array_fn = "round"


# ------------------------------------------------------------------ casts, copies
class Cast(Function):
    exact_dtype = True

    def forward(self, x, dtype):
        self.source = x.dtype
        return x.astype(dtype)

    def backward(self, grad):
        return grad.to(self.source)


class ToDevice(Function):
    def forward(self, x, device):
        self.source = backend.device_of(x)
        return backend.to_device(x, device)

    def backward(self, grad):
        return grad.to(self.source)


class Clone(Function):
    def forward(self, x):
        return x.copy()

    def backward(self, grad):
        return grad


# --------------------------------------------------------------- public functions
def _binary(op):
    def fn(input, other):
        if not isinstance(input, Tensor) and not isinstance(other, Tensor):
            raise TypeError(
                f"{op.__name__.lower()}: expected a Tensor, got {type(input).__name__} and {type(other).__name__}"
            )
        return op.apply(input, other)

    fn.__name__ = op.__name__.lower()
    fn.__doc__ = f"Elementwise ``{op.__name__.lower()}`` with NumPy broadcasting."
    return fn


def _unary(op):
    def fn(input):
        return op.apply(input)

    fn.__name__ = op.__name__.lower()
    fn.__doc__ = f"Elementwise ``{op.__name__.lower()}``."
    return fn


add, sub, mul, div, pow = _binary(Add), _binary(Sub), _binary(Mul), _binary(Div), _binary(Pow)
maximum, minimum = _binary(Maximum), _binary(Minimum)
neg, exp, log, sqrt, rsqrt, abs = _unary(Neg), _unary(Exp), _unary(Log), _unary(Sqrt), _unary(Rsqrt), _unary(Abs)
sin, cos, tanh, sigmoid, relu = _unary(Sin), _unary(Cos), _unary(Tanh), _unary(Sigmoid), _unary(Relu)
erf, erfc = _unary(Erf), _unary(Erfc)
sign, floor, ceil, round = _unary(Sign), _unary(Floor), _unary(Ceil), _unary(Round)
clone = _unary(Clone)
subtract, multiply, divide, true_divide, negative = sub, mul, div, div, neg


def clamp(input: Tensor, min=None, max=None) -> Tensor:
    """Limit every element to ``[min, max]`` (either bound may be None)."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        # PyTorch's gradient: to input where min <= input <= max (bounds included, no sharing
        # at ties), else to the bound that was taken; max wins where min > max
        out = input if min is None else where(input < min, min, input)
        return out if max is None else where(out > max, max, out)
    return Clamp.apply(input, low=min, high=max)


def where(condition, input, other) -> Tensor:
    """``input`` where ``condition`` holds, else ``other`` (all broadcast together)."""
    cond = condition.data if isinstance(condition, Tensor) else condition
    if not backend.is_array(cond) or cond.dtype != backend.bool_:
        raise TypeError(f"where: condition must be a bool tensor, got {getattr(cond, 'dtype', type(cond).__name__)}")
    return Where.apply(condition, input, other)
