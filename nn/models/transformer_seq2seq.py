"""A Transformer for sequence-to-sequence tasks: token embeddings and sinusoidal positions, nn.Transformer
(batch-first, post-LN or DeepNet), and a projection to the target vocabulary; decodes with a KV cache."""

from __future__ import annotations

import math

import minigrad as mg
from nn import init
from nn.layers.linear import Linear
from nn.layers.sparse import Embedding
from nn.layers.transformer import PositionalEncoding, Transformer
from nn.models.seq2seq import EncoderDecoder


class TransformerSeq2Seq(EncoderDecoder):
    """src (B, S) and tgt_in (B, T) token ids -> logits (B, T, tgt_vocab), as in "Attention Is All You Need".

    Embeddings (N(0, 1/d_model) at init) are scaled by sqrt(d_model) and get sinusoidal positions.
    Padding (pad_id, or beyond src_lengths) is masked out of every attention; the decoder is causal.
    The decoding state (``encode``/``decode_step``) is a dict: ``memory`` (B, S, d_model),
    ``src_padding`` (B, S) bool (True: a padding position), ``cache`` (one dict per decoder layer with
    the self-attention keys/values of the prefix and the cross-attention keys/values of the memory)
    and ``step`` (the number of tokens decoded so far).
    """

    def __init__(
        self,
        src_vocab: int,
        tgt_vocab: int,
        d_model: int = 128,
        nhead: int = 4,
        num_encoder_layers: int = 3,
        num_decoder_layers: int = 3,
        dim_feedforward: int = 512,
        dropout: float = 0.1,
        max_len: int = 256,
        deepnorm: bool = False,
        norm_first: bool = False,
        activation: str = "relu",
        pad_id: int = 0,
    ):
        super().__init__()
        self.d_model, self.pad_id = d_model, pad_id
        self.src_embed = Embedding(src_vocab, d_model, padding_idx=pad_id)
        self.tgt_embed = Embedding(tgt_vocab, d_model, padding_idx=pad_id)
        for embedding in (self.src_embed, self.tgt_embed):
            init.normal_(embedding.weight, std=d_model**-0.5)
            with mg.no_grad():
                embedding.weight[pad_id] = 0
        self.positions = PositionalEncoding(d_model, max_len, dropout)
        self.transformer = Transformer(
            d_model, nhead, num_encoder_layers, num_decoder_layers, dim_feedforward, dropout, activation,
            batch_first=True, norm_first=norm_first, deepnorm=deepnorm,
        )  # fmt: skip
        self.generator = Linear(d_model, tgt_vocab)

    def _embed(self, embedding, tokens, offset=0):
        return self.positions(embedding(tokens) * math.sqrt(self.d_model), offset)

    def _src_padding(self, src, src_lengths):
        """(B, S) bool, True at padding positions (beyond src_lengths, or pad_id when lengths are None)."""
        if src_lengths is None:
            return src == self.pad_id
        return mg.arange(src.shape[1], device=src.device).unsqueeze(0) >= src_lengths.unsqueeze(1)

    def forward(self, src: mg.Tensor, src_lengths: mg.Tensor | None, tgt_in: mg.Tensor) -> mg.Tensor:
        """Teacher forcing: src (B, S), src_lengths (B,) or None, tgt_in (B, T) -> logits (B, T, tgt_vocab)."""
        src_padding = self._src_padding(src, src_lengths)
        length = tgt_in.shape[1]
        causal = mg.ones(length, length, dtype=mg.bool, device=tgt_in.device).triu(1)  # True: a future position
        out = self.transformer(
            self._embed(self.src_embed, src), self._embed(self.tgt_embed, tgt_in), tgt_mask=causal,
            src_key_padding_mask=src_padding, tgt_key_padding_mask=tgt_in == self.pad_id,
            memory_key_padding_mask=src_padding,
        )  # fmt: skip
        return self.generator(out)

    def encode(self, src: mg.Tensor, src_lengths: mg.Tensor | None) -> dict:
        src_padding = self._src_padding(src, src_lengths)
        memory = self.transformer.encoder(self._embed(self.src_embed, src), src_key_padding_mask=src_padding)
        cache = [{"self": {}, "cross": {}} for _ in self.transformer.decoder.layers]
        return {"memory": memory, "src_padding": src_padding, "cache": cache, "step": 0}

    def decode_step(self, tokens: mg.Tensor, state: dict) -> tuple:
        """tokens (B,): the last token of each row -> (logits (B, tgt_vocab), the next state).
        Only the new token goes through the decoder; earlier keys and values come from the cache."""
        x = self._embed(self.tgt_embed, tokens.unsqueeze(1), offset=state["step"])
        # A fresh self-attention dict per layer, so that the given state stays valid (beam search may reuse it).
        cache = [{"self": dict(c["self"]), "cross": c["cross"]} for c in state["cache"]]
        out = self.transformer.decoder.forward_step(x, state["memory"], cache, state["src_padding"])
        return self.generator(out[:, -1]), {**state, "cache": cache, "step": state["step"] + 1}

    def reorder_state(self, state: dict, index: mg.Tensor) -> dict:
        def rows(table):
            return {name: tensor[index] for name, tensor in table.items()}

        return {
            "memory": state["memory"][index],
            "src_padding": state["src_padding"][index],
            "cache": [{"self": rows(c["self"]), "cross": rows(c["cross"])} for c in state["cache"]],
            "step": state["step"],
        }
