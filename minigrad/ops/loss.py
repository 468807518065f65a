"""Softmax, log_softmax and the losses.

``Softmax``, ``LogSoftmax`` and ``CrossEntropy`` are fused: one stable pass for the
normaliser, in place on arrays they allocate, saving only their output (cross-entropy:
the probabilities). Their first backward is array math; a recorded backward
(``create_graph=True``) writes the same formula with Tensor ops on the saved output,
which is attached to the node, so derivatives of any order go back through the op.
Cross-entropy returns its probabilities as a second, hidden output for that purpose.

The other losses are compositions of differentiable ops (``logsigmoid`` keeps
binary_cross_entropy_with_logits finite and exact at 0), reduced by ``_reduce``.
"""

from __future__ import annotations

from minigrad import backend
from minigrad.autograd import Function, autocast_inputs, is_grad_enabled
from minigrad.backend import array_module
from minigrad.ops._dims import normalize_dim
from minigrad.ops.activation import logsigmoid
from minigrad.ops.elementwise import abs, clamp, log, minimum, sigmoid, where
from minigrad.ops.embedding import one_hot
from minigrad.ops.index import gather
from minigrad.ops.norm import vector_norm
from minigrad.ops.shape import movedim
from minigrad.tensor import Tensor

_REDUCTIONS = ("none", "mean", "sum")


# --------------------------------------------------------------------------- softmax
def softmax_rows(x):
    """The stable softmax of ``x`` over its last axis: ``(M..., C)`` -> the probabilities
    ``(M..., C)``, each row's max ``(M...)`` and each row's sum of ``exp(x - max)`` ``(M...)``.

    Rows go in cache-sized blocks, shared out over the threads (``backend.parallel``): the five
    passes (max, shift, exp, sum, divide) then read a block from cache instead of the whole
    array from memory. Each row's result is the same as the whole-array passes would give."""
    xp = array_module(x)
    rows = x.reshape(-1, x.shape[-1])
    p = xp.empty(rows.shape, x.dtype)
    row_max, row_sum = xp.empty((2, rows.shape[0]), x.dtype)

    def block(start, stop):
        part = slice(start, stop)
        peak = rows[part].max(axis=1, keepdims=True)
        xp.subtract(rows[part], peak, out=p[part])
        xp.exp(p[part], out=p[part])
        total = p[part].sum(axis=1, keepdims=True)
        p[part] /= total
        row_max[part], row_sum[part] = peak[:, 0], total[:, 0]

    backend.parallel(block, rows.shape[0], rows, cache_blocks=True)
    return p.reshape(x.shape), row_max.reshape(x.shape[:-1]), row_sum.reshape(x.shape[:-1])


class Softmax(Function):
    def forward(self, x, dim):
        xp = array_module(x)
        self.dim = dim
        if dim == x.ndim - 1 and x.shape[-1]:
            out = softmax_rows(x)[0]
        else:
            out = x - x.max(axis=dim, keepdims=True)
            xp.exp(out, out=out)
            out /= out.sum(axis=dim, keepdims=True)
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        (y,) = self.saved_tensors
        if is_grad_enabled():
            return y * (grad - (grad * y).sum(self.dim, keepdim=True))
        out = grad.data - (grad.data * y.data).sum(axis=self.dim, keepdims=True)
        out *= y.data
        return Tensor._make(out)


class LogSoftmax(Function):
    def forward(self, x, dim):
        xp = array_module(x)
        self.dim = dim
        out = x - x.max(axis=dim, keepdims=True)
        out -= xp.log(xp.exp(out).sum(axis=dim, keepdims=True))
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        (y,) = self.saved_tensors
        if is_grad_enabled():
            return grad - y.exp() * grad.sum(self.dim, keepdim=True)
        xp = array_module(y.data)
        out = xp.exp(y.data)
        out *= -grad.data.sum(axis=self.dim, keepdims=True)
        out += grad.data
        return Tensor._make(out)


