"""Reductions: sum, mean, var/std, max/min, logsumexp, prod, cumsum/cumprod, and sum_to.

Every reduction's gradient is the incoming gradient spread back over the reduced dims
(``_spread``), times a local factor.
"""

from __future__ import annotations

import math
from collections import namedtuple

from minigrad import backend
from minigrad.autograd import Function
from minigrad.backend import array_module
from minigrad.ops._dims import kept_shape, normalize_dim, normalize_dims
from minigrad.ops.elementwise import maximum, minimum, where
from minigrad.ops.nondiff import argmax, argmin
from minigrad.tensor import Tensor

MaxMin = namedtuple("MaxMin", ["values", "indices"])


def _spread(grad: Tensor, shape: tuple, dims: tuple, keepdim: bool) -> Tensor:
    """Broadcast a reduction's gradient back to the input's shape."""
    if not keepdim:
        grad = grad.reshape(kept_shape(shape, dims))
    return grad.expand(shape)


def _accumulating(x):
    """Accumulate float16 in float32, as PyTorch does; other dtypes in their own."""
    return backend.float32 if x.dtype == backend.float16 else None


def _back_to_half(out, x):
    """A result accumulated in float32 (see ``_accumulating``) back in float16."""
    return out.astype(x.dtype) if x.dtype == backend.float16 else out


class Sum(Function):
    def forward(self, x, dims, keepdim):
        self.shape, self.dims, self.keepdim = x.shape, dims, keepdim
        return _back_to_half(x.sum(axis=dims, keepdims=keepdim, dtype=_accumulating(x)), x)

    def backward(self, grad):
        return _spread(grad, self.shape, self.dims, self.keepdim)


class Mean(Function):
    def forward(self, x, dims, keepdim):
        self.shape, self.dims, self.keepdim = x.shape, dims, keepdim
        self.count = math.prod(x.shape[d] for d in dims)
        out = x.mean(axis=dims, keepdims=keepdim, dtype=_accumulating(x))
        return out.astype(x.dtype, copy=False)

    def backward(self, grad):
        return _spread(grad / self.count, self.shape, self.dims, self.keepdim)


class Var(Function):
    """Mean squared deviation, divided by ``count - correction`` (clamped at 0, as in PyTorch:
    too few elements give nan or inf, not an error)."""

    def forward(self, x, dims, correction, keepdim):
        self.shape, self.dims, self.keepdim = x.shape, dims, keepdim
        self.divisor = _divisor(x, dims, correction)
        self.save_for_backward(x)
        return _variance(x, dims, self.divisor, keepdim).astype(x.dtype, copy=False)

    def backward(self, grad):
        (x,) = self.saved_tensors
        scale = _reciprocal(self.divisor / 2)
        return _spread(grad, self.shape, self.dims, self.keepdim) * _centered(x, self.dims) * scale


class Std(Function):
    """sqrt(var). Where the deviation is 0 (constant values, one element), the gradient
    centered / (divisor std) is 0/0: it is taken as 0, its limit along any line, as PyTorch does."""

    def forward(self, x, dims, correction, keepdim):
        self.shape, self.dims, self.keepdim = x.shape, dims, keepdim
        self.divisor = _divisor(x, dims, correction)
        out = array_module(x).sqrt(_variance(x, dims, self.divisor, keepdim)).astype(x.dtype, copy=False)
        self.save_for_backward(x, out)
        return out

    def backward(self, grad):
        x, std = self.saved_tensors
        spread = std != 0
        scale = where(spread, grad / where(spread, std, 1.0), 0.0) * _reciprocal(self.divisor)
        return _spread(scale, self.shape, self.dims, self.keepdim) * _centered(x, self.dims)


def _divisor(x, dims, correction) -> int:
    count = math.prod(x.shape[d] for d in dims)
    return count - correction if count > correction else 0


def _variance(x, dims, divisor, keepdim):
    """In float32 for a float16 ``x`` (the sum of squares would overflow)."""
    xp = array_module(x)
    x = x.astype(_accumulating(x) or x.dtype, copy=False)
    centered = x - x.mean(axis=dims, keepdims=True) if x.size else x
    with backend.numpy.errstate(divide="ignore", invalid="ignore"):  # divisor 0 gives nan or inf, as in PyTorch
        return xp.true_divide((centered * centered).sum(axis=dims, keepdims=keepdim), divisor)


def _centered(x: Tensor, dims: tuple) -> Tensor:
    return x - x.mean(dims, keepdim=True)


def _reciprocal(divisor: float) -> float:
    return 1 / divisor if divisor else math.inf


