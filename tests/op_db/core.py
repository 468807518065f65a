"""OpInfos for the core Tensor ops (API.md, "Tensors")."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
import minigrad.testing as mgt
from minigrad.ops.index import IndexScatter
from tests.op_db import OpInfo, Sample

SHAPES = mgt.shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
NONEMPTY = mgt.shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)


def t(shape=SHAPES, **kw):
    return mgt.tensors(shape=shape, **kw)


# ------------------------------------------------------------------------- builders
def unary(name, op, ref, low=-3.0, high=3.0, avoid=(), shape=SHAPES, margin=0.05, **kw):
    samples = t(shape, low=low, high=high, avoid=avoid, margin=margin).map(lambda x: Sample((x,)))
    return OpInfo(name, op, samples, ref, **kw)


@st.composite
def _binary_samples(draw, low_a, high_a, low_b, high_b, avoid_b, scalar_b):
    shape_a, shape_b = draw(mgt.broadcastable_shapes(2))
    a = draw(t(shape_a, low=low_a, high=high_a))
    if scalar_b and draw(st.booleans()):
        return Sample((a, draw(mgt.floats(low_b, high_b, avoid_b, margin=0.3))))
    if draw(st.booleans()):  # the tensor on the right only
        a = a.detach()
    return Sample((a, draw(t(shape_b, low=low_b, high=high_b, avoid=avoid_b, margin=0.3))))


def binary(name, op, ref, low_a=-3.0, high_a=3.0, low_b=-3.0, high_b=3.0, avoid_b=(), scalar_b=True, **kw):
    return OpInfo(name, op, _binary_samples(low_a, high_a, low_b, high_b, avoid_b, scalar_b), ref, **kw)


def _np(x):
    return x.detach().cpu().numpy()


@st.composite
def _reduce_samples(draw, dims=True, keepdim=True, distinct=False, low=-3.0, high=3.0, min_side=0, tuple_dims=True):
    x = draw(t(mgt.shapes(0, 3, min_side, 4), distinct=distinct, low=low, high=high))
    kwargs = {}
    if dims:
        dim = draw(mgt.valid_dims(x.ndim, allow_tuple=tuple_dims))
        if dim is not None:
            kwargs["dim"] = dim
    if keepdim and "dim" in kwargs:
        kwargs["keepdim"] = draw(st.booleans())
    return Sample((x,), kwargs)


def _np_dims(kwargs):
    dim = kwargs.get("dim")
    if dim == ():  # every dim to a reduction (PyTorch), none to NumPy
        return None
    return dim if dim is None or isinstance(dim, tuple) else (dim,)


def reduction(name, op, np_fn, dims=True, distinct=False, low=-3.0, high=3.0, min_side=0, **kw):
    def ref(x, dim=None, keepdim=False):
        return np_fn(x, axis=_np_dims({"dim": dim}), keepdims=keepdim)

    samples = _reduce_samples(dims=dims, distinct=distinct, low=low, high=high, min_side=min_side)
    return OpInfo(name, op, samples, ref, **kw)


# ------------------------------------------------------------------- elementwise
@st.composite
def _pow_samples(draw):
    kind = draw(st.sampled_from(["tensor", "scalar exponent", "integer exponent", "scalar base"]))
    shape = draw(SHAPES)
    if kind == "tensor":
        shape_a, shape_b = draw(mgt.broadcastable_shapes(2))
        return Sample((draw(t(shape_a, low=0.5, high=2.0)), draw(t(shape_b, low=-2.0, high=2.0))))
    if kind == "scalar exponent":
        return Sample((draw(t(shape, low=0.5, high=2.0)), draw(st.sampled_from([-1.5, -1, 0, 0.5, 1, 2.5, 3]))))
    if kind == "integer exponent":  # negative bases are fine for integer powers
        return Sample((draw(t(shape)), draw(st.sampled_from([1, 2, 3]))))
    return Sample((draw(st.sampled_from([0.5, 2.0, 3.0])), draw(t(shape, low=-2.0, high=2.0))))


@st.composite
def _pow_singular(draw):
    """A base with zeros and an exponent with zeros: d(a**b)/da = b a^(b-1) reads 0 * inf at 0**0,
    and d(a**b)/db = a^b log a reads 0 * -inf at 0**b. (An exponent in (0, 1) at a zero base is
    a true singularity, inf as in PyTorch: not drawn.)"""
    shape = draw(mgt.shapes(1, 2, 1, 3))
    a, b = (draw(t(shape, low=1.0, high=2.0)).detach() * mg.tensor(draw(hnp.arrays(np.bool_, shape))) for _ in range(2))
    return Sample((a.requires_grad_(), b.requires_grad_()))


@st.composite
def _extremum_samples(draw):
    """Two tensors whose values never tie (ties are pinned by exact tests)."""
    shape_a, shape_b = draw(mgt.broadcastable_shapes(2))
    a = mg.tensor(np.round(_np(draw(t(shape_a))) * 10) / 10, requires_grad=True)
    b = mg.tensor(np.round(_np(draw(t(shape_b))) * 10) / 10 + 0.05, requires_grad=True)
    return Sample((a, b))


@st.composite
def _clamp_samples(draw):
    low = draw(st.sampled_from([None, -1.0, 0.0]))
    high = draw(st.sampled_from([None, 0.5, 2.0] if low is not None else [0.5, 2.0]))
    kinks = tuple(b for b in (low, high) if b is not None)
    return Sample((draw(t(avoid=kinks, margin=0.05)),), {"min": low, "max": high})


@st.composite
def _where_samples(draw):
    shape_c, shape_a, shape_b = draw(mgt.broadcastable_shapes(3))
    condition = mg.tensor(draw(mgt.arrays(shape_c, dtype=np.bool_)))
    other = draw(st.one_of(t(shape_b), st.floats(-2, 2)))
    return Sample((condition, draw(t(shape_a)), other))


def _steps(avoid):
    return tuple(k + d for k in range(-4, 5) for d in avoid)


ELEMENTWISE = [
    binary("add", mg.add, np.add),
    binary("sub", mg.sub, np.subtract),
    binary("mul", mg.mul, np.multiply),
    binary("div", mg.div, np.divide, avoid_b=(0.0,)),
    unary("rsub", lambda x: 2.0 - x, lambda x: 2.0 - x),
    unary("rdiv", lambda x: 2.0 / x, lambda x: 2.0 / x, avoid=(0.0,), margin=0.3),
    unary("neg", mg.neg, np.negative, exact=True),
    OpInfo("pow", mg.pow, _pow_samples(), lambda a, b: np.power(a, b), singular=_pow_singular()),
    unary("exp", mg.exp, np.exp, exact=True),
    unary("log", mg.log, np.log, low=0.1, exact=True),
    unary("sqrt", mg.sqrt, np.sqrt, low=0.1, exact=True),
    unary("rsqrt", mg.rsqrt, lambda x: 1 / np.sqrt(x), low=0.1),
    unary("abs", mg.abs, np.abs, avoid=(0.0,), exact=True),
    unary("sin", mg.sin, np.sin, exact=True),
    unary("cos", mg.cos, np.cos, exact=True),
    unary("tanh", mg.tanh, np.tanh, exact=True),
    # math.erf / math.erfc are the C library's, correctly rounded or within an ulp
    unary("erf", mg.erf, np.vectorize(math.erf, otypes=[float]), low=-6.0, high=6.0, exact=True),
    unary("erfc", mg.erfc, np.vectorize(math.erfc, otypes=[float]), low=-6.0, high=27.0, exact=True),
    unary("sigmoid", mg.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    unary("relu", mg.relu, lambda x: np.maximum(x, 0), avoid=(0.0,)),
    OpInfo("clamp", mg.clamp, _clamp_samples(), lambda x, min=None, max=None: np.clip(x, min, max)),
    OpInfo("maximum", mg.maximum, _extremum_samples(), np.maximum),
    OpInfo("minimum", mg.minimum, _extremum_samples(), np.minimum),
    OpInfo("where", mg.where, _where_samples(), np.where),
    unary("sign", mg.sign, np.sign, avoid=(0.0,)),
    unary("floor", mg.floor, np.floor, avoid=_steps((0.0,)), margin=0.05),
    unary("ceil", mg.ceil, np.ceil, avoid=_steps((0.0,))),
    unary("round", mg.round, np.round, avoid=_steps((0.5, -0.5))),
    unary("clone", mg.clone, np.copy),
    unary(
        "cast",
        lambda x: x.to(mg.float32).to(mg.float64),
        lambda x: x.astype(np.float32).astype(np.float64),
        eps=1e-3,
        atol=1e-3,
        ref_atol=1e-6,
    ),
    OpInfo(
        "to_device",
        lambda x: x.to("cuda").to("cpu"),
        t().map(lambda x: Sample((x,))),
        lambda x: x,
        requires_cuda=True,
        covers=("ToDevice",),
    ),
]


# ---------------------------------------------------------------------- reductions
@st.composite
def _var_samples(draw):
    x = draw(t(mgt.shapes(1, 3, 2, 4), distinct=True))
    dim = draw(mgt.valid_dims(x.ndim))
    kwargs = {"correction": draw(st.sampled_from([0, 1])), "keepdim": draw(st.booleans())}
    if dim is not None:
        kwargs["dim"] = dim
    return Sample((x,), kwargs)


@st.composite
def _constant_var_samples(draw):
    """Every value equal (one element too, with correction 0): std's gradient reads 0/0 there."""
    correction = draw(st.sampled_from([0, 1]))
    shape = draw(mgt.shapes(0 if correction == 0 else 1, 3, 1 + correction, 3))
    x = mg.full(shape, draw(st.floats(-3, 3)), dtype=mg.float64, requires_grad=True)
    dim = draw(mgt.valid_dims(x.ndim))
    kwargs = {"correction": correction, "keepdim": draw(st.booleans())}
    if dim is not None:
        kwargs["dim"] = dim
    return Sample((x,), kwargs)


