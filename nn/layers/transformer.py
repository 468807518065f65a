"""Transformer layers as PyTorch names them: encoder and decoder layers (post- or pre-norm),
their stacks, and the full encoder-decoder Transformer."""

from __future__ import annotations

import copy
import math

import minigrad as mg
import minigrad.functional as F
from nn import init
from nn.layers.attention import MultiheadAttention
from nn.layers.dropout import Dropout
from nn.layers.linear import Linear
from nn.layers.norm import LayerNorm
from nn.module import Module, ModuleList, Parameter


def _activation(activation):
    if callable(activation):
        return activation
    if activation not in ("relu", "gelu"):
        raise ValueError(f"Transformer: activation should be 'relu', 'gelu' or a callable, got {activation!r}")
    return getattr(F, activation)


class _AddPositions(Module):
    """Adds rows offset..offset+T of a (max_len, d_model) position table to x (B, T, d_model), then dropout."""

    def __init__(self, d_model: int, max_len: int, dropout: float):
        super().__init__()
        self.d_model, self.max_len = d_model, max_len
        self.dropout = Dropout(dropout)

    def forward(self, x: mg.Tensor, offset: int = 0) -> mg.Tensor:
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise RuntimeError(
                f"{type(self).__name__}: expected x of shape (B, T, {self.d_model}), got {tuple(x.shape)}"
            )
        end = offset + x.shape[1]
        if end > self.max_len:
            raise ValueError(
                f"{type(self).__name__}: a sequence of length {x.shape[1]} at offset {offset} needs {end} "
                f"positions, more than max_len={self.max_len}"
            )
        return self.dropout(x + self.table[offset:end])

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, max_len={self.max_len}"


class PositionalEncoding(_AddPositions):
    """The sinusoidal position code of "Attention Is All You Need", added to x (B, T, C = d_model), then dropout.

    PE[t, 2i] = sin(t / 10000^(2i/d_model)), PE[t, 2i+1] = cos(t / 10000^(2i/d_model)).
    forward(x, offset=0): offset is the position of x's first step (for incremental decoding).
    """

    def __init__(self, d_model: int, max_len: int = 5000, dropout: float = 0.0):
        super().__init__(d_model, max_len, dropout)
        position = mg.arange(max_len, dtype=mg.float64).unsqueeze(1)
        frequency = (mg.arange(0, d_model, 2, dtype=mg.float64) * (-math.log(10000.0) / d_model)).exp()
        angles = position * frequency  # (max_len, ceil(d_model / 2))
        table = mg.stack([angles.sin(), angles.cos()], dim=-1).reshape(max_len, -1)[:, :d_model]
        self.register_buffer("pe", table.to(mg.get_default_dtype()), persistent=False)

    @property
    def table(self) -> mg.Tensor:
        return self.pe


class LearnedPositionalEncoding(_AddPositions):
    """A learned position embedding (max_len, d_model), N(0, 0.02^2) at init, added to x (B, T, C = d_model),
    then dropout. forward(x, offset=0) as PositionalEncoding's."""

    def __init__(self, d_model: int, max_len: int, dropout: float = 0.0):
        super().__init__(d_model, max_len, dropout)
        self.weight = Parameter(init.normal_(mg.empty(max_len, d_model), std=0.02))

    @property
    def table(self) -> mg.Tensor:
        return self.weight


def deepnorm_constants(num_encoder_layers: int = 0, num_decoder_layers: int = 0) -> dict:
    """DeepNet's (alpha, beta) per stack (Wang et al. 2022, table 1): ``{"encoder": (a, b), "decoder": (a, b)}``,
    with a key for each stack that has layers. alpha scales the residual, x = LN(alpha * x + G(x)); beta
    is the Xavier gain of the feed-forward, value and output projections."""
    n, m = num_encoder_layers, num_decoder_layers
    if n < 0 or m < 0 or n + m == 0:
        raise ValueError(f"deepnorm_constants: need a positive number of layers, got N={n}, M={m}")
    if m == 0:
        return {"encoder": ((2 * n) ** 0.25, (8 * n) ** -0.25)}
    if n == 0:
        return {"decoder": ((2 * m) ** 0.25, (8 * m) ** -0.25)}
    return {
        "encoder": (0.81 * (n**4 * m) ** (1 / 16), 0.87 * (n**4 * m) ** (-1 / 16)),
        "decoder": ((3 * m) ** 0.25, (12 * m) ** -0.25),
    }