# --------------------------------------------------------------------- cross-entropy
def _class_weights(target, weight, ignore_index, dtype):
    """For class-index targets ``(M...)``: the targets with ignored positions pointed at
    class 0 (safe to index with), where they are valid, and each one's class weight
    (``weight[target]``, or 1), 0 where ignored."""
    xp = array_module(target)
    valid = target != ignore_index
    safe = xp.where(valid, target, 0)
    row_weight = valid.astype(dtype) if weight is None else weight[safe] * valid
    return safe, valid, row_weight


def _reduce_array(loss, reduction, denominator):
    if reduction == "mean":
        return loss.sum() / denominator if denominator else array_module(loss).asarray(float("nan"), loss.dtype)
    return loss.sum() if reduction == "sum" else loss


class CrossEntropy(Function):
    """Logits ``(M..., C)`` (class dim last) against class indices ``(M...)`` or probabilities
    ``(M..., C)``. Outputs the loss and, hidden, the probabilities (for higher derivatives).

    Each row's loss is ``-sum_c a_c log p_c``, so its gradient is ``p * sum_c a_c - a``:
    ``a`` is the (smoothed, weighted) target distribution.
    """

    def forward(self, x, target, weight, ignore_index, reduction, label_smoothing, probabilities):
        xp = array_module(x)
        c = x.shape[-1]
        self.reduction, self.smoothing = reduction, label_smoothing
        self.weight, self.probabilities = weight, probabilities
        p, row_max, normalizer = softmax_rows(x)
        lse = xp.log(normalizer)
        if probabilities:
            shifted = x - row_max[..., None]
            soft = self.soft_target(target)
            total = soft.sum(axis=-1)
            weighted_shift = (soft * shifted).sum(axis=-1)
            logp = shifted - lse[..., None] if self.needs_input_grad[1] else None
        else:
            self.target, valid, row_weight = _class_weights(target, weight, ignore_index, x.dtype)
            picked = xp.take_along_axis(x, self.target[..., None], axis=-1)[..., 0] - row_max
            # sum_c a_c = (1 - s) w[t] + (s / C) sum_c w_c, for a valid row
            self.hard_weight = (1 - label_smoothing) * row_weight
            self.smooth_weight = (label_smoothing / c) * (xp.ones(c, x.dtype) if weight is None else weight)
            total = self.hard_weight + self.smooth_weight.sum() * valid
            weighted_shift = self.hard_weight * picked
            if label_smoothing:
                weighted_shift += ((x - row_max[..., None]) @ self.smooth_weight) * valid
            self.valid, logp = valid, None
        # -sum_c a_c log p_c = lse * sum_c a_c - sum_c a_c (x_c - max)
        loss = lse * total - weighted_shift
        self.total = total[..., None]
        self.denominator = max(loss.size, 1) if probabilities else row_weight.sum()
        self.save_for_backward(p, target if probabilities else None, logp)
        return _reduce_array(loss, reduction, self.denominator), p

    def soft_target(self, target):
        """The probability target smoothed and weighted (arrays or Tensors alike)."""
        soft = target * (1 - self.smoothing) + self.smoothing / target.shape[-1]
        return soft if self.weight is None else soft * self.weight

    def backward(self, grad_loss, grad_probs):
        p, target, logp = self.saved_tensors
        grad_x = grad_target = None
        if grad_loss is not None:
            scale = grad_loss[..., None] if self.reduction == "none" else grad_loss
            if self.reduction == "mean":  # every row ignored: every coefficient is 0, so is the gradient
                scale = scale / (self.denominator or 1)
            if is_grad_enabled():
                grad_x, grad_target = self.recorded_gradients(p, target, scale)
            else:
                grad_x, grad_target = self.fast_gradients(p.data, target, logp, scale.data)
        if grad_probs is not None:  # reached only by higher derivatives: the softmax's own backward
            softmax_grad = p * (grad_probs - (grad_probs * p).sum(-1, keepdim=True))
            grad_x = softmax_grad if grad_x is None else grad_x + softmax_grad
        return grad_x, grad_target

    def fast_gradients(self, p, target, logp, scale):
        xp = array_module(p)
        grad_x = p * (self.total * scale)
        grad_target = None
        if self.probabilities:
            grad_x -= self.soft_target(target.data) * scale
            if self.needs_input_grad[1]:
                grad_target = Tensor._make(self._target_factor(logp.data) * scale)
        else:
            scale = xp.broadcast_to(scale, self.valid.shape + (1,))
            if self.smoothing:
                grad_x -= self.smooth_weight * (scale * self.valid[..., None])
            rows = grad_x.reshape(-1, p.shape[-1])
            rows[xp.arange(rows.shape[0]), self.target.ravel()] -= (self.hard_weight[..., None] * scale).ravel()
        return Tensor._make(grad_x), grad_target

    def recorded_gradients(self, p, target, scale):
        """The same gradients as Tensor ops of the attached probabilities (create_graph=True)."""
        grad_target = None
        if self.probabilities:
            soft = self.soft_target(target)
            grad_x = (p * soft.sum(-1, keepdim=True) - soft) * scale
            if self.needs_input_grad[1]:
                grad_target = self._target_factor(log(p)) * scale
        else:
            xp = array_module(p.data)
            a = self.smooth_weight * self.valid[..., None]  # the target distribution, dense
            index = self.target[..., None]
            xp.put_along_axis(a, index, xp.take_along_axis(a, index, -1) + self.hard_weight[..., None], -1)
            grad_x = (p * self.total - Tensor._make(a)) * scale
        return grad_x, grad_target

    def _target_factor(self, logp):
        """d loss / d target for probability targets, before the reduction's scale."""
        factor = logp * -(1 - self.smoothing)
        return factor if self.weight is None else factor * self.weight


