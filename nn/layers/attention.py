"""Attention: the scoring functions of d2l's chapter (Nadaraya-Watson, additive, scaled dot
product) and MultiheadAttention with PyTorch's parameters, shapes and mask conventions."""

from __future__ import annotations

import math

import minigrad as mg
import minigrad.functional as F
from nn import init
from nn.layers.linear import Linear
from nn.module import Module, Parameter


def masked_softmax(scores: mg.Tensor, mask: mg.Tensor | None, owner: Module) -> mg.Tensor:
    """Softmax over keys of scores (B, Q, K); a bool mask (B, K) or (B, Q, K) marks with True the
    keys that MAY be attended, the others get weight exactly 0."""
    if mask is None:
        return F.softmax(scores, dim=-1)
    batch, queries, keys = scores.shape
    if mask.dtype != mg.bool or tuple(mask.shape) not in ((batch, keys), (batch, queries, keys)):
        raise RuntimeError(
            f"{type(owner).__name__}: mask must be bool of shape ({batch}, {keys}) or ({batch}, {queries}, {keys}) "
            f"for scores of shape {tuple(scores.shape)}, got {mask.dtype} of shape {tuple(mask.shape)}"
        )
    if mask.ndim == 2:
        mask = mask.unsqueeze(1)
    return F.softmax(mg.where(mask, scores, float("-inf")), dim=-1)


class NadarayaWatson(Module):
    """Nadaraya-Watson kernel regression: a softmax over keys of the Gaussian kernel
    -||q - k||^2 / (2 h^2), so each query gets a weighted mean of the values.

    The bandwidth h is fixed, or a parameter learned by gradient descent (learnable=True).
    forward(queries (B, Q, d), keys (B, K, d), values (B, K, v), mask=None) -> (B, Q, v); a bool mask
    (B, K) or (B, Q, K) marks with True the keys that MAY be attended. Keeps .attention_weights (B, Q, K).
    """

    def __init__(self, bandwidth: float = 1.0, learnable: bool = False):
        super().__init__()
        if bandwidth <= 0:
            raise ValueError(f"NadarayaWatson: bandwidth must be positive, got {bandwidth}")
        h = mg.tensor(float(bandwidth))
        if learnable:
            self.bandwidth = Parameter(h)
        else:
            self.register_buffer("bandwidth", h)
        self.attention_weights = None

    def forward(self, queries, keys, values, mask=None):
        distances = ((queries.unsqueeze(2) - keys.unsqueeze(1)) ** 2).sum(-1)  # (B, Q, K)
        self.attention_weights = masked_softmax(-distances / (2 * self.bandwidth**2), mask, self)
        return self.attention_weights @ values

    def extra_repr(self) -> str:
        return f"bandwidth={self.bandwidth.item():.4g}, learnable={isinstance(self.bandwidth, Parameter)}"


class AdditiveAttention(Module):
    """Bahdanau's additive scoring: score(q, k) = w_v^T tanh(W_q q + W_k k), for queries and keys of
    different sizes.

    forward(queries (B, Q, query_size), keys (B, K, key_size), values (B, K, v), mask=None) -> (B, Q, v);
    a bool mask (B, K) or (B, Q, K) marks with True the keys that MAY be attended. Keeps
    .attention_weights (B, Q, K).
    """

    def __init__(self, key_size: int, query_size: int, num_hiddens: int, dropout: float = 0.0):
        super().__init__()
        self.W_k = Linear(key_size, num_hiddens, bias=False)
        self.W_q = Linear(query_size, num_hiddens, bias=False)
        self.w_v = Linear(num_hiddens, 1, bias=False)
        self.dropout = dropout
        self.attention_weights = None

    def forward(self, queries, keys, values, mask=None):
        features = (self.W_q(queries).unsqueeze(2) + self.W_k(keys).unsqueeze(1)).tanh()  # (B, Q, K, h)
        scores = self.w_v(features).squeeze(-1)  # (B, Q, K)
        self.attention_weights = masked_softmax(scores, mask, self)
        return F.dropout(self.attention_weights, self.dropout, self.training) @ values


class DotProductAttention(Module):
    """Scaled dot-product scoring: score(q, k) = q . k / sqrt(d), for queries and keys of one size d.

    forward(queries (B, Q, d), keys (B, K, d), values (B, K, v), mask=None) -> (B, Q, v); a bool mask
    (B, K) or (B, Q, K) marks with True the keys that MAY be attended. Keeps .attention_weights (B, Q, K)
    (so it computes them with primitive ops rather than the fused F.scaled_dot_product_attention).
    """

    def __init__(self, dropout: float = 0.0):
        super().__init__()
        self.dropout = dropout
        self.attention_weights = None

    def forward(self, queries, keys, values, mask=None):
        scores = queries @ keys.mT / math.sqrt(queries.shape[-1])  # (B, Q, K)
        self.attention_weights = masked_softmax(scores, mask, self)
        return F.dropout(self.attention_weights, self.dropout, self.training) @ values


