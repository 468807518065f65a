"""Scaled dot-product attention, fused: one scores GEMM, a stable softmax, one output GEMM.

Backward is the matching fused formula (two GEMMs per input), on the saved probabilities.
Rows whose every key is masked give zero output and zero gradients (PyTorch's math
backend, which uses a "safe" softmax there). A recorded backward (double backward) goes
through ``attention_reference``, the same math in primitive ops.
"""

from __future__ import annotations

import math

from minigrad import backend
from minigrad.autograd import Function, backward_through, is_grad_enabled
from minigrad.backend import array_module
from minigrad.ops.dropout import keep_mask
from minigrad.ops.elementwise import where
from minigrad.ops.loss import softmax, softmax_rows
from minigrad.tensor import Tensor


def attention_reference(query, key, value, mask, scale, dropout_mask=None):
    """softmax(q k^T * scale + mask) @ v as primitive ops; fully masked rows give zeros.
    ``mask``: additive, broadcastable to ``(..., L, S)`` (a Tensor, an array, or None)."""
    scores = query @ key.mT * scale
    if mask is not None:
        scores = scores + mask
    dead = Tensor._make(~array_module(scores.data).isfinite(scores.data.max(-1, keepdims=True)))
    probs = softmax(where(dead, 0.0, scores), -1) * (1.0 - dead.to(scores.dtype))
    if dropout_mask is not None:
        probs = probs * dropout_mask
    return probs @ value