class NllLoss(Function):
    """Log-probabilities ``(M..., C)`` (class dim last) at class indices ``(M...)``: ``-weight[t] * x[t]``."""

    def forward(self, x, target, weight, ignore_index, reduction):
        xp = array_module(x)
        self.shape, self.reduction = x.shape, reduction
        self.target, _, self.row_weight = _class_weights(target, weight, ignore_index, x.dtype)
        picked = xp.take_along_axis(x, self.target[..., None], axis=-1)[..., 0]
        self.denominator = self.row_weight.sum()
        return _reduce_array(-picked * self.row_weight, reduction, self.denominator)

    def backward(self, grad):
        xp = array_module(grad.data)
        scale = grad[..., None] if self.reduction == "none" else grad
        if self.reduction == "mean":  # every row ignored: every coefficient is 0, so is the gradient
            scale = scale / (self.denominator or 1)
        coefficient = xp.zeros(self.shape, grad.dtype)
        xp.put_along_axis(coefficient, self.target[..., None], -self.row_weight[..., None], -1)
        return Tensor._make(coefficient) * scale, None


# -------------------------------------------------------------------- public functions
def _check_reduction(name: str, reduction: str) -> None:
    divergence = name in ("kl_div", "js_div")
    if reduction not in _REDUCTIONS and not (divergence and reduction == "batchmean"):
        allowed = ", ".join(repr(r) for r in _REDUCTIONS + (("batchmean",) if divergence else ()))
        raise ValueError(f"{name}: {reduction!r} is not a valid value for reduction (expected one of {allowed})")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    return loss.sum() if reduction == "sum" else loss


def _check_float(name: str, what: str, x) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: {what} must be a Tensor, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise RuntimeError(f"{name}: {what} must be a floating-point tensor, got {x.dtype}")


