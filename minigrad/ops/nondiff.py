"""Ops with no gradient: their results are booleans or integers, so nothing flows back.

They are one list, not Functions with empty backwards: each computes on the arrays and
returns a tensor that never requires grad.
"""

from __future__ import annotations

import operator

from minigrad import backend
from minigrad.autograd import _as_output
from minigrad.backend import array_module
from minigrad.ops._dims import normalize_dim
from minigrad.tensor import Tensor


def _no_grad_op(name: str, array_fn):
    def op(*args, **kwargs):
        arrays = [a.data if isinstance(a, Tensor) else a for a in args]
        if backend.cupy is not None and not backend.same_device(arrays):
            raise RuntimeError(f"{name}: expected all tensors on one device")
        try:
            out = array_fn(*arrays, **kwargs)
        except (ValueError, TypeError) as error:
            shapes = ", ".join(str(tuple(a.shape)) for a in arrays if hasattr(a, "shape"))
            raise RuntimeError(f"{name}: {error} (shapes {shapes})") from error
        return Tensor._make(_as_output(out, args, exact_dtype=False))

    op.__name__ = name
    return op


def _xp(name):
    return lambda x, *args, **kwargs: getattr(array_module(x), name)(x, *args, **kwargs)


def _arg_extremum(array_name):
    def fn(x, dim=None, keepdim=False):
        if dim is not None:
            dim = normalize_dim(dim, x.ndim, array_name)
            if x.ndim == 0:
                return array_module(x).zeros((), dtype=backend.int64)
        out = getattr(array_module(x), array_name)(x, axis=dim, keepdims=keepdim)
        return out.astype(backend.int64, copy=False)

    return fn


eq = _no_grad_op("eq", operator.eq)
ne = _no_grad_op("ne", operator.ne)
lt = _no_grad_op("lt", operator.lt)
le = _no_grad_op("le", operator.le)
gt = _no_grad_op("gt", operator.gt)
ge = _no_grad_op("ge", operator.ge)
logical_and = _no_grad_op("logical_and", _xp("logical_and"))
logical_or = _no_grad_op("logical_or", _xp("logical_or"))
logical_xor = _no_grad_op("logical_xor", _xp("logical_xor"))
logical_not = _no_grad_op("logical_not", _xp("logical_not"))
bitwise_and = _no_grad_op("bitwise_and", operator.and_)
bitwise_or = _no_grad_op("bitwise_or", operator.or_)
bitwise_xor = _no_grad_op("bitwise_xor", operator.xor)
bitwise_not = _no_grad_op("bitwise_not", operator.invert)
floor_divide = _no_grad_op("floor_divide", operator.floordiv)
remainder = _no_grad_op("remainder", operator.mod)
isnan = _no_grad_op("isnan", _xp("isnan"))
isinf = _no_grad_op("isinf", _xp("isinf"))
isfinite = _no_grad_op("isfinite", _xp("isfinite"))
argmax = _no_grad_op("argmax", _arg_extremum("argmax"))
argmin = _no_grad_op("argmin", _arg_extremum("argmin"))
argsort = _no_grad_op("argsort", lambda x, dim=-1, descending=False, stable=False: _argsort(x, dim, descending))


def _argsort(x, dim, descending):
    """Always stable. Descending sorts the reversed array ascending and reverses the order
    back, so that ties keep their first-come order and NaN comes first, as the largest
    (negating would overflow the smallest integer and fails on bool)."""
    xp = array_module(x)
    if x.ndim == 0:
        return xp.zeros((), dtype=backend.int64)
    if not descending:
        return xp.argsort(x, axis=dim, kind="stable").astype(backend.int64, copy=False)
    order = xp.flip(xp.argsort(xp.flip(x, axis=dim), axis=dim, kind="stable"), axis=dim)
    return (x.shape[dim] - 1 - order).astype(backend.int64, copy=False)