class _TransformerLayer(Module):
    """What encoder and decoder layers share: self-attention, the feed-forward block, and one
    LayerNorm and dropout per residual block (2 in an encoder layer, 3 in a decoder layer).

    deepnorm=True (DeepNet, post-LN only): x = norm(alpha * x + block(x)) and the DeepNet init.
    A layer on its own is a stack of one; its stack or nn.Transformer resets alpha and beta with
    ``reset_deepnorm`` for the whole architecture.
    """

    blocks = 2
    role = "encoder"  # which of DeepNet's stacks the layer belongs to

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu", layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True, device=None, dtype=None, deepnorm=False):  # fmt: skip
        super().__init__()
        if deepnorm and norm_first:
            raise ValueError(f"{type(self).__name__}: deepnorm=True is a post-LN layer; it needs norm_first=False")
        factory = {"device": device, "dtype": dtype}
        attention = {"dropout": dropout, "bias": bias, "batch_first": batch_first, **factory}
        self.self_attn = MultiheadAttention(d_model, nhead, **attention)
        if self.blocks == 3:
            self.multihead_attn = MultiheadAttention(d_model, nhead, **attention)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **factory)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **factory)
        self.norm_first = norm_first
        for i in range(1, self.blocks + 1):
            setattr(self, f"norm{i}", LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory))
        for i in range(1, self.blocks + 1):
            setattr(self, f"dropout{i}", Dropout(dropout))
        self.activation = _activation(activation)
        self.deepnorm, self.alpha = deepnorm, 1.0
        if deepnorm:
            self.reset_deepnorm(*deepnorm_constants(**{f"num_{self.role}_layers": 1})[self.role])

    def reset_deepnorm(self, alpha: float, beta: float) -> None:
        """Set the residual scale alpha and re-initialise as DeepNet does: Xavier-normal with gain beta
        for the feed-forward, value and output projections, gain 1 for queries and keys."""
        self.alpha = alpha
        for attention in (self.self_attn, getattr(self, "multihead_attn", None)):
            if attention is not None:
                attention.reset_deepnorm(beta)
        for linear in (self.linear1, self.linear2):
            init.xavier_normal_(linear.weight, gain=beta)

    def _residual(self, x, blocks):
        """x through each block with its residual connection and norm (norm1 goes with blocks[0], ...)."""
        for i, block in enumerate(blocks, 1):
            norm = getattr(self, f"norm{i}")
            if self.norm_first:
                x = x + block(norm(x))
            else:
                x = norm((x * self.alpha if self.deepnorm else x) + block(x))
        return x

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        out = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False,
                             is_causal=is_causal)[0]  # fmt: skip
        return self.dropout1(out)

    def _ff_block(self, x):
        out = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return getattr(self, f"dropout{self.blocks}")(out)


class _CrossStream(Module):
    """One stream's half of a co-attention layer: x (B, T, C) attends to the other stream (B, S, C_other),
    then a feed-forward block, each with a residual connection and LayerNorm (post-norm, as in BERT)."""

    def __init__(self, d_model, d_other, nhead, dim_feedforward, dropout, activation, layer_norm_eps, batch_first):
        super().__init__()
        self.attn = MultiheadAttention(d_model, nhead, dropout, kdim=d_other, vdim=d_other, batch_first=batch_first)
        self.linear1 = Linear(d_model, dim_feedforward)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model)
        self.norm1, self.norm2 = LayerNorm(d_model, eps=layer_norm_eps), LayerNorm(d_model, eps=layer_norm_eps)
        self.dropout1, self.dropout2 = Dropout(dropout), Dropout(dropout)
        self.activation = _activation(activation)

    def forward(self, x, other, other_key_padding_mask=None):
        seen = self.attn(x, other, other, key_padding_mask=other_key_padding_mask, need_weights=False)[0]
        x = self.norm1(x + self.dropout1(seen))
        return self.norm2(x + self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x))))))