def _np_var(fn):
    def ref(x, dim=None, correction=1, keepdim=False):
        return fn(x, axis=_np_dims({"dim": dim}), ddof=correction, keepdims=keepdim)

    return ref


@st.composite
def _max_dim_samples(draw):
    x = draw(t(mgt.shapes(0, 3, 1, 4), distinct=True))
    return Sample((x, draw(mgt.dims(x.ndim))), {"keepdim": draw(st.booleans())})


def _np_max_dim(fn, arg):
    def ref(x, dim, keepdim=False):
        if x.ndim == 0:
            return x, np.int64(0)
        return fn(x, axis=dim, keepdims=keepdim), arg(x, axis=dim, keepdims=keepdim)

    return ref


@st.composite
def _arg_samples(draw):
    """argmax/argmin over one dim or (dim=None) over the flattened tensor; no ties."""
    x = draw(t(mgt.shapes(0, 3, 1, 4), distinct=True, requires_grad=False))
    dim = draw(st.none() | mgt.dims(x.ndim)) if x.ndim else None
    return Sample((x,), {"dim": dim, "keepdim": draw(st.booleans())})


def _np_arg(fn):
    def ref(x, dim=None, keepdim=False):
        if dim is None and keepdim:
            return fn(x).reshape((1,) * x.ndim)
        return fn(x, axis=dim, keepdims=keepdim) if x.ndim else np.int64(0)

    return ref


