"""Decoding, once for every model: turning next-token scores into tokens.

``greedy_search`` and ``beam_search`` decode any ``EncoderDecoder`` (encode, decode_step,
reorder_state; see nn/models/seq2seq.py); they run without recording gradients and return, per
source row, the generated token ids without <bos> and without the final <eos>. ``sample_next``
draws the next token of a language model from its logits.
"""

from __future__ import annotations

import math

import minigrad as mg
import minigrad.functional as F
from minigrad import backend
from minigrad.tensor import Tensor


@mg.no_grad()
def greedy_search(model, src: mg.Tensor, src_lengths: mg.Tensor, bos_id: int, eos_id: int,
                  max_len: int) -> list[list[int]]:  # fmt: skip
    """The most likely next token at each step, for at most max_len steps. src: (B, S), src_lengths: (B,)."""
    state = model.encode(src, src_lengths)
    tokens = mg.full((src.shape[0],), bos_id, dtype=mg.int64, device=src.device)
    steps = []
    for _ in range(max_len):
        logits, state = model.decode_step(tokens, state)  # (B, V)
        tokens = logits.argmax(-1)
        steps.append(tokens.tolist())
        if all(eos_id in column for column in zip(*steps)):
            break
    return [_until_eos(row, eos_id) for row in zip(*steps)]


def _until_eos(ids, eos_id: int) -> list[int]:
    ids = list(ids)
    return ids[: ids.index(eos_id)] if eos_id in ids else ids


def gnmt_length_penalty(length: int, alpha: float) -> float:
    """Wu et al. (2016), GNMT: ((5 + length) / 6) ** alpha; alpha = 0 ranks by plain log-probability."""
    return ((5 + length) / 6) ** alpha


@mg.no_grad()
def beam_search(model, src: mg.Tensor, src_lengths: mg.Tensor, bos_id: int, eos_id: int, max_len: int,
                beam_width: int = 4, length_penalty: float = 1.0) -> list[list[int]]:  # fmt: skip
    """Beam search: keep the beam_width most likely open prefixes of each source row. A prefix that
    emits <eos> is finished and scored log p(y) / lp(n), with GNMT's lp(n) = ((5 + n) / 6) ** length_penalty
    (Wu et al. 2016; n counts the <eos>; length_penalty = 0 ranks by log-probability). Prefixes still open
    after max_len steps are scored the same way. A row stops once no open prefix can beat its best
    finished one. src: (B, S), src_lengths: (B,). Returns the best hypothesis of each row.
    """
    if not isinstance(beam_width, int) or beam_width < 1:
        raise ValueError(f"beam_search: beam_width must be an integer >= 1, got {beam_width!r}")
    batch, width, device = src.shape[0], beam_width, src.device
    state = model.encode(src, src_lengths)
    state = model.reorder_state(state, mg.arange(batch * width, device=device) // width)  # W copies of each row
    tokens = mg.full((batch * width,), bos_id, dtype=mg.int64, device=device)
    open_ = [[(0.0, [])] for _ in range(batch)]  # per row, per beam slot: (log p, ids); slot 0 holds <bos>
    finished = [[] for _ in range(batch)]  # per row: (score, ids)
    for length in range(1, max_len + 1):
        logits, state = model.decode_step(tokens, state)
        log_probs = F.log_softmax(logits.float(), dim=-1).cpu().numpy().reshape(batch, width, -1)  # (B, W, V)
        parents, next_tokens = [], []
        for b in range(batch):
            if open_[b]:
                open_[b] = _extend(open_[b], log_probs[b], eos_id, finished[b], length, length_penalty)
                if _cannot_improve(open_[b], finished[b], length, max_len, length_penalty):
                    open_[b] = []
            # A fixed (B * W) layout: a row's unused slots follow its slot 0 and are never read.
            slots = [(parent, ids[-1]) for _, ids, parent in open_[b]] + [(0, eos_id)] * width
            parents += [b * width + parent for parent, _ in slots[:width]]
            next_tokens += [token for _, token in slots[:width]]
            open_[b] = [(logp, ids) for logp, ids, _ in open_[b]]
        if not any(open_):
            break
        state = model.reorder_state(state, mg.tensor(parents, dtype=mg.int64, device=device))
        tokens = mg.tensor(next_tokens, dtype=mg.int64, device=device)
    for b in range(batch):
        finished[b] += [(logp / gnmt_length_penalty(len(ids), length_penalty), ids) for logp, ids in open_[b]]
    return [max(row, key=lambda hyp: hyp[0])[1] for row in finished]


def _extend(prefixes, log_probs, eos_id, finished, length, alpha) -> list:
    """The best len(log_probs) open extensions of a row's prefixes, as (log p, ids, parent slot).
    log_probs: (W, V) next-token log-probabilities per slot. Extensions by <eos> among them go to
    ``finished`` with their length-penalised score."""
    width, vocab = log_probs.shape
    totals = (log_probs[: len(prefixes)] + [[logp] for logp, _ in prefixes]).ravel()  # (len(prefixes) * V,)
    best = totals.argsort()[::-1][: 2 * width]  # at most one <eos> per prefix: W open ones remain
    extended = []
    for flat in best.tolist():
        parent, token, logp = flat // vocab, flat % vocab, float(totals[flat])
        if len(extended) == width or logp == -math.inf:
            break
        if token == eos_id:
            finished.append((logp / gnmt_length_penalty(length, alpha), prefixes[parent][1]))
        else:
            extended.append((logp, prefixes[parent][1] + [token], parent))
    return extended


def _cannot_improve(prefixes, finished, length, max_len, alpha) -> bool:
    """No open prefix can end above the best finished score: log p only falls as a prefix grows, so
    its best is its log p now over the most favourable penalty still reachable."""
    if not finished or not prefixes:
        return not prefixes
    best_open = max(logp for logp, *_ in prefixes)
    most_favourable = max(gnmt_length_penalty(n, alpha) for n in (length + 1, max_len))
    return max(score for score, _ in finished) >= best_open / most_favourable


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
    draw = (generator or backend.generator(logits.device)).random((logits.shape[0], 1))
    draw = backend.to_device(draw, logits.device) * cumulative[:, -1:]  # a NumPy generator draws on the host
    tokens = (cumulative <= draw).sum(axis=1)  # the first token whose cumulative mass passes the draw
    return Tensor._make(xp.minimum(tokens, vocab - 1).astype(backend.int64))