class _ReduceExtremum(Function):
    """amax / amin: tied elements share the gradient evenly (PyTorch's rule)."""

    def forward(self, x, dims, keepdim):
        self.shape, self.dims, self.keepdim = x.shape, dims, keepdim
        xp = array_module(x)
        out = xp.amax(x, axis=dims, keepdims=keepdim) if self.pick == "max" else xp.amin(x, axis=dims, keepdims=keepdim)
        self.save_for_backward(x, out)
        return out

    def backward(self, grad):
        x, out = self.saved_tensors
        ties = x.data == out.data.reshape(kept_shape(self.shape, self.dims))
        share = (ties / ties.sum(axis=self.dims, keepdims=True)).astype(x.dtype)
        return _spread(grad, self.shape, self.dims, self.keepdim) * share


class Amax(_ReduceExtremum):
    pick = "max"


class Amin(_ReduceExtremum):
    pick = "min"


class Logsumexp(Function):
    def forward(self, x, dims, keepdim):
        self.shape, self.dims, self.keepdim = x.shape, dims, keepdim
        xp = array_module(x)
        shift = xp.amax(x, axis=dims, keepdims=True) if x.size else xp.zeros(kept_shape(x.shape, dims), x.dtype)
        shift = xp.where(xp.isfinite(shift), shift, 0)  # all -inf rows stay -inf, not nan
        out = xp.log(xp.exp(x - shift).sum(axis=dims, keepdims=True)) + shift
        out = out if keepdim else out.reshape([s for i, s in enumerate(x.shape) if i not in dims])
        self.save_for_backward(x, out)
        return out

    def backward(self, grad):
        x, out = self.saved_tensors
        out = out.reshape(kept_shape(self.shape, self.dims))
        return _spread(grad, self.shape, self.dims, self.keepdim) * (x - out).exp()


class Prod(Function):
    def forward(self, x, dim, keepdim):
        self.shape, self.dim, self.keepdim = x.shape, dim, keepdim
        out = x.prod(axis=dim, keepdims=keepdim)
        self.save_for_backward(x, out)
        return out

    def backward(self, grad):
        x, out = self.saved_tensors
        dims = tuple(range(len(self.shape))) if self.dim is None else (self.dim,)
        if (x.data == 0).any():
            others = _product_of_others(x, self.dim)
        else:
            others = _spread(out, self.shape, dims, self.keepdim) / x
        return _spread(grad, self.shape, dims, self.keepdim) * others


def _product_of_others(x: Tensor, dim) -> Tensor:
    """``out[i]`` = the product of every ``x[j]``, ``j != i``, along ``dim`` (exact with zeros)."""
    if dim is None:
        return _product_of_others(x.reshape(-1), 0).reshape(x.shape)
    return _one_at_each(x, dim).prod(-1).transpose(dim, -1)


def _one_at_each(x: Tensor, dim: int) -> Tensor:
    """``out[..., i, k]`` = ``x[k]`` along ``dim`` (moved last), but 1 where ``k == i``: (..., n, n)."""
    moved = x.transpose(dim, -1).unsqueeze(-2)  # (..., 1, n)
    eye = array_module(x.data).eye(x.shape[dim], dtype=bool)
    return where(Tensor._make(eye), 1.0, moved)


class Cumsum(Function):
    def forward(self, x, dim):
        self.dim = dim
        return _back_to_half(array_module(x).cumsum(x, axis=dim, dtype=_accumulating(x)), x)

    def backward(self, grad):
        return grad.flip(self.dim).cumsum(self.dim).flip(self.dim)


class Cumprod(Function):
    """``out[j]`` = the product of ``x[k]``, ``k <= j``, along ``dim``.

    ``grad_x[i]`` = sum over ``j >= i`` of ``grad[j] * out[j] / x[i]``. Dividing by ``x`` is
    exact only without zeros; with any zero, the product of the other factors is built
    directly (``_one_at_each``), exact at the cost of ``n`` times the memory."""

    def forward(self, x, dim):
        self.dim = dim
        out = _back_to_half(array_module(x).cumprod(x, axis=dim, dtype=_accumulating(x)), x)
        self.save_for_backward(x, out)
        return out

    def backward(self, grad):
        x, out = self.saved_tensors
        d = self.dim
        if (x.data != 0).all():
            return (grad * out).flip(d).cumsum(d).flip(d) / x
        # others[..., i, j]: the product of x[k], k <= j, k != i (dim moved last)
        others = _one_at_each(x, d).cumprod(-1)
        xp = array_module(x.data)
        later = Tensor._make(xp.triu(xp.ones(others.shape[-2:], dtype=bool)))  # True where j >= i
        moved = grad.transpose(d, -1).unsqueeze(-2)  # (..., 1, n_j)
        return where(later, moved * others, 0.0).sum(-1).transpose(d, -1)


