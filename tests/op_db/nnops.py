"""OpInfos for the neural-network ops (API.md, "Functional"): activations, dropout, embedding,
normalisation, softmax and losses, attention."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

import minigrad as mg
import minigrad.functional as F
import minigrad.testing as mgt
from minigrad.ops.activation import GeluBackward
from minigrad.ops.norm import sync_batch_norm
from tests.op_db import OpInfo, Sample

_erf, _erfc = np.vectorize(math.erf, otypes=[float]), np.vectorize(math.erfc, otypes=[float])
SEED = 1234


def t(shape, **kw):
    return mgt.tensors(shape=shape, contiguous=kw.pop("contiguous", None), **kw)


@st.composite
def _constant_first(draw, samples, values=None):
    """``samples`` with every value of the first tensor set to one drawn constant: a zero
    variance (norms) or a zero vector (normalize, cosine similarity) makes their derivative 0/0."""
    sample = draw(samples)
    x = sample.args[0]
    value = draw(values if values is not None else st.floats(-2, 2))
    constant = mg.full(x.shape, value, dtype=x.dtype, requires_grad=True)
    return Sample((constant, *sample.args[1:]), sample.kwargs)


def _np(x):
    return x.detach().cpu().numpy()


NO_KWARGS = st.just({})


def _unary(name, op, ref, low=-3.0, high=3.0, avoid=(), kwargs=NO_KWARGS, shape=None, **kw):
    @st.composite
    def samples(draw):
        options = draw(kwargs)
        kinks = options.pop("_avoid", avoid)
        x = draw(t(shape or mgt.shapes(0, 3, 1, 4), low=low, high=high, avoid=kinks, margin=0.05))
        return Sample((x,), options)

    return OpInfo(name, op, samples(), ref, **kw)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _softplus(x, beta=1.0, threshold=20.0):
    return np.where(x * beta > threshold, x, np.log1p(np.exp(x * beta)) / beta)


def _gelu(x, approximate="none"):
    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    return 0.5 * x * _erfc(-x / math.sqrt(2))


def _gelu_derivative(x, approximate="none"):
    if approximate == "tanh":
        u = math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)
        du = math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * x**2)
        return 0.5 * (1 + np.tanh(u)) + 0.5 * x * (1 - np.tanh(u) ** 2) * du
    return 0.5 * (1 + _erf(x / math.sqrt(2))) + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


@st.composite
def _gelu_backward_samples(draw):
    """An incoming gradient and gelu's input, of one shape."""
    x = draw(t(mgt.shapes(0, 3, 1, 4)))
    kwargs = draw(st.sampled_from([{}, {"approximate": "tanh"}]))
    return Sample((draw(t(x.shape)), x), dict(kwargs))


@st.composite
def _hardtanh_kwargs(draw):
    low = draw(st.sampled_from([-1.0, -2.0, 0.5]))
    high = low + draw(st.sampled_from([0.5, 2.0]))
    return {"min_val": low, "max_val": high, "_avoid": (low, high)}


@st.composite
def _softplus_kwargs(draw):
    beta, threshold = draw(st.sampled_from([0.5, 1.0, 2.0])), draw(st.sampled_from([1.0, 20.0]))
    return {"beta": beta, "threshold": threshold, "_avoid": (threshold / beta,)}  # the switch to x is a kink


@st.composite
def _glu_samples(draw):
    shape = list(draw(mgt.shapes(1, 3, 1, 3)))
    dim = draw(mgt.dims(len(shape)))
    shape[dim] *= 2
    return Sample((draw(t(tuple(shape))),), {"dim": dim})


def _np_glu(x, dim=-1):
    a, b = np.split(x, 2, axis=dim)
    return a * _sigmoid(b)


