"""GRU encoder-decoders for sequence to sequence learning (d2l's Seq2Seq and Bahdanau attention).

Any model that implements the ``EncoderDecoder`` interface (encode, decode_step, reorder_state and a
teacher-forced forward) gets greedy and beam search from ``nn.decoding``. Batches are batch-first and
right-padded: src (B, S) with lengths (B,), tgt_in (B, T) = <bos> y...
"""

from __future__ import annotations

import minigrad as mg
from nn.layers.attention import AdditiveAttention
from nn.layers.dropout import Dropout
from nn.layers.linear import Linear
from nn.layers.rnn import GRU
from nn.layers.sparse import Embedding
from nn.module import Module, ModuleList


class EncoderDecoder(Module):
    """The interface decoding needs.

    forward(src (B, S), src_lengths (B,), tgt_in (B, T)) -> logits (B, T, V), teacher-forced;
    encode(src, src_lengths) -> state; decode_step(tokens (B,), state) -> (logits (B, V), state);
    reorder_state(state, index (B',)) -> state with batch rows index (selected or repeated).
    """

    def forward(self, src: mg.Tensor, src_lengths: mg.Tensor, tgt_in: mg.Tensor) -> mg.Tensor:
        raise NotImplementedError

    def encode(self, src: mg.Tensor, src_lengths: mg.Tensor):
        raise NotImplementedError

    def decode_step(self, tokens: mg.Tensor, state) -> tuple:
        raise NotImplementedError

    def reorder_state(self, state, index: mg.Tensor):
        raise NotImplementedError


class Seq2SeqEncoder(Module):
    """Embedding + a stack of GRU layers, batch-first.

    forward(src (B, S), src_lengths (B,)) -> outputs (B, S, H), state (num_layers, B, H). Each layer is
    its own GRU so that its final state can be read at step length-1: with right padding, the padding
    changes neither the outputs at real steps nor the final state.
    """

    def __init__(self, vocab_size: int, embed_size: int, num_hiddens: int, num_layers: int = 1,
                 dropout: float = 0.0, padding_idx: int = 0):  # fmt: skip
        super().__init__()
        self.embedding = Embedding(vocab_size, embed_size, padding_idx=padding_idx)
        sizes = [embed_size] + [num_hiddens] * num_layers
        self.layers = ModuleList(GRU(sizes[i], num_hiddens, batch_first=True) for i in range(num_layers))
        self.dropout = Dropout(dropout)

    def forward(self, src: mg.Tensor, src_lengths: mg.Tensor) -> tuple:
        x = self.embedding(src)  # (B, S, E)
        rows, last = mg.arange(src.shape[0], device=src.device), src_lengths.to(mg.int64) - 1
        finals = []
        for i, layer in enumerate(self.layers):
            if i:
                x = self.dropout(x)
            x, _ = layer(x)  # (B, S, H)
            finals.append(x[rows, last])  # (B, H): the state after each sequence's last real token
        return x, mg.stack(finals)


def _check_lengths(src: mg.Tensor, src_lengths: mg.Tensor, owner: Module) -> None:
    if src.ndim != 2 or tuple(src_lengths.shape) != (src.shape[0],):
        raise RuntimeError(
            f"{type(owner).__name__}: expected src (B, S) and src_lengths (B,), "
            f"got {tuple(src.shape)} and {tuple(src_lengths.shape)}"
        )
    if src.shape[0] and not 1 <= int(src_lengths.min().item()) <= int(src_lengths.max().item()) <= src.shape[1]:
        raise ValueError(
            f"{type(owner).__name__}: src_lengths must be in [1, {src.shape[1]}], "
            f"got {src_lengths.min().item()}..{src_lengths.max().item()}"
        )