@st.composite
def _single_dim_samples(draw, min_side=0, low=-3.0, high=3.0, avoid=(), max_dims=3):
    x = draw(t(mgt.shapes(0, max_dims, min_side, 4), low=low, high=high, avoid=avoid, margin=0.1))
    kwargs = {}
    if draw(st.booleans()):
        kwargs["dim"] = draw(mgt.dims(x.ndim))
        kwargs["keepdim"] = draw(st.booleans())
    return Sample((x,), kwargs)


def _with_zeros(sample):
    """Set the small elements to exactly zero: prod's gradient must stay exact there."""
    x = _np(sample.args[0])
    return Sample((mg.tensor(np.where(np.abs(x) < 1.0, 0.0, x), requires_grad=True),), sample.kwargs)


def _np_prod(x, dim=None, keepdim=False):
    return np.prod(x, axis=dim if x.ndim else None, keepdims=keepdim)


@st.composite
def _cumprod_samples(draw, min_side=0):
    x = draw(t(mgt.shapes(0, 3, min_side, 4), low=-1.5, high=1.5, avoid=(0.0,), margin=0.1))
    return Sample((x,), {"dim": draw(mgt.dims(x.ndim))})


def _np_cumprod(x, dim):
    return np.cumprod(x, axis=dim) if x.ndim else x


@st.composite
def _sum_to_samples(draw):
    target = draw(mgt.shapes(0, 3, 1, 3))
    stretched = tuple(s if s != 1 else draw(st.integers(1, 3)) for s in target)
    lead = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    return Sample((draw(t(lead + stretched)), target))


def _np_sum_to(x, shape):
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape) if s == 1)
    return x.sum(axis=axes, keepdims=True).reshape(shape)