ACTIVATIONS = [
    _unary(
        "leaky_relu",
        F.leaky_relu,
        lambda x, negative_slope=0.01: np.where(x > 0, x, x * negative_slope),
        avoid=(0.0,),
        kwargs=st.sampled_from([{}, {"negative_slope": 0.2}, {"negative_slope": -0.5}]).map(dict),
    ),
    _unary(
        "hardtanh",
        F.hardtanh,
        lambda x, min_val=-1.0, max_val=1.0: np.clip(x, min_val, max_val),
        kwargs=_hardtanh_kwargs(),
    ),
    _unary("relu6", F.relu6, lambda x: np.clip(x, 0, 6), low=-2.0, high=8.0, avoid=(0.0, 6.0)),
    _unary(
        "gelu",
        F.gelu,
        _gelu,
        kwargs=st.sampled_from([{}, {"approximate": "tanh"}]).map(dict),
        exact=True,
    ),
    OpInfo(
        "gelu_backward",
        lambda grad, x, approximate="none": GeluBackward.apply(grad, x, approximate=approximate),
        _gelu_backward_samples(),
        lambda grad, x, approximate="none": grad * _gelu_derivative(x, approximate),
        ref_atol=1e-6,
    ),
    _unary("silu", F.silu, lambda x: x * _sigmoid(x)),
    _unary("softplus", F.softplus, _softplus, kwargs=_softplus_kwargs()),
    _unary(
        "elu",
        F.elu,
        lambda x, alpha=1.0: np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))),
        avoid=(0.0,),
        kwargs=st.sampled_from([{}, {"alpha": 0.5}, {"alpha": 2.0}]).map(dict),
    ),
    _unary("logsigmoid", F.logsigmoid, lambda x: -np.log1p(np.exp(-x))),
    _unary("mish", F.mish, lambda x: x * np.tanh(np.log1p(np.exp(x)))),
    OpInfo("glu", F.glu, _glu_samples(), _np_glu),
]


# ------------------------------------------------------------------ dropout, embedding
def _seeded(fn):
    """The op with the generator reseeded first: the same mask on every call (for gradcheck)."""

    def call(x, *args, **kwargs):
        mg.manual_seed(SEED)
        return fn(x, *args, **kwargs)

    return call


def _np_keep(shape, p):
    draw = np.random.default_rng(SEED).random(shape)
    return np.where(draw >= p, 1 / (1 - p) if p < 1 else 0.0, 0.0)


@st.composite
def _dropout_samples(draw, min_dims=1, max_dims=3):
    x = draw(t(mgt.shapes(min_dims, max_dims, 1, 4)))
    return Sample((x,), {"p": draw(st.sampled_from([0.0, 0.3, 0.5, 1.0])), "training": draw(st.booleans())})


def _np_dropout(mask_shape):
    def ref(x, p, training):
        if not training or p == 0:
            return x
        return x * _np_keep(mask_shape(x), p)

    return ref


@st.composite
def _embedding_samples(draw):
    """padding_idx and scale_grad_by_freq change the gradient on purpose: tests/test_nnops.py pins them."""
    n, dim = draw(st.integers(1, 5)), draw(st.integers(1, 3))
    weight = draw(t((n, dim)))
    index = mg.tensor(draw(mgt.arrays(draw(mgt.shapes(0, 2, 0, 4)), dtype=np.int64, low=0, high=n - 1)))
    return Sample((index, weight))


@st.composite
def _embedding_bag_samples(draw):
    """A 2-D input (B, L), or a 1-D one with offsets; either mode, maybe padding_idx and per-entry weights."""
    n, dim = draw(st.integers(1, 5)), draw(st.integers(1, 3))
    weight = draw(t((n, dim)))
    kwargs = {"mode": draw(st.sampled_from(["sum", "mean"])), "padding_idx": draw(st.none() | st.integers(0, n - 1))}
    if draw(st.booleans()):
        shape = draw(mgt.shapes(2, 2, 0, 4))
        args = (mg.tensor(draw(mgt.arrays(shape, dtype=np.int64, low=0, high=n - 1))), weight)
    else:
        length = draw(st.integers(0, 6))
        cuts = sorted(draw(st.lists(st.integers(0, length), max_size=3)))
        args = (
            mg.tensor(draw(mgt.arrays((length,), dtype=np.int64, low=0, high=n - 1))),
            weight,
            mg.tensor([0, *cuts]),
        )
    if kwargs["mode"] == "sum" and draw(st.booleans()):
        kwargs["per_sample_weights"] = draw(t(tuple(args[0].shape)))
    return Sample(args, kwargs)


def _np_embedding_bag(index, weight, offsets=None, mode="mean", padding_idx=None, per_sample_weights=None):
    psw = np.ones(index.shape) if per_sample_weights is None else per_sample_weights
    if offsets is None:  # 2-D: each row a bag
        bags = list(zip(index, psw))
    else:
        ends = np.append(offsets[1:], len(index))
        bags = [(index[a:b], psw[a:b]) for a, b in zip(offsets, ends)]
    out = np.zeros((len(bags), weight.shape[1]))
    for b, (rows, scales) in enumerate(bags):
        kept = [(r, w) for r, w in zip(rows, scales) if r != padding_idx]
        out[b] = sum((weight[r] * w for r, w in kept), np.zeros(weight.shape[1]))
        if mode == "mean" and kept:
            out[b] /= len(kept)
    return out