class CoAttentionLayer(Module):
    """ViLBERT's co-attentional transformer layer (Lu et al. 2019, fig. 2b): each of two streams takes its
    queries from itself and its keys and values from the other, then a feed-forward block.

        visual' = FF(norm(visual + MHA(q=visual, k=text, v=text)))    (each block with residual and norm)
        text'   = FF(norm(text + MHA(q=text, k=visual, v=visual)))

    Both are computed from the inputs, not one from the other's output. visual: (B, Tv, d_visual), text:
    (B, Tt, d_text) with batch_first (else (Tv, B, d_visual), (Tt, B, d_text)); the widths may differ.
    forward(visual, text, visual_key_padding_mask=None, text_key_padding_mask=None) -> (visual', text');
    a key padding mask (B, Tv) or (B, Tt) is True at padding, which the other stream then does not attend to.
    """

    def __init__(self, d_visual, d_text, nhead, dim_feedforward=2048, dropout=0.1, activation="relu",
                 layer_norm_eps=1e-5, batch_first=False):  # fmt: skip
        super().__init__()
        common = (nhead, dim_feedforward, dropout, activation, layer_norm_eps, batch_first)
        self.visual = _CrossStream(d_visual, d_text, *common)
        self.text = _CrossStream(d_text, d_visual, *common)

    def forward(self, visual, text, visual_key_padding_mask=None, text_key_padding_mask=None):
        return self.visual(visual, text, text_key_padding_mask), self.text(text, visual, visual_key_padding_mask)


class TransformerEncoderLayer(_TransformerLayer):
    """Self-attention and a feed-forward block, each with a residual connection and LayerNorm.

    norm_first=False (the paper): x = norm(x + block(x)); norm_first=True (pre-LN): x = x + block(norm(x));
    deepnorm=True (DeepNet): x = norm(alpha * x + block(x)). src: (S, N, E), or (N, S, E) with batch_first.
    """

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        def self_attention(x):
            return self._sa_block(x, src_mask, src_key_padding_mask, is_causal)

        return self._residual(src, (self_attention, self._ff_block))


class TransformerDecoderLayer(_TransformerLayer):
    """Masked self-attention, attention over the encoder's memory, and a feed-forward block."""

    blocks = 3
    role = "decoder"

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False):  # fmt: skip
        def self_attention(x):
            return self._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal)

        def cross_attention(x):
            return self._mha_block(x, memory, memory_mask, memory_key_padding_mask, memory_is_causal)

        return self._residual(tgt, (self_attention, cross_attention, self._ff_block))

    def forward_step(self, tgt, memory, cache: dict, memory_key_padding_mask=None):
        """Incremental decoding: tgt holds only the new positions, each attending causally to every earlier one.

        tgt: (T_new, N, E) ((N, T_new, E) with batch_first); cache: a dict this call fills, kept between
        calls: the self-attention keys and values of the prefix (grown each call) and the memory's keys
        and values for cross-attention (computed on the first call).
        """
        self_cache, cross_cache = cache.setdefault("self", {}), cache.setdefault("cross", {})

        def self_attention(x):
            return self.dropout1(self.self_attn.forward_cached(x, x, self_cache, is_causal=True))

        def cross_attention(x):
            out = self.multihead_attn.forward_cached(x, memory, cross_cache, memory_key_padding_mask, static_kv=True)
            return self.dropout2(out)

        return self._residual(tgt, (self_attention, cross_attention, self._ff_block))

    def _mha_block(self, x, memory, attn_mask, key_padding_mask, is_causal):
        out = self.multihead_attn(x, memory, memory, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                                  need_weights=False, is_causal=is_causal)[0]  # fmt: skip
        return self.dropout2(out)


def _reset_deepnorm(layers, constants: dict) -> None:
    for layer in layers:
        layer.reset_deepnorm(*constants[layer.role])


class TransformerEncoder(Module):
    """num_layers copies of encoder_layer, then an optional final norm. Copies of a deepnorm layer get
    DeepNet's encoder-only alpha and beta for N = num_layers."""

    def __init__(self, encoder_layer, num_layers, norm=None):
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])
        self.num_layers, self.norm = num_layers, norm
        if getattr(encoder_layer, "deepnorm", False):
            _reset_deepnorm(self.layers, deepnorm_constants(num_encoder_layers=num_layers))

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=False):
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask, is_causal=is_causal)
        return self.norm(x) if self.norm is not None else x