def _as_additive(mask: mg.Tensor | None, dtype, name: str) -> mg.Tensor | None:
    """A bool mask (True: may NOT attend, PyTorch's MHA convention) as 0 / -inf; a float mask as is."""
    if mask is None:
        return None
    if mask.dtype == mg.bool:
        return mg.zeros(*mask.shape, dtype=dtype, device=mask.device).masked_fill(mask, float("-inf"))
    if mask.dtype.kind != "f":
        raise TypeError(f"MultiheadAttention: {name} must be bool or float, got {mask.dtype}")
    return mask.to(dtype)


class MultiheadAttention(Module):
    """Attention over num_heads subspaces of embed_dim, then an output projection.

    query: (L, N, E) ((N, L, E) with batch_first, or unbatched (L, E)); key, value: (S, N, kdim/vdim).
    attn_mask: (L, S) or (N*num_heads, L, S); key_padding_mask: (N, S). A bool mask marks with True
    the positions that may NOT be attended to; a float mask is added to the scores.
    """

    def __init__(
        self,
        embed_dim,
        num_heads,
        dropout=0.0,
        bias=True,
        kdim=None,
        vdim=None,
        batch_first=False,
        device=None,
        dtype=None,
    ):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(
                f"MultiheadAttention: embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})"
            )
        self.embed_dim, self.num_heads, self.dropout, self.batch_first = embed_dim, num_heads, dropout, batch_first
        self.head_dim = embed_dim // num_heads
        self.kdim, self.vdim = kdim or embed_dim, vdim or embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        factory = {"device": device, "dtype": dtype}
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(mg.empty(3 * embed_dim, embed_dim, **factory))
            self.q_proj_weight = self.k_proj_weight = self.v_proj_weight = None
        else:
            self.q_proj_weight = Parameter(mg.empty(embed_dim, embed_dim, **factory))
            self.k_proj_weight = Parameter(mg.empty(embed_dim, self.kdim, **factory))
            self.v_proj_weight = Parameter(mg.empty(embed_dim, self.vdim, **factory))
            self.in_proj_weight = None
        self.in_proj_bias = Parameter(mg.zeros(3 * embed_dim, **factory)) if bias else None
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, **factory)
        for weight in (self.in_proj_weight, self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
            if weight is not None:
                init.xavier_uniform_(weight)
        if bias:
            init.zeros_(self.out_proj.bias)

    def _in_proj(self, x, i):
        """The i-th input projection (0: query, 1: key, 2: value) of x (..., E)."""
        e = self.embed_dim
        if self._qkv_same_embed_dim:
            weight = self.in_proj_weight[i * e : (i + 1) * e]
        else:
            weight = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)[i]
        bias = None if self.in_proj_bias is None else self.in_proj_bias[i * e : (i + 1) * e]
        return F.linear(x, weight, bias)

    def _project(self, query, key, value):
        if self._qkv_same_embed_dim and query is key and key is value:  # self-attention: one GEMM for q, k and v
            return F.linear(query, self.in_proj_weight, self.in_proj_bias).split(self.embed_dim, dim=-1)
        return tuple(self._in_proj(x, i) for i, x in enumerate((query, key, value)))

    def reset_deepnorm(self, beta: float) -> None:
        """DeepNet's init: Xavier-normal with gain 1 for the query and key projections, gain beta for the
        value and output projections (each (E, E) block of in_proj_weight counts as its own matrix)."""
        blocks = [mg.empty(self.embed_dim, dim, device=self.out_proj.weight.device, dtype=self.out_proj.weight.dtype)
                  for dim in (self.embed_dim, self.kdim, self.vdim)]  # fmt: skip
        for block, gain in zip(blocks, (1.0, 1.0, beta)):
            init.xavier_normal_(block, gain=gain)
        with mg.no_grad():
            if self._qkv_same_embed_dim:
                self.in_proj_weight[...] = mg.cat(blocks)
            else:
                for weight, block in zip((self.q_proj_weight, self.k_proj_weight, self.v_proj_weight), blocks):
                    weight[...] = block
        init.xavier_normal_(self.out_proj.weight, gain=beta)

    def forward(
        self,
        query,
        key,
        value,
        key_padding_mask=None,
        need_weights=True,
        attn_mask=None,
        average_attn_weights=True,
        is_causal=False,
    ):
        batched = query.ndim == 3
        if query.ndim not in (2, 3) or query.shape[-1] != self.embed_dim:
            raise RuntimeError(
                f"{self._label}: expected query of shape (L, N, {self.embed_dim}) or (L, {self.embed_dim}), "
                f"got {tuple(query.shape)}"
            )
        if key.shape[-1] != self.kdim or value.shape[-1] != self.vdim or key.shape[:-1] != value.shape[:-1]:
            raise RuntimeError(
                f"{self._label}: expected key (..., {self.kdim}) and value (..., {self.vdim}) of the same "
                f"length, got {tuple(key.shape)} and {tuple(value.shape)}"
            )
        batch = 0 if self.batch_first else 1
        if key.ndim != query.ndim or (batched and key.shape[batch] != query.shape[batch]):
            raise RuntimeError(
                f"{self._label}: key {tuple(key.shape)} must be batched as query {tuple(query.shape)} "
                f"(batch_first={self.batch_first})"
            )
        if not batched:
            query, key, value = (x.unsqueeze(1) for x in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif self.batch_first:
            same_kv = key is value
            same_qk = query is key
            query = query.transpose(0, 1)
            key = query if same_qk else key.transpose(0, 1)
            value = key if same_kv else value.transpose(0, 1)
        # From here on (L, N, E): project, then split the heads into (N, heads, L, head_dim).
        length, n = query.shape[:2]
        source = key.shape[0]
        q, k, v = self._project(query, key, value)
        q, k, v = (self._split_heads(x, n) for x in (q, k, v))

        mask = self._merge_masks(attn_mask, key_padding_mask, is_causal, q.dtype, n, length, source)
        dropout = self.dropout if self.training else 0.0
        if need_weights:
            scores = q @ k.mT * (self.head_dim**-0.5)
            if mask is not None:
                scores = scores + mask
            weights = F.softmax(scores, dim=-1)
            out = F.dropout(weights, dropout, True) @ v if dropout else weights @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
            weights = None
        out = self.out_proj(out.permute(2, 0, 1, 3).reshape(length, n, self.embed_dim))
        if self.batch_first and batched:
            out = out.transpose(0, 1)
        if weights is not None:
            if average_attn_weights:
                weights = weights.mean(dim=1)
            if not batched:
                weights = weights.squeeze(0)
        return (out if batched else out.squeeze(1)), weights

    def forward_cached(self, query, key, cache: dict, key_padding_mask=None, is_causal=False, static_kv=False):
        """Attention for incremental decoding, keeping the keys and values (key = value) in ``cache``.

        query: (L, N, E) ((N, L, E) with batch_first): the new positions only. static_kv=False
        (self-attention): the projected keys and values of key are appended to those cached, and
        is_causal lets new query i see the cached keys and new keys 0..i. static_kv=True
        (cross-attention): key's keys and values are computed on the first call and reused.
        key_padding_mask (N, S): True marks keys that may NOT be attended. Returns the output only.
        cache["k"], cache["v"]: (N, num_heads, S, head_dim).
        """
        if self.batch_first:
            query, key = query.transpose(0, 1), (None if key is query else key.transpose(0, 1))
            key = query if key is None else key
        length, n = query.shape[:2]
        if static_kv and "k" in cache:
            q = self._in_proj(query, 0)
        else:
            q, k, v = self._project(query, key, key)
            k, v = (self._split_heads(x, n) for x in (k, v))
            if not static_kv and "k" in cache:
                k, v = mg.cat([cache["k"], k], dim=2), mg.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
        source = cache["k"].shape[2]
        attn_mask = None
        if is_causal and length > 1:  # the new queries sit at the end of the source
            attn_mask = mg.ones(length, source, dtype=mg.bool, device=q.device).triu(source - length + 1)
        mask = self._merge_masks(attn_mask, key_padding_mask, False, q.dtype, n, length, source)
        dropout = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(self._split_heads(q, n), cache["k"], cache["v"], mask, dropout)
        out = self.out_proj(out.permute(2, 0, 1, 3).reshape(length, n, self.embed_dim))
        return out.transpose(0, 1) if self.batch_first else out

    def _split_heads(self, x, n):
        """(L, N, E) -> (N, num_heads, L, head_dim)."""
        return x.reshape(x.shape[0], n, self.num_heads, self.head_dim).permute(1, 2, 0, 3)

    def _merge_masks(self, attn_mask, key_padding_mask, is_causal, dtype, n, length, source):
        """One additive mask broadcastable to (N, heads, L, S), or None."""
        if is_causal and attn_mask is None:
            attn_mask = mg.ones(length, source, dtype=mg.bool, device=self.out_proj.weight.device).triu(1)
        mask = _as_additive(attn_mask, dtype, "attn_mask")
        if mask is not None:
            if tuple(mask.shape) == (length, source):
                pass
            elif tuple(mask.shape) == (n * self.num_heads, length, source):
                mask = mask.reshape(n, self.num_heads, length, source)
            else:
                raise RuntimeError(
                    f"{self._label}: attn_mask should have shape ({length}, {source}) or "
                    f"({n * self.num_heads}, {length}, {source}), got {tuple(attn_mask.shape)}"
                )
        padding = _as_additive(key_padding_mask, dtype, "key_padding_mask")
        if padding is not None:
            if tuple(padding.shape) != (n, source):
                raise RuntimeError(
                    f"{self._label}: key_padding_mask should have shape ({n}, {source}), "
                    f"got {tuple(key_padding_mask.shape)}"
                )
            padding = padding.reshape(n, 1, 1, source)
            mask = padding if mask is None else mask + padding
        return mask

    @property
    def _label(self) -> str:
        """The module in one line, for error messages."""
        return f"MultiheadAttention(embed_dim={self.embed_dim}, num_heads={self.num_heads})"

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, batch_first={self.batch_first}"