DROPOUT_EMBEDDING = [
    OpInfo("dropout", _seeded(F.dropout), _dropout_samples(), _np_dropout(lambda x: x.shape)),
    OpInfo(
        "dropout2d",
        _seeded(F.dropout2d),
        _dropout_samples(3, 4),
        _np_dropout(lambda x: x.shape[:2] + (1,) * (x.ndim - 2)),
    ),
    OpInfo(
        "drop_path", _seeded(F.drop_path), _dropout_samples(), _np_dropout(lambda x: x.shape[:1] + (1,) * (x.ndim - 1))
    ),
    OpInfo(
        "embedding",
        F.embedding,
        _embedding_samples(),
        lambda index, weight: weight[index],
    ),
    OpInfo("embedding_bag", F.embedding_bag, _embedding_bag_samples(), _np_embedding_bag),
]


# ---------------------------------------------------------------------- normalisation
def _np_standardize(x, axes, eps, centered=True):
    mean = x.mean(axis=axes, keepdims=True) if centered else 0.0
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


def _affine(out, weight, bias, shape):
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


def _maybe(draw, strategy):
    return draw(strategy) if draw(st.booleans()) else None


@st.composite
def _batch_norm_samples(draw):
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    rest = draw(st.sampled_from([(), (2,), (2, 2), (1, 3)]))
    if n * math.prod(rest) < 2:
        n = 2
    x = draw(t((n, c) + rest, distinct=True, low=-2, high=2))
    training = draw(st.booleans())
    stats = None
    if not training or draw(st.booleans()):
        stats = (draw(mgt.arrays((c,), low=-1, high=1)), draw(mgt.arrays((c,), low=0.5, high=2)))
    kwargs = {
        "training": training,
        "momentum": draw(st.sampled_from([0.1, 0.5])),
        "eps": draw(st.sampled_from([1e-5, 0.1])),
    }
    return Sample((x, stats, _maybe(draw, t((c,))), _maybe(draw, t((c,)))), kwargs)


def _batch_norm(x, stats, weight, bias, **kwargs):
    """Fresh running statistics on every call: the op updates them in place."""
    running = (None, None) if stats is None else (mg.tensor(stats[0]), mg.tensor(stats[1]))
    return F.batch_norm(x, *running, weight, bias, **kwargs)


def _np_batch_norm(x, stats, weight, bias, training, momentum, eps):
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    if training:
        out = _np_standardize(x, axes, eps)
    else:
        out = (x - stats[0].reshape(shape)) / np.sqrt(stats[1].reshape(shape) + eps)
    return _affine(out, weight, bias, shape)


@st.composite
def _sync_batch_norm_samples(draw):
    """Training only (the op is batch norm over every process's batch; here, one process)."""
    sample = draw(_batch_norm_samples())
    x, _, weight, bias = sample.args
    return Sample((x, weight, bias), {"momentum": sample.kwargs["momentum"], "eps": sample.kwargs["eps"]})


def _sync_batch_norm(x, weight, bias, **kwargs):
    c = x.shape[1]
    return sync_batch_norm(x, mg.zeros(c, dtype=x.dtype), mg.ones(c, dtype=x.dtype), weight, bias, **kwargs)


def _np_sync_batch_norm(x, weight, bias, momentum, eps):
    return _np_batch_norm(x, None, weight, bias, True, momentum, eps)


@st.composite
def _layer_norm_samples(draw, rms=False):
    shape = draw(mgt.shapes(1, 3, 1, 4))
    k = draw(st.integers(1, len(shape)))
    normalized = shape[len(shape) - k :]
    if math.prod(normalized) < 2:
        normalized, shape = (2,) + normalized[1:], shape[: len(shape) - k] + (2,) + normalized[1:]
    x = draw(t(shape, distinct=True, low=-2, high=2))
    weight = _maybe(draw, t(normalized))
    if rms:
        return Sample((x, normalized, weight), {"eps": draw(st.sampled_from([None, 1e-5]))})
    return Sample((x, normalized, weight, _maybe(draw, t(normalized))), {"eps": draw(st.sampled_from([1e-5, 0.1]))})


def _np_layer_norm(x, normalized, weight=None, bias=None, eps=1e-5):
    axes = tuple(range(x.ndim - len(normalized), x.ndim))
    return _affine(_np_standardize(x, axes, eps), weight, bias, normalized)


def _np_rms_norm(x, normalized, weight=None, eps=None):
    axes = tuple(range(x.ndim - len(normalized), x.ndim))
    eps = np.finfo(x.dtype).eps if eps is None else eps
    return _affine(_np_standardize(x, axes, eps, centered=False), weight, None, normalized)