class TransformerDecoder(Module):
    """num_layers copies of decoder_layer, then an optional final norm. Copies of a deepnorm layer get
    DeepNet's decoder-only alpha and beta for M = num_layers."""

    def __init__(self, decoder_layer, num_layers, norm=None):
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(decoder_layer) for _ in range(num_layers)])
        self.num_layers, self.norm = num_layers, norm
        if getattr(decoder_layer, "deepnorm", False):
            _reset_deepnorm(self.layers, deepnorm_constants(num_decoder_layers=num_layers))

    def forward(
        self,
        tgt,
        memory,
        tgt_mask=None,
        memory_mask=None,
        tgt_key_padding_mask=None,
        memory_key_padding_mask=None,
        tgt_is_causal=False,
        memory_is_causal=False,
    ):
        x = tgt
        for layer in self.layers:
            x = layer(
                x,
                memory,
                tgt_mask,
                memory_mask,
                tgt_key_padding_mask,
                memory_key_padding_mask,
                tgt_is_causal,
                memory_is_causal,
            )
        return self.norm(x) if self.norm is not None else x

    def forward_step(self, tgt, memory, cache: list, memory_key_padding_mask=None):
        """Incremental decoding of the new positions tgt with one cache dict per layer (see
        ``TransformerDecoderLayer.forward_step``); ``cache`` starts as ``[{} for _ in layers]``."""
        x = tgt
        for layer, layer_cache in zip(self.layers, cache, strict=True):
            x = layer.forward_step(x, memory, layer_cache, memory_key_padding_mask)
        return self.norm(x) if self.norm is not None else x


class Transformer(Module):
    """The encoder-decoder Transformer of "Attention Is All You Need" (PyTorch's nn.Transformer).

    deepnorm=True builds DeepNet (post-LN layers with x = norm(alpha * x + block(x)) and its init,
    alpha and beta of the encoder-decoder architecture from ``deepnorm_constants``).
    """

    def __init__(
        self,
        d_model=512,
        nhead=8,
        num_encoder_layers=6,
        num_decoder_layers=6,
        dim_feedforward=2048,
        dropout=0.1,
        activation="relu",
        custom_encoder=None,
        custom_decoder=None,
        layer_norm_eps=1e-5,
        batch_first=False,
        norm_first=False,
        bias=True,
        device=None,
        dtype=None,
        deepnorm=False,
    ):
        super().__init__()
        options = dict(
            dim_feedforward=dim_feedforward,
            dropout=dropout,
            activation=activation,
            layer_norm_eps=layer_norm_eps,
            batch_first=batch_first,
            norm_first=norm_first,
            bias=bias,
            device=device,
            dtype=dtype,
            deepnorm=deepnorm,
        )
        norm = {"eps": layer_norm_eps, "bias": bias, "device": device, "dtype": dtype}
        self.encoder = custom_encoder or TransformerEncoder(
            TransformerEncoderLayer(d_model, nhead, **options), num_encoder_layers, LayerNorm(d_model, **norm)
        )
        self.decoder = custom_decoder or TransformerDecoder(
            TransformerDecoderLayer(d_model, nhead, **options), num_decoder_layers, LayerNorm(d_model, **norm)
        )
        self.d_model, self.nhead, self.batch_first = d_model, nhead, batch_first
        for p in self.parameters():  # PyTorch's nn.Transformer re-initialises every matrix
            if p.ndim > 1:
                init.xavier_uniform_(p)
        if deepnorm:
            constants = deepnorm_constants(num_encoder_layers, num_decoder_layers)
            _reset_deepnorm([*self.encoder.layers, *self.decoder.layers], constants)

    def forward(
        self,
        src,
        tgt,
        src_mask=None,
        tgt_mask=None,
        memory_mask=None,
        src_key_padding_mask=None,
        tgt_key_padding_mask=None,
        memory_key_padding_mask=None,
        src_is_causal=False,
        tgt_is_causal=False,
        memory_is_causal=False,
    ):
        memory = self.encoder(src, src_mask, src_key_padding_mask, src_is_causal)
        return self.decoder(
            tgt,
            memory,
            tgt_mask,
            memory_mask,
            tgt_key_padding_mask,
            memory_key_padding_mask,
            tgt_is_causal,
            memory_is_causal,
        )

    @staticmethod
    def generate_square_subsequent_mask(sz: int, device=None, dtype=None) -> mg.Tensor:
        """(sz, sz) float mask: 0 on and below the diagonal, -inf above (a position sees only its past)."""
        return mg.full((sz, sz), float("-inf"), device=device, dtype=dtype).triu(1)