REDUCTIONS = [
    reduction("sum", mg.sum, np.sum),
    reduction("mean", mg.mean, np.mean, min_side=1),
    OpInfo("var", mg.var, _var_samples(), _np_var(np.var), singular=_constant_var_samples()),
    OpInfo("std", mg.std, _var_samples(), _np_var(np.std), singular=_constant_var_samples()),
    reduction("amax", mg.amax, np.amax, distinct=True, min_side=1),
    reduction("amin", mg.amin, np.amin, distinct=True, min_side=1),
    reduction("max_full", lambda x: x.max(), np.max, dims=False, distinct=True, min_side=1),
    reduction("min_full", lambda x: x.min(), np.min, dims=False, distinct=True, min_side=1),
    OpInfo(
        "max_dim",
        lambda x, d, keepdim: tuple(mg.max(x, d, keepdim)),
        _max_dim_samples(),
        _np_max_dim(np.max, np.argmax),
    ),
    OpInfo(
        "min_dim",
        lambda x, d, keepdim: tuple(mg.min(x, d, keepdim)),
        _max_dim_samples(),
        _np_max_dim(np.min, np.argmin),
    ),
    OpInfo("argmax", mg.argmax, _arg_samples(), _np_arg(np.argmax), grad=False, gradgrad=False),
    OpInfo("argmin", mg.argmin, _arg_samples(), _np_arg(np.argmin), grad=False, gradgrad=False),
    OpInfo(
        "logsumexp",
        lambda x, dim=None, keepdim=False: mg.logsumexp(x, dim, keepdim),
        _reduce_samples(low=-3, high=3, min_side=1),
        lambda x, dim=None, keepdim=False: np.log(np.exp(x).sum(axis=_np_dims({"dim": dim}), keepdims=keepdim)),
    ),
    # Products of many large factors drown finite differences in round-off, and tiny
    # nonzero factors make out / x badly conditioned: exact zeros have their own entry.
    OpInfo("prod", mg.prod, _single_dim_samples(low=-1.5, high=1.5, avoid=(0.0,), max_dims=2), _np_prod),
    OpInfo(
        "prod_with_zeros",
        mg.prod,
        _single_dim_samples(min_side=2, low=-1.5, high=1.5, max_dims=2).map(_with_zeros),
        _np_prod,
    ),
    OpInfo(
        "cumsum",
        lambda x, dim: mg.cumsum(x, dim),
        t().flatmap(lambda x: mgt.dims(x.ndim).map(lambda d: Sample((x, d)))),
        lambda x, dim: np.cumsum(x, axis=dim) if x.ndim else x,
    ),
    # Like prod: factors kept away from 0 here, exact zeros (one or several) in their own entry
    OpInfo("cumprod", mg.cumprod, _cumprod_samples(), _np_cumprod),
    OpInfo("cumprod_with_zeros", mg.cumprod, _cumprod_samples(min_side=2).map(_with_zeros), _np_cumprod),
    OpInfo("sum_to", mg.sum_to, _sum_to_samples(), _np_sum_to),
]


# ----------------------------------------------------------------------------- shape
@st.composite
def _reshape_samples(draw, view=False):
    x = draw(t(contiguous=True if view else None))
    n = x.numel()
    options = [(n,), (1, n), (-1,), x.shape[::-1], (*x.shape, 1)]
    if n and n % 2 == 0:
        options += [(2, -1), (n // 2, 2)]
    return Sample((x, draw(st.sampled_from(options))))


@st.composite
def _permute_samples(draw):
    x = draw(t())
    return Sample((x, draw(mgt.permutations_of(x.ndim))))


@st.composite
def _transpose_samples(draw):
    x = draw(t(mgt.shapes(1, 4, 0, 3)))
    return Sample((x, draw(mgt.dims(x.ndim)), draw(mgt.dims(x.ndim))))


@st.composite
def _squeeze_samples(draw):
    shape = draw(mgt.shapes(0, 4, 1, 3))
    x = draw(t(tuple(1 if draw(st.booleans()) else s for s in shape)))
    dim = draw(st.one_of(st.none(), mgt.dims(x.ndim))) if x.ndim else None
    return Sample((x,), {} if dim is None else {"dim": dim})


@st.composite
def _unsqueeze_samples(draw):
    x = draw(t())
    return Sample((x, draw(st.integers(-x.ndim - 1, x.ndim))))


@st.composite
def _expand_samples(draw):
    shape = draw(mgt.shapes(0, 3, 1, 3))
    base = tuple(1 if draw(st.booleans()) else s for s in shape)
    lead = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    sizes = lead + tuple(-1 if b == s and draw(st.booleans()) else s for b, s in zip(base, shape))
    return Sample((draw(t(base)), sizes))


def _np_expand(x, sizes):
    lead = len(sizes) - x.ndim
    shape = tuple(x.shape[i - lead] if s == -1 else s for i, s in enumerate(sizes))
    return np.broadcast_to(x, shape)


@st.composite
def _repeat_samples(draw):
    x = draw(t(mgt.shapes(0, 3, 1, 3)))
    extra = draw(st.integers(0, 2))
    return Sample((x, tuple(draw(st.integers(1, 3)) for _ in range(x.ndim + extra))))


@st.composite
def _cat_samples(draw, stack=False):
    shape = draw(mgt.shapes(1, 3, 1, 3))
    dim = draw(st.integers(-len(shape) - stack, len(shape) - 1 + stack))
    pieces = []
    for _ in range(draw(st.integers(1, 3))):
        own = list(shape)
        if not stack:
            own[dim % len(shape)] = draw(st.integers(0, 3))
        pieces.append(draw(t(tuple(own))))
    return Sample((pieces, dim))


def _flat_arrays(pieces):
    return [_np(p) if isinstance(p, mg.Tensor) else p for p in pieces]


@st.composite
def _split_samples(draw, chunk=False):
    x = draw(t(mgt.shapes(1, 3, 1, 5)))
    dim = draw(mgt.dims(x.ndim))
    n = x.shape[dim]
    if chunk:
        return Sample((x, draw(st.integers(1, n + 1)), dim))
    if draw(st.booleans()):
        return Sample((x, draw(st.integers(1, n + 1)), dim))
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=3)))
    sizes = [b - a for a, b in zip([0, *cuts], [*cuts, n])]
    return Sample((x, sizes, dim))