@st.composite
def _group_norm_samples(draw):
    groups, per_group = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    c = groups * per_group
    rest = draw(st.sampled_from([(), (2,), (2, 2)]))
    if per_group * math.prod(rest) < 2:
        rest = (2,)
    x = draw(t((draw(st.integers(1, 2)), c) + rest, distinct=True, low=-2, high=2))
    return Sample((x, groups, _maybe(draw, t((c,))), _maybe(draw, t((c,)))))


def _np_group_norm(x, groups, weight=None, bias=None, eps=1e-5):
    grouped = x.reshape(x.shape[0], groups, -1)
    out = _np_standardize(grouped, (2,), eps).reshape(x.shape)
    return _affine(out, weight, bias, (1, x.shape[1]) + (1,) * (x.ndim - 2))


@st.composite
def _instance_norm_samples(draw):
    c = draw(st.integers(1, 3))
    spatial = draw(st.sampled_from([(3,), (2, 2), (1, 3)]))
    x = draw(t((draw(st.integers(1, 2)), c) + spatial, distinct=True, low=-2, high=2))
    return Sample((x, None, None, _maybe(draw, t((c,))), _maybe(draw, t((c,)))))


def _np_instance_norm(x, running_mean, running_var, weight=None, bias=None):
    return _np_group_norm(x, x.shape[1], weight, bias)


@st.composite
def _normalize_samples(draw):
    x = draw(t(mgt.shapes(1, 3, 1, 4), avoid=(0.0,), margin=0.1))
    return Sample((x,), {"p": draw(st.sampled_from([1.5, 2.0, 3.0])), "dim": draw(mgt.dims(x.ndim))})


def _np_normalize(x, p=2.0, dim=1, eps=1e-12):
    norm = (np.abs(x) ** p).sum(axis=dim, keepdims=True) ** (1 / p)
    return x / np.maximum(norm, eps)


NORMS = [
    OpInfo(
        "batch_norm",
        _batch_norm,
        _batch_norm_samples(),
        _np_batch_norm,
        singular=_constant_first(_batch_norm_samples()),
    ),
    OpInfo(
        "sync_batch_norm",
        _sync_batch_norm,
        _sync_batch_norm_samples(),
        _np_sync_batch_norm,
        singular=_constant_first(_sync_batch_norm_samples()),
    ),
    OpInfo(
        "layer_norm",
        F.layer_norm,
        _layer_norm_samples(),
        _np_layer_norm,
        singular=_constant_first(_layer_norm_samples()),
    ),
    OpInfo(
        "group_norm",
        F.group_norm,
        _group_norm_samples(),
        _np_group_norm,
        singular=_constant_first(_group_norm_samples()),
    ),
    OpInfo(
        "instance_norm",
        F.instance_norm,
        _instance_norm_samples(),
        _np_instance_norm,
        singular=_constant_first(_instance_norm_samples()),
    ),
    OpInfo(
        "rms_norm",
        F.rms_norm,
        _layer_norm_samples(rms=True),
        _np_rms_norm,
        singular=_constant_first(_layer_norm_samples(rms=True), st.just(0.0)),
    ),
    OpInfo(
        "normalize",
        F.normalize,
        _normalize_samples(),
        _np_normalize,
        singular=_constant_first(_normalize_samples(), st.just(0.0)),
    ),
]


# ------------------------------------------------------------------ softmax and losses
REDUCTION = st.sampled_from(["mean", "sum", "none"])


def _np_reduce(loss, reduction):
    return {"mean": np.mean, "sum": np.sum}.get(reduction, lambda a: a)(loss)


@st.composite
def _softmax_samples(draw):
    x = draw(t(mgt.shapes(1, 3, 1, 4)))
    return Sample((x, draw(mgt.dims(x.ndim))))


def _np_log_softmax(x, dim):
    shifted = x - x.max(axis=dim, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))


@st.composite
def _class_samples(draw, probabilities_allowed=True):
    """Logits (C,), (N, C) or (N, C, d); class-index targets (some ignored) or probabilities."""
    c = draw(st.integers(1, 4))
    layout = draw(st.sampled_from([(c,), (draw(st.integers(1, 3)), c), (draw(st.integers(1, 2)), c, 2)]))
    x = draw(t(layout))
    kwargs = {"reduction": draw(REDUCTION)}
    weight = _maybe(draw, mgt.tensors(shape=(c,), low=0.5, high=2.0, requires_grad=False))
    if weight is not None:
        kwargs["weight"] = weight
    if probabilities_allowed and draw(st.booleans()):
        target = draw(t(layout, low=0.0, high=1.0))
        if draw(st.booleans()):
            target = target.detach()
    else:
        shape = layout[1:] if len(layout) == 1 else layout[:1] + layout[2:]
        indices = draw(mgt.arrays(shape, dtype=np.int64, low=0, high=c - 1))
        if c > 1 and draw(st.booleans()):  # ignore class 0, but never every target (the mean would be 0/0)
            flat = indices.ravel().copy()
            flat[0] = 1
            indices = flat.reshape(indices.shape)
            kwargs["ignore_index"] = 0
        target = mg.tensor(indices)
    if probabilities_allowed:
        kwargs["label_smoothing"] = draw(st.sampled_from([0.0, 0.1]))
    return Sample((x, target), kwargs)


