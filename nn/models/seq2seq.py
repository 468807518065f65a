"""The encoder-decoder interface that decoding (greedy, beam search) needs from a model."""

from __future__ import annotations

import minigrad as mg
from nn.module import Module


class EncoderDecoder(Module):
    """A sequence-to-sequence model: teacher-forced ``forward`` for training and, for decoding,
    ``encode`` once then ``decode_step`` one token at a time. ``state`` is whatever the model needs
    between steps; ``reorder_state`` selects or repeats its batch rows (beam search)."""

    def forward(self, src: mg.Tensor, src_lengths: mg.Tensor, tgt_in: mg.Tensor) -> mg.Tensor:
        """src (B, S), src_lengths (B,), tgt_in (B, T) -> logits (B, T, V)."""
        raise NotImplementedError

    def encode(self, src: mg.Tensor, src_lengths: mg.Tensor):
        """src (B, S), src_lengths (B,) -> state."""
        raise NotImplementedError

    def decode_step(self, tokens: mg.Tensor, state) -> tuple:
        """tokens (B,) -> (logits (B, V), the next state)."""
        raise NotImplementedError

    def reorder_state(self, state, index: mg.Tensor):
        """The state of batch rows ``index`` (B',)."""
        raise NotImplementedError