class SumTo(Function):
    """Sum over the dims that broadcasting added or stretched: the gradient of broadcasting."""

    def forward(self, x, shape):
        self.shape = x.shape
        lead = x.ndim - len(shape)
        if lead < 0 or any(s not in (1, t) for s, t in zip(shape, x.shape[lead:])):
            raise RuntimeError(f"sum_to: cannot sum shape {tuple(x.shape)} to {tuple(shape)}")
        axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape) if s == 1 and x.shape[lead + i] != 1)
        return x.sum(axis=axes, keepdims=True).reshape(shape) if axes else x.reshape(shape)

    def backward(self, grad):
        return grad.expand(self.shape)


# -------------------------------------------------------------------- public functions
def sum(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Sum over ``dim`` (an int, a tuple, or None for every dim)."""
    if dtype is not None:
        input = input.to(dtype)
    return Sum.apply(input, dims=normalize_dims(dim, input.ndim, "sum"), keepdim=keepdim)


def mean(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    _need_float(input, "mean")
    return Mean.apply(input, dims=normalize_dims(dim, input.ndim, "mean"), keepdim=keepdim)


def var(input: Tensor, dim=None, *, correction: int = 1, keepdim: bool = False, unbiased=None) -> Tensor:
    """Variance with Bessel's ``correction`` (1: divide by n - 1; 0: by n)."""
    _need_float(input, "var")
    if unbiased is not None:
        correction = int(unbiased)
    return Var.apply(input, dims=normalize_dims(dim, input.ndim, "var"), correction=correction, keepdim=keepdim)


def std(input: Tensor, dim=None, *, correction: int = 1, keepdim: bool = False, unbiased=None) -> Tensor:
    """Standard deviation, ``sqrt(var)``; its gradient is 0 where all values are equal."""
    _need_float(input, "std")
    if unbiased is not None:
        correction = int(unbiased)
    return Std.apply(input, dims=normalize_dims(dim, input.ndim, "std"), correction=correction, keepdim=keepdim)


def amax(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    return Amax.apply(input, dims=normalize_dims(dim, input.ndim, "amax"), keepdim=keepdim)


def amin(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    return Amin.apply(input, dims=normalize_dims(dim, input.ndim, "amin"), keepdim=keepdim)


def _extremum(input, dim, keepdim, other_op, full_op, index_op, name):
    if isinstance(dim, Tensor):  # max(a, b) is maximum(a, b)
        return other_op(input, dim)
    if dim is None:  # a full reduction: ties share the gradient
        return full_op(input)
    d = normalize_dim(dim, input.ndim, name)
    if input.ndim == 0:
        return MaxMin(input.clone(), Tensor._make(array_module(input.data).zeros((), dtype=backend.int64)))
    indices = index_op(input, d, keepdim=True)
    values = input.gather(d, indices)  # the gradient goes to the returned index
    if not keepdim:
        values, indices = values.squeeze(d), indices.squeeze(d)
    return MaxMin(values, indices)


def max(input: Tensor, dim=None, keepdim: bool = False):
    """``max()``: the largest element; ``max(dim)``: (values, indices); ``max(other)``: maximum."""
    return _extremum(input, dim, keepdim, maximum, amax, argmax, "max")


def min(input: Tensor, dim=None, keepdim: bool = False):
    """``min()``: the smallest element; ``min(dim)``: (values, indices); ``min(other)``: minimum."""
    return _extremum(input, dim, keepdim, minimum, amin, argmin, "min")


def logsumexp(input: Tensor, dim, keepdim: bool = False) -> Tensor:
    """``log(sum(exp(x)))`` over ``dim``, computed without overflow."""
    _need_float(input, "logsumexp")
    return Logsumexp.apply(input, dims=normalize_dims(dim, input.ndim, "logsumexp"), keepdim=keepdim)


def prod(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    if dim is not None:
        dim = normalize_dim(dim, input.ndim, "prod")
        if input.ndim == 0:
            dim = None
    return Prod.apply(input, dim=dim, keepdim=keepdim)


def cumsum(input: Tensor, dim: int) -> Tensor:
    dim = normalize_dim(dim, input.ndim, "cumsum")
    if input.ndim == 0:
        return input.clone()
    return Cumsum.apply(input, dim=dim)


def cumprod(input: Tensor, dim: int) -> Tensor:
    """The cumulative product along ``dim``; its gradient is exact with zeros in ``input``."""
    dim = normalize_dim(dim, input.ndim, "cumprod")
    if input.ndim == 0:
        return input.clone()
    return Cumprod.apply(input, dim=dim)


def sum_to(input: Tensor, shape) -> Tensor:
    """Sum ``input`` down to ``shape``, undoing a broadcast to ``input.shape``."""
    shape = tuple(shape)
    if tuple(input.shape) == shape:
        return input
    return SumTo.apply(input, shape=shape)


def _need_float(input: Tensor, name: str) -> None:
    if input.dtype.kind != "f":
        raise RuntimeError(f"{name}: expected a floating-point tensor, got {input.dtype}; convert it with .float()")