def _np_cross_entropy(x, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    logp = _np_log_softmax(x, 0 if x.ndim == 1 else 1)
    return _np_nll(logp, target, weight, ignore_index, reduction, label_smoothing)


def _np_nll(logp, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """PyTorch's rules, with the class dim moved last."""
    logp = np.moveaxis(logp, 1, -1) if logp.ndim > 1 else logp
    c = logp.shape[-1]
    w = np.ones(c) if weight is None else np.asarray(weight)
    if target.dtype.kind == "f":
        target = np.moveaxis(target, 1, -1) if target.ndim > 1 else target
        soft = target * (1 - label_smoothing) + label_smoothing / c
        loss = -(soft * w * logp).sum(-1)
        return loss.mean() if reduction == "mean" else _np_reduce(loss, reduction)
    valid = target != ignore_index
    safe = np.where(valid, target, 0)
    row_weight = w[safe] * valid
    nll = -np.take_along_axis(logp, safe[..., None], -1)[..., 0] * row_weight
    smooth = -(logp * w).sum(-1) * valid
    loss = (1 - label_smoothing) * nll + label_smoothing / c * smooth
    if reduction == "mean":
        return loss.sum() / row_weight.sum()
    return _np_reduce(loss, reduction)


@st.composite
def _nll_samples(draw):
    sample = draw(_class_samples(probabilities_allowed=False))
    return Sample(sample.args, sample.kwargs)


@st.composite
def _pair_samples(draw, avoid=(), low=-3.0, high=3.0, target_low=-3.0, target_high=3.0, kwargs=NO_KWARGS):
    """(input, target) with input - target kept away from the kinks in ``avoid``."""
    shape = draw(mgt.shapes(0, 3, 1, 4))
    target = draw(t(shape, low=target_low, high=target_high))
    diff = draw(mgt.arrays(shape, low=-2, high=2, avoid=avoid, margin=0.1))
    x = mg.tensor(_np(target) + diff, requires_grad=True) if avoid else draw(t(shape, low=low, high=high))
    options = {"reduction": draw(REDUCTION), **draw(kwargs)}
    if draw(st.booleans()):
        target = target.detach()
    return Sample((x, target), options)


def _np_smooth_l1(x, y, reduction="mean", beta=1.0):
    d = np.abs(x - y)
    return _np_reduce(np.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta), reduction)


def _np_huber(x, y, reduction="mean", delta=1.0):
    d = np.abs(x - y)
    return _np_reduce(np.where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta)), reduction)


@st.composite
def _bce_samples(draw, logits=False):
    shape = draw(mgt.shapes(0, 3, 1, 4))
    x = draw(t(shape) if logits else t(shape, low=0.05, high=0.95))
    target = draw(t(shape, low=0.0, high=1.0))
    kwargs = {"reduction": draw(REDUCTION)}
    if draw(st.booleans()):
        kwargs["weight"] = draw(mgt.tensors(shape=shape[-1:], low=0.5, high=2.0, requires_grad=False))
    if logits and shape and draw(st.booleans()):
        kwargs["pos_weight"] = draw(mgt.tensors(shape=shape[-1:], low=0.5, high=3.0, requires_grad=False))
    return Sample((x, target), kwargs)


def _np_bce(x, t, weight=None, reduction="mean"):
    loss = -(t * np.log(x) + (1 - t) * np.log1p(-x)) * (1 if weight is None else np.asarray(weight))
    return _np_reduce(loss, reduction)


def _np_bce_logits(x, t, weight=None, reduction="mean", pos_weight=None):
    log_sig, log_rest = -np.logaddexp(0, -x), -np.logaddexp(0, x)
    pw = 1 if pos_weight is None else np.asarray(pos_weight)
    loss = -(pw * t * log_sig + (1 - t) * log_rest) * (1 if weight is None else np.asarray(weight))
    return _np_reduce(loss, reduction)


@st.composite
def _kl_samples(draw):
    shape = draw(mgt.shapes(1, 3, 1, 4))
    log_target = draw(st.booleans())
    target = draw(t(shape) if log_target else t(shape, low=0.05, high=1.0))
    reduction = draw(st.sampled_from(["mean", "sum", "none", "batchmean"]))
    return Sample((draw(t(shape)), target), {"reduction": reduction, "log_target": log_target})