def _class_dim_last(input: Tensor) -> Tensor:
    """``(C,)``, ``(N, C)`` stay; ``(N, C, d1, ...)`` becomes ``(N, d1, ..., C)`` (a view)."""
    return movedim(input, 1, -1) if input.ndim > 2 else input


def _class_targets(name: str, input: Tensor, target, weight, ignore_index: int, probabilities_allowed: bool) -> bool:
    """Check input ``(C,)``/``(N, C, ...)``, target and weight; True when the target holds probabilities."""
    _check_float(name, "input", input)
    if input.ndim == 0:
        raise RuntimeError(f"{name}: input must have at least 1 dim (the classes), got a 0-d tensor")
    c = input.shape[0 if input.ndim == 1 else 1]
    indices_shape = input.shape[1:] if input.ndim == 1 else input.shape[:1] + input.shape[2:]
    if not isinstance(target, Tensor):
        raise TypeError(f"{name}: target must be a Tensor, got {type(target).__name__}")
    if probabilities_allowed and target.dtype.kind == "f" and target.shape == input.shape:
        probabilities = True
    elif target.dtype.kind in "iu" and target.shape == indices_shape:
        probabilities = False
        t = target.data
        bad = t[((t < 0) | (t >= c)) & (t != ignore_index)]
        if bad.size:
            raise IndexError(f"{name}: Target {int(bad.ravel()[0])} is out of bounds (there are {c} classes)")
    else:
        expected = f"class indices (integers) of shape {tuple(indices_shape)}"
        if probabilities_allowed:
            expected += f" or probabilities (floats) of shape {tuple(input.shape)}"
        raise RuntimeError(
            f"{name}: expected target as {expected} for input of shape {tuple(input.shape)}, "
            f"got {target.dtype} of shape {tuple(target.shape)}"
        )
    if weight is not None:
        _check_float(name, "weight", weight)
        if tuple(weight.shape) != (c,):
            raise RuntimeError(f"{name}: weight should have shape ({c},) (one per class), got {tuple(weight.shape)}")
    return probabilities


def softmax(input: Tensor, dim: int, dtype=None) -> Tensor:
    """``exp(x) / sum(exp(x))`` along ``dim``, computed without overflow."""
    x = input if dtype is None else input.to(dtype)
    _check_float("softmax", "input", x)
    return Softmax.apply(x, dim=normalize_dim(dim, x.ndim, "softmax"))


def log_softmax(input: Tensor, dim: int, dtype=None) -> Tensor:
    """``x - logsumexp(x)`` along ``dim``, computed without overflow."""
    x = input if dtype is None else input.to(dtype)
    _check_float("log_softmax", "input", x)
    return LogSoftmax.apply(x, dim=normalize_dim(dim, x.ndim, "log_softmax"))


def cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross-entropy of logits ``(N, C)``, ``(N, C, d1, ...)`` or ``(C,)`` against class indices
    ``(N,)``/``(N, d1, ...)``/``()`` or class probabilities (the input's shape).

    With class indices, "mean" divides by the summed weights of the non-ignored targets; with
    probabilities, by the number of rows. ``label_smoothing`` mixes the target with the uniform
    distribution. Fused: the gradient is ``softmax - target`` (scaled), finite for any logits.
    """
    _check_reduction("cross_entropy", reduction)
    probabilities = _class_targets("cross_entropy", input, target, weight, ignore_index, True)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be between 0.0 and 1.0, got {label_smoothing}")
    loss, _ = CrossEntropy.apply(
        _class_dim_last(input),
        _class_dim_last(target) if probabilities else target.data,
        weight=None if weight is None else weight.data,
        ignore_index=ignore_index,
        reduction=reduction,
        label_smoothing=label_smoothing,
        probabilities=probabilities,
    )
    return loss


def nll_loss(
    input: Tensor, target: Tensor, weight: Tensor | None = None, ignore_index: int = -100, reduction: str = "mean"
) -> Tensor:
    """Negative log-likelihood of log-probabilities ``(N, C, ...)`` or ``(C,)`` at class indices."""
    _check_reduction("nll_loss", reduction)
    _class_targets("nll_loss", input, target, weight, ignore_index, False)
    return NllLoss.apply(
        _class_dim_last(input),
        target.data,
        weight=None if weight is None else weight.data,
        ignore_index=ignore_index,
        reduction=reduction,
    )


def _pair(name: str, input, target, same_shape: bool = False) -> None:
    _check_float(name, "input", input)
    if isinstance(target, Tensor) and same_shape and target.shape != input.shape:
        raise ValueError(
            f"{name}: target size {tuple(target.shape)} must be the same as input size {tuple(input.shape)}"
        )
    if not isinstance(target, Tensor):
        raise TypeError(f"{name}: target must be a Tensor, got {type(target).__name__}")


def _mask(condition) -> Tensor:
    """A boolean constant for ``where`` (comparisons of 0-d arrays give NumPy scalars)."""
    return Tensor._make(backend.numpy.asarray(condition) if not backend.is_array(condition) else condition)


def _weighted(loss: Tensor, weight) -> Tensor:
    return loss if weight is None else loss * weight


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    """``(input - target)^2``, optionally weighted elementwise, then reduced."""
    _check_reduction("mse_loss", reduction)
    _pair("mse_loss", input, target)
    input, target = autocast_inputs(mse_loss, input, target)
    diff = input - target
    return _reduce(_weighted(diff * diff, weight), reduction)


def l1_loss(input: Tensor, target: Tensor, reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    """``|input - target|`` (gradient 0 where they are equal), optionally weighted, then reduced."""
    _check_reduction("l1_loss", reduction)
    _pair("l1_loss", input, target)
    input, target = autocast_inputs(l1_loss, input, target)
    return _reduce(_weighted(abs(input - target), weight), reduction)


def smooth_l1_loss(input: Tensor, target: Tensor, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """``0.5 d^2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta`` (``d = input - target``)."""
    _check_reduction("smooth_l1_loss", reduction)
    _pair("smooth_l1_loss", input, target)
    input, target = autocast_inputs(smooth_l1_loss, input, target)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    diff = input - target
    size = abs(diff)
    if beta == 0:
        return _reduce(size, reduction)
    return _reduce(where(_mask(size.data < beta), (0.5 / beta) * diff * diff, size - 0.5 * beta), reduction)


def huber_loss(
    input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0, weight: Tensor | None = None
) -> Tensor:
    """``0.5 d^2`` where ``|d| < delta``, else ``delta (|d| - 0.5 delta)`` (``d = input - target``)."""
    _check_reduction("huber_loss", reduction)
    _pair("huber_loss", input, target)
    input, target = autocast_inputs(huber_loss, input, target)
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    diff = input - target
    size = abs(diff)
    loss = where(_mask(size.data < delta), 0.5 * diff * diff, delta * (size - 0.5 * delta))
    return _reduce(_weighted(loss, weight), reduction)


class BinaryCrossEntropy(Function):
    """``-(t log x + (1 - t) log(1 - x))`` with both logs clamped at -100 (PyTorch's rule)."""

    def forward(self, x, t):
        xp = array_module(x)
        self.save_for_backward(x, t)
        log_x = xp.maximum(xp.log(x), -100)
        log_rest = xp.maximum(xp.log1p(-x), -100)
        log_x -= log_rest
        log_x *= t
        log_x += log_rest
        return -log_x

    def backward(self, grad):
        x, t = self.saved_tensors
        need_x, need_t = self.needs_input_grad
        grad_x = grad * (x - t) / clamp(x * (1 - x), min=1e-12) if need_x else None
        grad_t = grad * (clamp(log(1 - x), min=-100) - clamp(log(x), min=-100)) if need_t else None
        return grad_x, grad_t


def binary_cross_entropy(
    input: Tensor, target: Tensor, weight: Tensor | None = None, reduction: str = "mean"
) -> Tensor:
    """Binary cross-entropy of probabilities ``input`` (in [0, 1]) and ``target`` of the same shape."""
    _check_reduction("binary_cross_entropy", reduction)
    _pair("binary_cross_entropy", input, target, same_shape=True)
    if input.data.size and (float(input.data.min()) < 0 or float(input.data.max()) > 1):
        raise RuntimeError("binary_cross_entropy: all elements of input should be between 0 and 1")
    return _reduce(_weighted(BinaryCrossEntropy.apply(input, target), weight), reduction)


def binary_cross_entropy_with_logits(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    reduction: str = "mean",
    pos_weight: Tensor | None = None,
) -> Tensor:
    """Binary cross-entropy of ``sigmoid(input)``, computed from the logits without overflow:
    ``(1 - t) x - (1 + (pos_weight - 1) t) logsigmoid(x)``; ``pos_weight`` broadcasts over the last dim."""
    _check_reduction("binary_cross_entropy_with_logits", reduction)
    _pair("binary_cross_entropy_with_logits", input, target, same_shape=True)
    input, target = autocast_inputs(binary_cross_entropy_with_logits, input, target)
    log_weight = 1.0 if pos_weight is None else 1 + (pos_weight - 1) * target
    loss = (1 - target) * input - log_weight * logsigmoid(input)
    return _reduce(_weighted(loss, weight), reduction)


def kl_div(input: Tensor, target: Tensor, reduction: str = "mean", log_target: bool = False) -> Tensor:
    """``target * (log target - input)`` (``input`` holds log-probabilities; 0 where target is 0).

    ``reduction="batchmean"`` divides the sum by the batch size (the true KL divergence);
    ``"mean"`` by the number of elements, as PyTorch does.
    """
    _check_reduction("kl_div", reduction)
    _pair("kl_div", input, target)
    input, target = autocast_inputs(kl_div, input, target)
    if log_target:
        loss = target.exp() * (target - input)
    else:
        positive = _mask(target.data > 0)
        loss = target * log(where(positive, target, 1.0)) - target * input
    if reduction == "batchmean":
        return loss.sum() / (input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """``x1 . x2 / (max(||x1||, eps) max(||x2||, eps))`` along ``dim`` (inputs broadcast)."""
    _check_float("cosine_similarity", "x1", x1)
    _check_float("cosine_similarity", "x2", x2)
    x1, x2 = autocast_inputs(cosine_similarity, x1, x2)
    shape = backend.numpy.broadcast_shapes(x1.shape, x2.shape)
    x1, x2 = x1.expand(shape), x2.expand(shape)
    d = normalize_dim(dim, len(shape), "cosine_similarity")
    unit1 = x1 / clamp(vector_norm(x1, 2.0, d, keepdim=True), min=eps)
    unit2 = x2 / clamp(vector_norm(x2, 2.0, d, keepdim=True), min=eps)
    return (unit1 * unit2).sum(d)


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> Tensor:
    """``||x1 - x2 + eps||_p`` along the last dim."""
    _check_float("pairwise_distance", "x1", x1)
    _check_float("pairwise_distance", "x2", x2)
    return vector_norm(x1 - x2 + eps, p, -1, keepdim=keepdim)


def triplet_margin_loss(
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    margin: float = 1.0,
    p: float = 2,
    eps: float = 1e-6,
    swap: bool = False,
    reduction: str = "mean",
) -> Tensor:
    """``max(d(a, p) - d(a, n) + margin, 0)`` with ``d`` the pairwise distance; ``swap`` uses
    ``min(d(a, n), d(p, n))`` for the negative distance."""
    _check_reduction("triplet_margin_loss", reduction)
    if margin <= 0:
        raise ValueError(f"triplet_margin_loss: margin must be greater than 0, got {margin}")
    anchor, positive, negative = autocast_inputs(triplet_margin_loss, anchor, positive, negative)
    positive_distance = pairwise_distance(anchor, positive, p, eps)
    negative_distance = pairwise_distance(anchor, negative, p, eps)
    if swap:
        negative_distance = minimum(negative_distance, pairwise_distance(positive, negative, p, eps))
    return _reduce(clamp(margin + positive_distance - negative_distance, min=0.0), reduction)


def margin_ranking_loss(
    input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0, reduction: str = "mean"
) -> Tensor:
    """``max(-target * (input1 - input2) + margin, 0)``, target in {1, -1}."""
    _check_reduction("margin_ranking_loss", reduction)
    _check_float("margin_ranking_loss", "input1", input1)
    input1, input2 = autocast_inputs(margin_ranking_loss, input1, input2)
    return _reduce(clamp(-target * (input1 - input2) + margin, min=0.0), reduction)


def cosine_embedding_loss(
    input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0, reduction: str = "mean"
) -> Tensor:
    """``1 - cos(x1, x2)`` where target is 1, ``max(cos(x1, x2) - margin, 0)`` where it is -1
    (cos over the last dim, as PyTorch computes it: ``x1.x2 / sqrt((|x1|^2 + 1e-12)(|x2|^2 + 1e-12))``)."""
    _check_reduction("cosine_embedding_loss", reduction)
    _check_float("cosine_embedding_loss", "input1", input1)
    _check_float("cosine_embedding_loss", "input2", input2)
    _check_cosine_embedding_shapes(input1, input2, target)
    input1, input2 = autocast_inputs(cosine_embedding_loss, input1, input2)
    dim = input1.ndim - 1
    magnitudes = ((input1 * input1).sum(dim) + 1e-12) * ((input2 * input2).sum(dim) + 1e-12)
    cos = (input1 * input2).sum(dim) * magnitudes.rsqrt()
    t = target.data
    loss = where(_mask(t == 1), 1 - cos, 0.0) + where(_mask(t == -1), clamp(cos - margin, min=0.0), 0.0)
    return _reduce(loss, reduction)


def _check_cosine_embedding_shapes(input1: Tensor, input2: Tensor, target) -> None:
    """input1, input2: (N, D) with target (N,), or (D,) with a 0-d target (PyTorch's rule)."""
    if not isinstance(target, Tensor):
        raise TypeError(f"cosine_embedding_loss: target must be a Tensor, got {type(target).__name__}")
    shapes = tuple(input1.shape), tuple(input2.shape), tuple(target.shape)
    try:
        broadcast = backend.numpy.broadcast_shapes(shapes[0], shapes[1])
    except ValueError:
        broadcast = None
    if target.ndim > 1 or input1.ndim != input2.ndim or broadcast is None or broadcast[:-1] != shapes[2]:
        raise RuntimeError(
            "cosine_embedding_loss: expected input1 and input2 (N, D) with target (N,), or (D,) with a 0-d "
            f"target, got {shapes[0]}, {shapes[1]} and target {shapes[2]}"
        )


# --------------------------------------------- information measures and imbalance losses
def entropy(input: Tensor, dim: int = -1, log_input: bool = False) -> Tensor:
    """Shannon entropy ``-sum p log p`` (nats) of the distributions along ``dim`` (0 log 0 = 0).

    ``input`` holds probabilities, or log-probabilities with ``log_input=True`` (e.g. from
    ``log_softmax``: exact and finite gradients for any logits). The result drops ``dim``.
    """
    _check_float("entropy", "input", input)
    d = normalize_dim(dim, input.ndim, "entropy")
    if log_input:
        return -(input.exp() * input).sum(d)
    positive = _mask(input.data > 0)
    return -(input * log(where(positive, input, 1.0))).sum(d)


def js_div(input: Tensor, target: Tensor, reduction: str = "mean", log_target: bool = False) -> Tensor:
    """Jensen-Shannon divergence ``(KL(P || M) + KL(Q || M)) / 2`` with ``M = (P + Q) / 2``.

    Arguments as in ``kl_div``: ``input`` holds log-probabilities log Q, ``target`` the
    probabilities P (log P with ``log_target=True``); the pointwise terms are reduced the same
    way, so ``reduction="batchmean"`` gives the true divergence, symmetric and at most log 2.
    """
    _check_reduction("js_div", reduction)
    _pair("js_div", input, target)
    input, target = autocast_inputs(js_div, input, target)
    p = target.exp() if log_target else target
    m = 0.5 * (p + input.exp())
    log_m = log(where(_mask(m.data > 0), m, 1.0))  # where both P and Q are 0 the terms are 0
    return 0.5 * (kl_div(log_m, target, reduction, log_target) + kl_div(log_m, input, reduction, log_target=True))


def focal_loss(
    input: Tensor, target: Tensor, gamma: float = 2.0, weight: Tensor | None = None, reduction: str = "mean"
) -> Tensor:
    """Multi-class focal loss ``-alpha_t (1 - p_t)^gamma log p_t`` (Lin et al.) of logits ``(N, C)``
    or ``(N, C, d1, ...)`` at class indices ``(N,)``/``(N, d1, ...)``; ``p_t = softmax(input)[target]``.

    ``weight``: ``alpha`` per class ``(C,)``. ``gamma=0`` without weight is ``cross_entropy``;
    "mean" averages over the targets (not over their weights, unlike ``cross_entropy``).
    """
    _check_reduction("focal_loss", reduction)
    _class_targets("focal_loss", input, target, weight, -100, False)
    if gamma < 0:
        raise ValueError(f"focal_loss: gamma must be non-negative, got {gamma}")
    log_p = log_softmax(_class_dim_last(input), -1)
    log_p_t = gather(log_p, -1, target.unsqueeze(-1)).squeeze(-1)
    loss = -log_p_t if gamma == 0 else -((1 - log_p_t.exp()) ** gamma) * log_p_t
    if weight is not None:
        loss = loss * weight[target.data]
    return _reduce(loss, reduction)


def soft_f1_loss(input: Tensor, target: Tensor, eps: float = 1e-7) -> Tensor:
    """``1 - F1`` with counts made differentiable: probabilities stand in for 0/1 predictions,
    ``TP = sum p y``, so ``F1 = 2 TP / (2 TP + FP + FN) = 2 sum p y / (sum p + sum y)``.

    Binary / multi-label: logits ``(N,)`` or ``(N, K)`` and 0/1 float targets of the same shape,
    ``p = sigmoid(input)``, F1 per column over the batch. Multi-class: logits ``(N, C)`` and class
    indices ``(N,)``, ``p = softmax(input)``, F1 per class. Returns 1 - the mean (macro) F1.
    """
    _check_float("soft_f1_loss", "input", input)
    if not isinstance(target, Tensor):
        raise TypeError(f"soft_f1_loss: target must be a Tensor, got {type(target).__name__}")
    if target.dtype.kind == "f" and target.shape == input.shape and input.ndim in (1, 2):
        p, y = sigmoid(input), target
    elif target.dtype.kind in "iu" and input.ndim == 2 and target.shape == input.shape[:1]:
        _class_targets("soft_f1_loss", input, target, None, -100, False)
        p, y = softmax(input, 1), one_hot(target, input.shape[1]).to(input.dtype)
    else:
        raise RuntimeError(
            f"soft_f1_loss: expected logits (N,)/(N, K) with 0/1 float targets of the same shape, or logits (N, C) "
            f"with class indices (N,); got input {tuple(input.shape)} and target {target.dtype} {tuple(target.shape)}"
        )
    f1 = 2 * (p * y).sum(0) / (p.sum(0) + y.sum(0) + eps)
    return 1 - f1.mean()