class Seq2Seq(EncoderDecoder):
    """d2l's GRU encoder-decoder: the encoder's final state starts the decoder, and its top layer (the
    context) is concatenated to every decoder input embedding.

    state: (context (B, H), hidden (num_layers, B, H)).
    """

    def __init__(self, src_vocab: int, tgt_vocab: int, embed_size: int = 32, num_hiddens: int = 64,
                 num_layers: int = 1, dropout: float = 0.0, padding_idx: int = 0):  # fmt: skip
        super().__init__()
        self.encoder = Seq2SeqEncoder(src_vocab, embed_size, num_hiddens, num_layers, dropout, padding_idx)
        self.embedding = Embedding(tgt_vocab, embed_size, padding_idx=padding_idx)
        self.rnn = GRU(embed_size + num_hiddens, num_hiddens, num_layers, batch_first=True, dropout=dropout)
        self.dense = Linear(num_hiddens, tgt_vocab)

    def encode(self, src, src_lengths):
        _check_lengths(src, src_lengths, self)
        _, hidden = self.encoder(src, src_lengths)
        return hidden[-1], hidden

    def _decode(self, tgt_in: mg.Tensor, state) -> tuple:
        """tgt_in (B, T) -> logits (B, T, V), state."""
        context, hidden = state
        x = self.embedding(tgt_in)  # (B, T, E)
        x = mg.cat([x, context.unsqueeze(1).expand(x.shape[:2] + context.shape[-1:])], dim=-1)
        out, hidden = self.rnn(x, hidden)  # (B, T, H)
        return self.dense(out), (context, hidden)

    def forward(self, src, src_lengths, tgt_in):
        return self._decode(tgt_in, self.encode(src, src_lengths))[0]

    def decode_step(self, tokens, state):
        logits, state = self._decode(tokens.unsqueeze(1), state)
        return logits.squeeze(1), state

    def reorder_state(self, state, index):
        context, hidden = state
        return context[index], hidden[:, index]


class Seq2SeqAttention(EncoderDecoder):
    """A GRU decoder with Bahdanau attention: at each step the top decoder state queries the encoder
    outputs (padding masked) through AdditiveAttention, and the context read is concatenated to the
    input embedding.

    state: (enc_outputs (B, S, H), src_mask (B, S) bool, True on real tokens, hidden (num_layers, B, H)).
    forward keeps .attention_weights (B, T, S) for plotting.
    """

    def __init__(self, src_vocab: int, tgt_vocab: int, embed_size: int = 32, num_hiddens: int = 64,
                 num_layers: int = 1, dropout: float = 0.0, padding_idx: int = 0):  # fmt: skip
        super().__init__()
        self.encoder = Seq2SeqEncoder(src_vocab, embed_size, num_hiddens, num_layers, dropout, padding_idx)
        self.attention = AdditiveAttention(num_hiddens, num_hiddens, num_hiddens, dropout)
        self.embedding = Embedding(tgt_vocab, embed_size, padding_idx=padding_idx)
        self.rnn = GRU(embed_size + num_hiddens, num_hiddens, num_layers, batch_first=True, dropout=dropout)
        self.dense = Linear(num_hiddens, tgt_vocab)
        self.attention_weights = None

    def encode(self, src, src_lengths):
        _check_lengths(src, src_lengths, self)
        outputs, hidden = self.encoder(src, src_lengths)
        src_mask = mg.arange(src.shape[1], device=src.device) < src_lengths.unsqueeze(1)  # (B, S)
        return outputs, src_mask, hidden

    def decode_step(self, tokens, state):
        enc_outputs, src_mask, hidden = state
        query = hidden[-1].unsqueeze(1)  # (B, 1, H)
        context = self.attention(query, enc_outputs, enc_outputs, src_mask)  # (B, 1, H)
        x = mg.cat([self.embedding(tokens).unsqueeze(1), context], dim=-1)  # (B, 1, E + H)
        out, hidden = self.rnn(x, hidden)
        return self.dense(out.squeeze(1)), (enc_outputs, src_mask, hidden)

    def forward(self, src, src_lengths, tgt_in):
        state = self.encode(src, src_lengths)
        logits, weights = [], []
        for tokens in tgt_in.unbind(1):
            step_logits, state = self.decode_step(tokens, state)
            logits.append(step_logits)
            weights.append(self.attention.attention_weights.detach())
        self.attention_weights = mg.cat(weights, dim=1)  # (B, T, S)
        return mg.stack(logits, dim=1)

    def reorder_state(self, state, index):
        enc_outputs, src_mask, hidden = state
        return enc_outputs[index], src_mask[index], hidden[:, index]