class ScaledDotProductAttention(Function):
    """query ``(..., L, E)``, key ``(..., S, E)``, value ``(..., S, Ev)``, additive mask broadcastable
    to ``(..., L, S)`` (or None) -> ``(..., L, Ev)``; batch dims broadcast."""

    def forward(self, query, key, value, mask, scale, dropout_mask):
        xp = array_module(query)
        self.scale, self.dropout_mask = scale, dropout_mask
        scores = query @ xp.swapaxes(key, -1, -2)
        scores *= scale
        if mask is not None:
            if backend.numpy.broadcast_shapes(scores.shape, mask.shape) == scores.shape:
                scores += mask
            else:  # the mask has batch dims that q and k lack
                scores = scores + mask
        if not scores.size:  # no query or no key: nothing to weigh (an empty output, or zeros)
            probs = scores
        elif mask is None:  # no key masked: the softmax in cache-sized blocks of rows over the threads
            probs = softmax_rows(scores)[0]
        else:
            top = scores.max(axis=-1, keepdims=True)
            dead = ~xp.isfinite(top)  # every key masked: a zero row, not NaN
            any_dead = dead.any()
            if any_dead:
                top[dead] = 0
            scores -= top
            probs = xp.exp(scores, out=scores)
            total = probs.sum(axis=-1, keepdims=True)
            if any_dead:
                total[dead] = 1
            probs /= total
        self.probs = probs
        self.save_for_backward(query, key, value, mask)
        if dropout_mask is not None:
            probs = probs * dropout_mask
        return probs @ value

    def backward(self, grad):
        query, key, value, mask = self.saved_tensors
        if is_grad_enabled():
            return backward_through(
                lambda q, k, v, m: attention_reference(q, k, v, m, self.scale, self.dropout_mask),
                (query, key, value, mask),
                (grad,),
                self.needs_input_grad,
            )
        xp = array_module(grad.data)
        need_q, need_k, need_v, need_mask = self.needs_input_grad
        g, probs = grad.data, self.probs
        kept = probs if self.dropout_mask is None else probs * self.dropout_mask
        grad_v = xp.swapaxes(kept, -1, -2) @ g if need_v else None
        grad_scores = g @ xp.swapaxes(value.data, -1, -2)  # d/d(probs after dropout)
        if self.dropout_mask is not None:
            grad_scores *= self.dropout_mask
        # softmax backward: probs * (d - sum(d * probs))
        grad_scores -= (grad_scores * probs).sum(axis=-1, keepdims=True)
        grad_scores *= probs
        grad_mask = grad_scores.copy() if need_mask else None
        grad_scores *= self.scale
        grad_q = grad_scores @ key.data if need_q else None
        grad_k = xp.swapaxes(grad_scores, -1, -2) @ query.data if need_k else None
        return tuple(None if a is None else Tensor._make(a) for a in (grad_q, grad_k, grad_v, grad_mask))


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> Tensor:
    """``softmax(query @ key^T * scale + mask) @ value``: query ``(..., L, E)``, key ``(..., S, E)``,
    value ``(..., S, Ev)`` -> ``(..., L, Ev)``.

    ``attn_mask``: bool (True: may attend) or float (added to the scores), broadcastable to
    ``(..., L, S)``. ``is_causal``: query i attends to keys 0..i (top-left aligned). ``scale``
    defaults to ``1 / sqrt(E)``. ``dropout_p`` drops attention weights. ``enable_gqa``: key and
    value may have fewer heads (dim -3) than query, each serving a group of query heads.
    """
    for what, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor) or t.dtype.kind != "f" or t.ndim < 2:
            raise RuntimeError(
                f"scaled_dot_product_attention: {what} must be a floating-point tensor of at least 2 dims, "
                f"got {getattr(t, 'dtype', type(t).__name__)} of shape {tuple(getattr(t, 'shape', ()))}"
            )
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise RuntimeError(
            "scaled_dot_product_attention: expected query (..., L, E), key (..., S, E), value (..., S, Ev), "
            f"got {tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}"
        )
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"scaled_dot_product_attention: dropout_p must be in [0, 1], got {dropout_p}")
    if is_causal and attn_mask is not None:
        raise RuntimeError("scaled_dot_product_attention: explicit attn_mask should not be set when is_causal=True")
    if enable_gqa:
        key, value = _repeat_heads(key, query.shape[-3]), _repeat_heads(value, query.shape[-3])
    xp = array_module(query.data)
    length, source = query.shape[-2], key.shape[-2]
    mask = None
    if is_causal:
        mask = xp.where(
            xp.tril(xp.ones((length, source), dtype=bool)), query.dtype.type(0), -query.dtype.type(math.inf)
        )
    elif attn_mask is not None:
        try:
            backend.numpy.broadcast_shapes(attn_mask.shape, query.shape[:-1] + (source,))
        except ValueError:
            raise RuntimeError(
                f"scaled_dot_product_attention: attn_mask of shape {tuple(attn_mask.shape)} does not broadcast "
                f"to the scores' shape {query.shape[:-1] + (source,)}"
            ) from None
        if attn_mask.dtype == backend.bool_:
            mask = xp.where(attn_mask.data, query.dtype.type(0), -query.dtype.type(math.inf))
        else:
            mask = attn_mask
    dropout_mask = None
    if dropout_p > 0:
        batch = backend.numpy.broadcast_shapes(query.shape[:-2], key.shape[:-2])
        dropout_mask = keep_mask(batch + (length, source), dropout_p, query)
    scale = 1 / math.sqrt(query.shape[-1]) if scale is None else scale
    return ScaledDotProductAttention.apply(query, key, value, mask, scale=scale, dropout_mask=dropout_mask)


def _repeat_heads(t: Tensor, heads: int) -> Tensor:
    """``(..., H_kv, S, E)`` -> ``(..., heads, S, E)``, each kv head repeated for its group of query heads."""
    if t.ndim < 3 or heads % t.shape[-3]:
        raise RuntimeError(
            f"scaled_dot_product_attention: with enable_gqa, the query's {heads} heads must be a multiple of "
            f"the key/value heads, got shape {tuple(t.shape)}"
        )
    group = heads // t.shape[-3]
    expanded = t.unsqueeze(-3).expand(t.shape[:-2] + (group,) + t.shape[-2:])  # (..., H_kv, group, S, E)
    return expanded.reshape(t.shape[:-3] + (heads,) + t.shape[-2:])
