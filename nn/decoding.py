"""Decoding: turning a model's next-token scores into tokens.

``sample_next`` draws the next token of a language model from its logits.
"""

from __future__ import annotations

import minigrad as mg
from minigrad import backend
from minigrad.tensor import Tensor


@mg.no_grad()
def sample_next(logits: Tensor, temperature: float = 1.0, top_k: int | None = None, generator=None) -> Tensor:
    """One token per row from softmax(logits / temperature), keeping only the ``top_k`` highest
    logits if given. logits: (B, V) -> (B,) int64. ``temperature=0`` takes the argmax.

    ``generator``: a NumPy-style generator (``.random(shape)``) for the draw; by default the one
    ``mg.manual_seed`` seeds, so that sampling is reproducible.
    """
    if logits.ndim != 2:
        raise ValueError(f"sample_next: expected logits (B, V), got shape {tuple(logits.shape)}")
    vocab = logits.shape[1]
    if temperature < 0:
        raise ValueError(f"sample_next: temperature must be >= 0, got {temperature}")
    if top_k is not None and not 1 <= top_k <= vocab:
        raise ValueError(f"sample_next: top_k must be in 1..{vocab} (the vocabulary size), got {top_k}")
    scores = logits.data.astype(backend.float64)
    xp = backend.array_module(scores)
    if temperature == 0:
        return Tensor._make(scores.argmax(axis=1).astype(backend.int64))
    scores = scores / temperature
    if top_k is not None:
        kth = xp.sort(scores, axis=1)[:, vocab - top_k : vocab - top_k + 1]  # (B, 1)
        scores = xp.where(scores < kth, -xp.inf, scores)
    probs = xp.exp(scores - scores.max(axis=1, keepdims=True))
    cumulative = xp.cumsum(probs, axis=1)  # (B, V), unnormalised
    draw = (generator or backend.generator(logits.device)).random((logits.shape[0], 1)) * cumulative[:, -1:]
    tokens = (cumulative <= draw).sum(axis=1)  # the first token whose cumulative mass passes the draw
    return Tensor._make(xp.minimum(tokens, vocab - 1).astype(backend.int64))