def _np_kl(x, target, reduction="mean", log_target=False):
    loss = np.exp(target) * (target - x) if log_target else target * (np.log(target) - x)
    if reduction == "batchmean":
        return loss.sum() / x.shape[0]
    return _np_reduce(loss, reduction)


@st.composite
def _similarity_samples(draw):
    shape_a, shape_b = draw(mgt.broadcastable_shapes(2, min_dims=1, max_dims=3))
    shape = np.broadcast_shapes(shape_a, shape_b)
    a, b = draw(t(shape_a, avoid=(0.0,), margin=0.3)), draw(t(shape_b, avoid=(0.0,), margin=0.3))  # no zero vectors
    return Sample((a, b), {"dim": draw(mgt.dims(len(shape))), "eps": 1e-8})


def _np_cosine_similarity(a, b, dim=1, eps=1e-8):
    a, b = np.broadcast_arrays(a, b)
    na = np.maximum(np.sqrt((a * a).sum(dim, keepdims=True)), eps)
    nb = np.maximum(np.sqrt((b * b).sum(dim, keepdims=True)), eps)
    return (a / na * b / nb).sum(dim)


@st.composite
def _distance_samples(draw, count=2):
    """An anchor and points at offsets of at least 0.3 per element (distances stay away from 0)."""
    shape = draw(mgt.shapes(1, 2, 1, 4))
    anchor = draw(t(shape))
    others = [anchor.detach() + draw(t(shape, low=-2, high=2, avoid=(0.0,), margin=0.3)) for _ in range(count - 1)]
    others = [mg.tensor(_np(o), requires_grad=True) for o in others]
    return Sample((anchor, *others), {"p": draw(st.sampled_from([2.0, 3.0]))})


def _np_distance(a, b, p=2.0, eps=1e-6):
    return (np.abs(a - b + eps) ** p).sum(-1) ** (1 / p)


def _np_triplet(a, pos, neg, margin=1.0, p=2.0, eps=1e-6, swap=False, reduction="mean"):
    d_neg = _np_distance(a, neg, p, eps)
    if swap:
        d_neg = np.minimum(d_neg, _np_distance(pos, neg, p, eps))
    return _np_reduce(np.maximum(margin + _np_distance(a, pos, p, eps) - d_neg, 0), reduction)


@st.composite
def _triplet_samples(draw):
    sample = draw(_distance_samples(3))
    kwargs = {**sample.kwargs, "margin": draw(st.sampled_from([0.5, 1.0])), "swap": draw(st.booleans())}
    return Sample(sample.args, {**kwargs, "reduction": draw(REDUCTION)})


def _triplet_hinge_clear(sample):
    args = [_np(a) for a in sample.args]
    kw = {k: v for k, v in sample.kwargs.items() if k != "reduction"}
    d_neg = _np_distance(args[0], args[2], kw["p"])
    d_swap = _np_distance(args[1], args[2], kw["p"])
    hinge = kw["margin"] + _np_distance(args[0], args[1], kw["p"]) - np.minimum(d_neg, d_swap if kw["swap"] else d_neg)
    clear = np.all(np.abs(hinge) > 0.05) and np.all(d_swap > 0.1)
    return bool(clear and np.all(np.abs(d_neg - d_swap) > 0.05))


@st.composite
def _ranking_samples(draw):
    shape = draw(mgt.shapes(0, 2, 1, 4))
    target = mg.tensor(np.where(draw(mgt.arrays(shape, dtype=np.bool_)), 1.0, -1.0))
    kwargs = {"margin": draw(st.sampled_from([0.0, 0.5])), "reduction": draw(REDUCTION)}
    return Sample((draw(t(shape)), draw(t(shape)), target), kwargs)


def _np_ranking(a, b, target, margin=0.0, reduction="mean"):
    return _np_reduce(np.maximum(-target * (a - b) + margin, 0), reduction)


@st.composite
def _cosine_embedding_samples(draw):
    shape = draw(mgt.shapes(1, 2, 2, 4))
    target = mg.tensor(np.where(draw(mgt.arrays(shape[:-1], dtype=np.bool_)), 1, -1))
    kwargs = {"margin": draw(st.sampled_from([0.0, 0.3])), "reduction": draw(REDUCTION)}
    a, b = draw(t(shape, avoid=(0.0,), margin=0.3)), draw(t(shape, avoid=(0.0,), margin=0.3))
    return Sample((a, b, target), kwargs)


def _np_cos_rows(a, b):
    return (a * b).sum(-1) / np.sqrt(((a * a).sum(-1) + 1e-12) * ((b * b).sum(-1) + 1e-12))