def _np_split(x, size, dim):
    n = x.shape[dim]
    sizes = [min(size, n - s) for s in range(0, n, size)] if isinstance(size, int) else size
    return tuple(np.split(x, np.cumsum(sizes)[:-1], axis=dim))


def _np_chunk(x, chunks, dim):
    n = x.shape[dim]
    return _np_split(x, max(-(-n // chunks), 1), dim)


@st.composite
def _flip_samples(draw):
    x = draw(t(mgt.shapes(1, 3, 0, 3)))
    return Sample((x, draw(st.lists(st.integers(0, x.ndim - 1), min_size=1, max_size=x.ndim, unique=True))))


@st.composite
def _roll_samples(draw):
    """Negative and overlong shifts; dims None (the flattened tensor), an int, or a tuple
    that may name a dim twice (its shifts add up)."""
    x = draw(t(mgt.shapes(0, 3, 0, 4)))
    shift = st.integers(-6, 6)
    kind = draw(st.sampled_from(["flat", "int", "tuple"] if x.ndim else ["flat"]))
    if kind == "flat":
        return Sample((x, draw(shift)))
    if kind == "int":
        return Sample((x, draw(shift), draw(mgt.dims(x.ndim))))
    dims = tuple(draw(st.lists(mgt.dims(x.ndim), min_size=1, max_size=3)))
    return Sample((x, tuple(draw(shift) for _ in dims), dims))


def _np_roll(x, shifts, dims=None):
    return np.roll(x, shifts, axis=dims)


@st.composite
def _tile_samples(draw):
    """``dims`` shorter than, as long as, or longer than ``x.ndim``; zeros empty the result."""
    x = draw(t(mgt.shapes(0, 3, 1, 3)))
    return Sample((x, tuple(draw(st.lists(st.integers(0, 3), max_size=x.ndim + 2)))))


@st.composite
def _triangle_samples(draw):
    x = draw(t(mgt.shapes(2, 3, 1, 4)))
    return Sample((x,), {"diagonal": draw(st.integers(-2, 2))})


@st.composite
def _flatten_samples(draw):
    x = draw(t())
    if x.ndim == 0:
        return Sample((x,))
    a, b = sorted(draw(st.lists(st.integers(0, x.ndim - 1), min_size=2, max_size=2)))
    return Sample((x, a, b))


def _np_flatten(x, start=0, end=-1):
    if x.ndim == 0:
        return x.reshape(1)
    end = end % x.ndim
    return (
        x.reshape(x.shape[:start] + (-1,) + x.shape[end + 1 :])
        if x.size
        else x.reshape(x.shape[:start] + (int(np.prod(x.shape[start : end + 1])),) + x.shape[end + 1 :])
    )


@st.composite
def _movedim_samples(draw):
    x = draw(t(mgt.shapes(1, 4, 1, 3)))
    return Sample((x, draw(mgt.dims(x.ndim)), draw(mgt.dims(x.ndim))))


SHAPE_OPS = [
    OpInfo("reshape", mg.reshape, _reshape_samples(), np.reshape),
    OpInfo("view", mg.view, _reshape_samples(view=True), np.reshape),
    OpInfo("flatten", mg.flatten, _flatten_samples(), _np_flatten),
    OpInfo("permute", mg.permute, _permute_samples(), np.transpose),
    OpInfo("transpose", mg.transpose, _transpose_samples(), lambda x, a, b: np.swapaxes(x, a, b)),
    unary("T", lambda x: x.T, lambda x: x.T),
    unary("mT", lambda x: x.mT, lambda x: np.swapaxes(x, -1, -2), shape=mgt.shapes(2, 4, 0, 3)),
    OpInfo(
        "squeeze",
        mg.squeeze,
        _squeeze_samples(),
        lambda x, dim=None: np.squeeze(x, axis=dim if dim is None or x.shape[dim] == 1 else ()) if x.ndim else x,
    ),
    OpInfo("unsqueeze", mg.unsqueeze, _unsqueeze_samples(), np.expand_dims),
    OpInfo("expand", mg.expand, _expand_samples(), _np_expand),
    OpInfo("repeat", mg.repeat, _repeat_samples(), np.tile),
    unary(
        "contiguous", lambda x: x.mT.contiguous(), lambda x: np.swapaxes(x, -1, -2).copy(), shape=mgt.shapes(2, 3, 1, 3)
    ),
    OpInfo("cat", mg.cat, _cat_samples(), lambda pieces, dim: np.concatenate(_flat_arrays(pieces), axis=dim)),
    OpInfo("stack", mg.stack, _cat_samples(stack=True), lambda pieces, dim: np.stack(_flat_arrays(pieces), axis=dim)),
    OpInfo("split", mg.split, _split_samples(), _np_split),
    OpInfo("chunk", mg.chunk, _split_samples(chunk=True), _np_chunk),
    OpInfo(
        "unbind",
        lambda x, d: mg.unbind(x, d),
        t(mgt.shapes(1, 3, 1, 3)).flatmap(lambda x: mgt.dims(x.ndim).map(lambda d: Sample((x, d)))),
        lambda x, d: tuple(np.moveaxis(x, d, 0)),
    ),
    OpInfo("flip", mg.flip, _flip_samples(), lambda x, dims: np.flip(x, axis=tuple(dims))),
    OpInfo("roll", mg.roll, _roll_samples(), _np_roll),
    OpInfo("tile", mg.tile, _tile_samples(), np.tile),
    OpInfo("tril", mg.tril, _triangle_samples(), lambda x, diagonal: np.tril(x, diagonal)),
    OpInfo("triu", mg.triu, _triangle_samples(), lambda x, diagonal: np.triu(x, diagonal)),
    OpInfo("movedim", mg.movedim, _movedim_samples(), np.moveaxis),
]


# ----------------------------------------------------------------------------- index
@st.composite
def _getitem_samples(draw):
    x = draw(t(mgt.shapes(1, 3, 1, 4)))
    return Sample((x, draw(mgt.index_expressions(x.shape))))


@st.composite
def _index_put_samples(draw):
    x = draw(t(mgt.shapes(1, 3, 1, 4)))
    index = draw(mgt.index_expressions(x.shape))
    target = np.zeros(x.shape)[index].shape
    if draw(st.booleans()):
        return Sample((x, index, draw(st.floats(-2, 2))))
    values = draw(t(tuple(1 if draw(st.booleans()) else s for s in target)))
    return Sample((x, index, values))


def _np_index_put(x, index, values):
    out = x.copy()
    out[index] = values
    return out


def _unique_positions(index, shape):
    """index_put with repeated positions keeps an arbitrary one: keep positions unique."""
    probe = np.arange(int(np.prod(shape))).reshape(shape)[index]
    return len(np.unique(probe)) == probe.size


@st.composite
def _gather_samples(draw, scatter=False):
    x = draw(t(mgt.shapes(1, 3, 1, 4)))
    dim = draw(mgt.dims(x.ndim))
    shape = tuple(
        draw(st.integers(1, s)) if d != dim % x.ndim else draw(st.integers(1, 4)) for d, s in enumerate(x.shape)
    )
    index = mg.tensor(draw(mgt.arrays(shape, dtype=np.int64, low=0, high=x.shape[dim] - 1)))
    if scatter:
        return Sample((x, dim, index, draw(t(shape))))
    return Sample((x, dim, index))


def _np_gather(x, dim, index):
    window = tuple(slice(None) if d == dim % x.ndim else slice(0, s) for d, s in enumerate(index.shape))
    return np.take_along_axis(x[window], index, axis=dim)


def _np_scatter_add(x, dim, index, src):
    out = x.copy()
    coords = list(np.indices(index.shape, sparse=True))
    coords[dim % x.ndim] = index
    np.add.at(out, tuple(coords), src[tuple(slice(0, s) for s in index.shape)])
    return out


@st.composite
def _masked_fill_samples(draw):
    shape_x, shape_m = draw(mgt.broadcastable_shapes(2))
    x = draw(t(shape_x))
    if np.broadcast_shapes(shape_x, shape_m) != tuple(x.shape):
        shape_m = ()
    mask = mg.tensor(draw(mgt.arrays(shape_m, dtype=np.int64, low=0, high=1)).astype(bool))
    return Sample((x, mask, draw(st.floats(-2, 2))))


@st.composite
def _index_select_samples(draw):
    x = draw(t(mgt.shapes(1, 3, 1, 4)))
    dim = draw(mgt.dims(x.ndim))
    index = mg.tensor(draw(mgt.arrays((draw(st.integers(0, 5)),), dtype=np.int64, low=0, high=x.shape[dim] - 1)))
    return Sample((x, dim, index))


@st.composite
def _index_scatter_samples(draw):
    shape = draw(mgt.shapes(1, 3, 1, 4))
    index = draw(mgt.index_expressions(shape))
    values = draw(t(np.zeros(shape)[index].shape))
    return Sample((values,), {"index": index, "shape": shape})


def _np_index_scatter(values, index, shape):
    out = np.zeros(shape)
    np.add.at(out, index, values)
    return out


_FEW_VALUES = st.sampled_from([-1.0, 0.0, 0.5, 2.0])


@st.composite
def _sort_samples(draw, ties=False, topk=False):
    """Distinct values (for the gradient), or ``ties=True``: a few values drawn again and
    again, for the order of ties (forward only)."""
    shape = draw(mgt.shapes(0, 3, 0, 4))
    if ties:
        x = mg.tensor(draw(hnp.arrays(np.float64, shape, elements=_FEW_VALUES)))
    else:
        x = draw(t(shape, distinct=True))
    dim = draw(mgt.dims(x.ndim))
    if not topk:
        return Sample((x,), {"dim": dim, "descending": draw(st.booleans())})
    size = x.shape[dim] if x.ndim else 1
    return Sample((x, draw(st.integers(0, size))), {"dim": dim, "largest": draw(st.booleans())})


def _np_sort(x, dim=-1, descending=False):
    """Stable: ties keep their order in both directions (argsort of -x for descending)."""
    if x.ndim == 0:
        return x, np.int64(0)
    order = np.argsort(-x if descending else x, axis=dim, kind="stable")
    return np.take_along_axis(x, order, axis=dim), order


def _np_topk(x, k, dim=-1, largest=True):
    values, order = _np_sort(x, dim, descending=largest)
    if x.ndim == 0:
        return values, order
    first_k = (slice(None),) * (dim % x.ndim) + (slice(0, k),)
    return values[first_k], order[first_k]


INDEX_OPS = [
    OpInfo("sort", lambda x, **kw: tuple(mg.sort(x, **kw)), _sort_samples(), _np_sort),
    OpInfo("topk", lambda x, k, **kw: tuple(mg.topk(x, k, **kw)), _sort_samples(topk=True), _np_topk),
    OpInfo(
        "sort_ties",
        lambda x, **kw: tuple(mg.sort(x, **kw)),
        _sort_samples(ties=True),
        _np_sort,
        grad=False,
        gradgrad=False,
    ),
    OpInfo(
        "topk_ties",
        lambda x, k, **kw: tuple(mg.topk(x, k, **kw)),
        _sort_samples(ties=True, topk=True),
        _np_topk,
        grad=False,
        gradgrad=False,
    ),
    OpInfo("getitem", lambda x, index: x[index], _getitem_samples(), lambda x, index: x[index]),
    OpInfo(
        "index_put",
        lambda x, index, values: mg.ops.index.index_put(x, index, values),
        _index_put_samples().filter(lambda s: _unique_positions(s.args[1], s.args[0].shape)),
        _np_index_put,
    ),
    OpInfo(
        "setitem",
        lambda x, index, values: _setitem(x, index, values),
        _index_put_samples().filter(lambda s: _unique_positions(s.args[1], s.args[0].shape)),
        _np_index_put,
    ),
    OpInfo(
        "index_scatter",
        lambda values, index, shape: IndexScatter.apply(values, index=index, shape=shape),
        _index_scatter_samples(),
        _np_index_scatter,
    ),
    OpInfo("gather", mg.gather, _gather_samples(), _np_gather),
    OpInfo("scatter_add", mg.scatter_add, _gather_samples(scatter=True), _np_scatter_add),
    OpInfo("masked_fill", mg.masked_fill, _masked_fill_samples(), lambda x, m, v: np.where(m, v, x)),
    OpInfo("index_select", mg.index_select, _index_select_samples(), lambda x, d, i: np.take(x, i, axis=d)),
]


def _setitem(x, index, values):
    out = x * 1.0  # a non-leaf copy: in-place changes to it are recorded
    out[index] = values
    return out


# ----------------------------------------------------------------------------- linalg
@st.composite
def _matmul_samples(draw):
    n, k, m = (draw(st.integers(1, 4)) for _ in range(3))
    kind = draw(st.sampled_from(["mm", "vec-mat", "mat-vec", "dot", "batched"]))
    if kind == "mm":
        return Sample((draw(t((n, k))), draw(t((k, m)))))
    if kind == "vec-mat":
        return Sample((draw(t((k,))), draw(t((draw(st.integers(1, 2)), k, m)))))
    if kind == "mat-vec":
        return Sample((draw(t((draw(st.integers(1, 2)), n, k))), draw(t((k,)))))
    if kind == "dot":
        return Sample((draw(t((k,))), draw(t((k,)))))
    batch_a, batch_b = draw(mgt.broadcastable_shapes(2, max_dims=2, max_side=3))
    return Sample((draw(t(batch_a + (n, k))), draw(t(batch_b + (k, m)))))


EQUATIONS = {
    "ij,jk->ik": [(2, 3), (3, 4)],
    "bij,bjk->bik": [(2, 2, 3), (2, 3, 2)],
    "i,i->": [(4,), (4,)],
    "ij->j": [(3, 2)],
    "ij->ji": [(3, 2)],
    "ij,k->ijk": [(2, 3), (2,)],
    "ij,jk,kl->il": [(2, 3), (3, 2), (2, 2)],
    "...ij,...jk->...ik": [(3, 1, 2, 3), (2, 3, 2)],
    "ij,ij": [(2, 3), (2, 3)],
    "bhqd,bhkd->bhqk": [(1, 2, 3, 4), (1, 2, 2, 4)],
    # a letter repeated within an operand: diagonals and traces
    "ii->i": [(3, 3)],
    "ii": [(3, 3)],
    "bii->bi": [(2, 3, 3)],
    "iij->j": [(2, 2, 3)],
    "iji->ij": [(2, 3, 2)],
    "iii->i": [(2, 2, 2)],
    "...ii->...i": [(2, 1, 3, 3)],
    "ii,jj->ij": [(2, 2), (3, 3)],
    "ij,jj,jk->ik": [(2, 3), (3, 3), (3, 2)],
    # implicit outputs, size-1 broadcasting, many operands
    "ba": [(2, 3)],
    "ij,ij->ij": [(1, 3), (2, 3)],
    "a,b,c,d->abcd": [(2,), (1,), (2,), (3,)],
    "i,i,i,i->": [(3,), (3,), (3,), (3,)],
}
SUBLISTS = {  # einsum(a, [0, 1], b, [1, 2], [0, 2]): the sublist form of the same equations
    "ij,jk->ik": ([0, 1], [1, 2], [0, 2]),
    "ii->i": ([0, 0], [0]),
    "...ij,...jk->...ik": ([Ellipsis, 0, 1], [Ellipsis, 1, 2], [Ellipsis, 0, 2]),
    "bii->bi": ([1, 0, 0], [1, 0]),
}


@st.composite
def _einsum_samples(draw):
    equation = draw(st.sampled_from(sorted(EQUATIONS)))
    return Sample((equation, *(draw(t(shape)) for shape in EQUATIONS[equation])))


@st.composite
def _einsum_sublist_samples(draw):
    equation = draw(st.sampled_from(sorted(SUBLISTS)))
    operands = [draw(t(shape)) for shape in EQUATIONS[equation]]
    *inputs, output = SUBLISTS[equation]
    return Sample(tuple(x for pair in zip(operands, inputs) for x in pair) + (output,))


def _np_einsum_sublist(*args):
    return np.einsum(*args)


@st.composite
def _linear_samples(draw):
    n_in, n_out = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    lead = draw(mgt.shapes(0, 2, 0, 3))
    bias = draw(st.one_of(st.none(), t((n_out,))))
    return Sample((draw(t(lead + (n_in,))), draw(t((n_out, n_in))), bias))


def _np_linear(x, weight, bias=None):
    return x @ weight.T + (0 if bias is None else bias)


LINALG_OPS = [
    OpInfo("linear", mg.functional.linear, _linear_samples(), _np_linear),
    OpInfo("matmul", mg.matmul, _matmul_samples(), np.matmul),
    OpInfo("einsum", mg.einsum, _einsum_samples(), lambda eq, *ops: np.einsum(eq, *ops)),
    OpInfo("einsum_sublist", mg.einsum, _einsum_sublist_samples(), _np_einsum_sublist),
]

OPS = ELEMENTWISE + REDUCTIONS + SHAPE_OPS + INDEX_OPS + LINALG_OPS