def _np_cosine_embedding(a, b, target, margin=0.0, reduction="mean"):
    cos = _np_cos_rows(a, b)
    return _np_reduce(np.where(target == 1, 1 - cos, np.maximum(cos - margin, 0)), reduction)


@st.composite
def _views_samples(draw, min_rows=2):
    """Two embeddings (N, D) with no zero vectors (every element at least 0.3 from 0)."""
    shape = (draw(st.integers(min_rows, 4)), draw(st.integers(1, 4)))
    a, b = draw(t(shape, avoid=(0.0,), margin=0.3)), draw(t(shape, avoid=(0.0,), margin=0.3))
    if draw(st.booleans()):
        b = b.detach()
    return Sample((a, b))


def _np_unit(x, axis=-1):
    return x / np.sqrt((x * x).sum(axis, keepdims=True))


def _np_cross_entropy_rows(logits, target):
    """Each row's -log softmax(logits)[target]."""
    return -_np_log_softmax(logits, 1)[np.arange(len(target)), target]


def _np_nt_xent(z1, z2, temperature=0.5):
    z = _np_unit(np.concatenate([z1, z2]))
    n2 = len(z)
    similarity = z @ z.T / temperature
    losses = []
    for i in range(n2):
        others = [j for j in range(n2) if j != i]
        losses.append(_np_cross_entropy_rows(similarity[i, others][None], [others.index((i + n2 // 2) % n2)])[0])
    return np.mean(losses)


@st.composite
def _nt_xent_samples(draw):
    sample = draw(_views_samples())
    return Sample(sample.args, {"temperature": draw(st.sampled_from([0.5, 0.1]))})


@st.composite
def _info_nce_samples(draw):
    layout = draw(st.sampled_from(["in-batch", "shared", "per-query"]))
    query, positive = draw(_views_samples(min_rows=2 if layout == "in-batch" else 1)).args
    n, d = query.shape
    args = (query, positive)
    if layout != "in-batch":
        m = draw(st.integers(1, 3))
        args += (draw(t((m, d) if layout == "shared" else (n, m, d), avoid=(0.0,), margin=0.3)),)
    kwargs = {"temperature": draw(st.sampled_from([0.1, 0.5])), "reduction": draw(REDUCTION)}
    return Sample(args, kwargs)


def _np_info_nce(query, positive_key, negative_keys=None, temperature=0.1, reduction="mean"):
    q, positive = _np_unit(query), _np_unit(positive_key)
    if negative_keys is None:
        logits, target = q @ positive.T, np.arange(len(q))
    else:
        negative = _np_unit(negative_keys)
        negative_logits = q @ negative.T if negative.ndim == 2 else np.einsum("nd,nmd->nm", q, negative)
        logits = np.concatenate([(q * positive).sum(1, keepdims=True), negative_logits], 1)
        target = np.zeros(len(q), dtype=int)
    return _np_reduce(_np_cross_entropy_rows(logits / temperature, target), reduction)


@st.composite
def _ranking_negatives_samples(draw):
    hard = draw(st.booleans())
    anchors, positives = draw(_views_samples(min_rows=1 if hard else 2)).args
    args = (anchors, positives)
    if hard:
        args += (draw(t((draw(st.integers(1, 3)), anchors.shape[1]), avoid=(0.0,), margin=0.3)),)
    kwargs = {"scale": draw(st.sampled_from([20.0, 5.0])), "reduction": draw(REDUCTION)}
    return Sample(args, kwargs)


def _np_multiple_negatives_ranking(anchors, positives, negatives=None, scale=20.0, reduction="mean"):
    candidates = positives if negatives is None else np.concatenate([positives, negatives])
    scores = scale * _np_unit(anchors) @ _np_unit(candidates).T
    return _np_reduce(_np_cross_entropy_rows(scores, np.arange(len(anchors))), reduction)


LOSSES = [
    OpInfo("softmax", F.softmax, _softmax_samples(), lambda x, d: np.exp(_np_log_softmax(x, d))),
    OpInfo("log_softmax", F.log_softmax, _softmax_samples(), _np_log_softmax),
    OpInfo("cross_entropy", F.cross_entropy, _class_samples(), _np_cross_entropy),
    OpInfo("nll_loss", F.nll_loss, _nll_samples(), _np_nll),
    OpInfo("mse_loss", F.mse_loss, _pair_samples(), lambda x, y, reduction: _np_reduce((x - y) ** 2, reduction)),
    OpInfo(
        "l1_loss", F.l1_loss, _pair_samples(avoid=(0.0,)), lambda x, y, reduction: _np_reduce(np.abs(x - y), reduction)
    ),
    OpInfo(
        "smooth_l1_loss",
        F.smooth_l1_loss,
        _pair_samples(avoid=(0.0, -0.5, 0.5), kwargs=st.just({"beta": 0.5})),
        _np_smooth_l1,
    ),
    OpInfo(
        "huber_loss", F.huber_loss, _pair_samples(avoid=(0.0, -0.8, 0.8), kwargs=st.just({"delta": 0.8})), _np_huber
    ),
    OpInfo("binary_cross_entropy", F.binary_cross_entropy, _bce_samples(), _np_bce),
    OpInfo(
        "binary_cross_entropy_with_logits",
        F.binary_cross_entropy_with_logits,
        _bce_samples(logits=True),
        _np_bce_logits,
    ),
    OpInfo("kl_div", F.kl_div, _kl_samples(), _np_kl),
    OpInfo(
        "cosine_similarity",
        F.cosine_similarity,
        _similarity_samples(),
        _np_cosine_similarity,
        singular=_constant_first(_similarity_samples(), st.just(0.0)),
    ),
    OpInfo("pairwise_distance", F.pairwise_distance, _distance_samples(), _np_distance),
    OpInfo("triplet_margin_loss", F.triplet_margin_loss, _triplet_samples().filter(_triplet_hinge_clear), _np_triplet),
    OpInfo(
        "margin_ranking_loss",
        F.margin_ranking_loss,
        _ranking_samples().filter(
            lambda s: np.all(np.abs(-_np(s.args[2]) * (_np(s.args[0]) - _np(s.args[1])) + s.kwargs["margin"]) > 0.05)
        ),
        _np_ranking,
    ),
    OpInfo(
        "cosine_embedding_loss",
        F.cosine_embedding_loss,
        _cosine_embedding_samples().filter(
            lambda s: np.all(np.abs(_np_cos_rows(_np(s.args[0]), _np(s.args[1])) - s.kwargs["margin"]) > 0.05)
        ),
        _np_cosine_embedding,
    ),
    OpInfo("nt_xent", F.nt_xent, _nt_xent_samples(), _np_nt_xent),
    OpInfo("info_nce", F.info_nce, _info_nce_samples(), _np_info_nce),
    OpInfo(
        "multiple_negatives_ranking_loss",
        F.multiple_negatives_ranking_loss,
        _ranking_negatives_samples(),
        _np_multiple_negatives_ranking,
    ),
    OpInfo(
        "negative_cosine_similarity",
        F.negative_cosine_similarity,
        _views_samples(min_rows=1),
        lambda p, z: -_np_cos_rows(p, z).mean(),
    ),
]


# -------------------------------------------------------------------------- attention
@st.composite
def _attention_samples(draw):
    batch = draw(st.sampled_from([(), (2,), (1, 2)]))
    length, source, e, ev = (draw(st.integers(1, 3)) for _ in range(4))
    q, k, v = draw(t(batch + (length, e))), draw(t(batch + (source, e))), draw(t(batch + (source, ev)))
    kwargs = {}
    kind = draw(st.sampled_from(["none", "causal", "bool", "float", "dropout"]))
    args = (q, k, v)
    if kind == "causal":
        kwargs["is_causal"] = True
    elif kind == "bool":  # rows may be fully masked: they must give zeros
        args += (mg.tensor(draw(mgt.arrays((length, source), dtype=np.bool_))),)
    elif kind == "float":
        args += (draw(t(draw(st.sampled_from([(length, source), (1, source)])))),)
    elif kind == "dropout":
        kwargs["dropout_p"] = 0.5
    if draw(st.booleans()):
        kwargs["scale"] = 0.7
    return Sample(args, kwargs)


def _np_attention(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    scores = q @ np.swapaxes(k, -1, -2) * (1 / math.sqrt(q.shape[-1]) if scale is None else scale)
    if is_causal:
        attn_mask = np.tril(np.ones(scores.shape[-2:], dtype=bool))
    if attn_mask is not None:
        scores = np.where(attn_mask, scores, -np.inf) if attn_mask.dtype == bool else scores + attn_mask
    top = scores.max(-1, keepdims=True)
    dead = ~np.isfinite(top)
    probs = np.exp(scores - np.where(dead, 0, top))
    probs = probs / np.where(dead, 1, probs.sum(-1, keepdims=True))
    if dropout_p:
        probs = probs * _np_keep(probs.shape, dropout_p)
    return probs @ v


ATTENTION = [
    OpInfo(
        "scaled_dot_product_attention", _seeded(F.scaled_dot_product_attention), _attention_samples(), _np_attention
    ),
]

OPS = ACTIVATIONS + DROPOUT_EMBEDDING + NORMS + LOSSES + ATTENTION
