"""GRU encoder-decoders (teacher forcing equals step-by-step decoding, padding changes nothing) and
decoding (greedy, and beam search checked exactly on a toy model)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import minigrad as mg
import nn
from nn.decoding import beam_search, gnmt_length_penalty, greedy_search
from nn.models import EncoderDecoder, Seq2Seq, Seq2SeqAttention

BOS, EOS = 1, 2
MODELS = [Seq2Seq, Seq2SeqAttention]


def _batch(seed=0):
    rng = np.random.default_rng(seed)
    lengths = mg.tensor([6, 3, 4])
    src = rng.integers(4, 10, (3, 6))
    src[np.arange(6) >= lengths.cpu().numpy()[:, None]] = 0  # right padding
    return mg.tensor(src), lengths, mg.tensor(rng.integers(3, 9, (3, 5)))


def _model(cls, num_layers=2):
    mg.manual_seed(0)
    return cls(src_vocab=10, tgt_vocab=9, embed_size=8, num_hiddens=16, num_layers=num_layers).eval()


@pytest.mark.parametrize("cls", MODELS)
def test_teacher_forcing_equals_step_by_step(cls):
    model = _model(cls)
    src, lengths, tgt_in = _batch()
    logits = model(src, lengths, tgt_in)
    assert logits.shape == (3, 5, 9)
    state, steps = model.encode(src, lengths), []
    for tokens in tgt_in.unbind(1):
        step_logits, state = model.decode_step(tokens, state)
        steps.append(step_logits)
    np.testing.assert_allclose(mg.stack(steps, dim=1).detach().cpu().numpy(), logits.detach().cpu().numpy(), atol=1e-6)


@pytest.mark.parametrize("cls", MODELS)
def test_padding_changes_nothing(cls):
    """Each row decodes as it would alone, whatever the padding values and the padded length."""
    model = _model(cls)
    src, lengths, tgt_in = _batch()
    logits = model(src, lengths, tgt_in).detach().cpu().numpy()
    noisy = src.cpu().numpy().copy()
    noisy[np.arange(6) >= lengths.cpu().numpy()[:, None]] = 7
    np.testing.assert_allclose(model(mg.tensor(noisy), lengths, tgt_in).detach().cpu().numpy(), logits, atol=1e-6)
    alone = model(src[1:2, :3], lengths[1:2], tgt_in[1:2]).detach().cpu().numpy()
    np.testing.assert_allclose(alone, logits[1:2], atol=1e-6)


def test_encoder_state_equals_the_packed_gru():
    """The encoder reads each row's state at its last real step: nn.GRU on the packed batch agrees."""
    from nn.utils.rnn import pack_padded_sequence

    encoder = _model(Seq2Seq, num_layers=1).encoder
    src, lengths, _ = _batch()
    _, state = encoder(src, lengths)
    packed = pack_padded_sequence(encoder.embedding(src), lengths, batch_first=True, enforce_sorted=False)
    _, expected = encoder.layers[0](packed)
    np.testing.assert_allclose(state.detach().cpu().numpy(), expected.detach().cpu().numpy(), atol=1e-6)


def test_attention_weights_are_kept_and_skip_padding():
    model = _model(Seq2SeqAttention)
    src, lengths, tgt_in = _batch()
    model(src, lengths, tgt_in)
    weights = model.attention_weights.cpu().numpy()
    assert weights.shape == (3, 5, 6)
    assert (weights[1, :, 3:] == 0).all() and (weights[2, :, 4:] == 0).all()
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("cls", MODELS)
def test_gradients_reach_every_parameter(cls):
    model = _model(cls).train()
    src, lengths, tgt_in = _batch()
    loss = mg.functional.cross_entropy(model(src, lengths, tgt_in).reshape(-1, 9), tgt_in.reshape(-1))
    loss.backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not np.abs(p.grad.cpu().numpy()).sum()]
    assert missing == []


@pytest.mark.parametrize("cls", MODELS)
def test_gradcheck_float64(cls):
    model = _model(cls, num_layers=1).to(mg.float64)
    src, lengths, tgt_in = _batch()
    params = [p for name, p in model.named_parameters() if "embedding" not in name][:4]
    assert mg.gradcheck(lambda *_: model(src, lengths, tgt_in), params, fast_mode=True)


def test_bad_lengths_name_the_model_and_shapes():
    model = _model(Seq2Seq)
    src, lengths, tgt_in = _batch()
    with pytest.raises(RuntimeError, match=r"Seq2Seq: expected src \(B, S\) and src_lengths \(B,\), got \(3, 6\)"):
        model(src, lengths[:2], tgt_in)
    with pytest.raises(ValueError, match=r"Seq2Seq: src_lengths must be in \[1, 6\]"):
        model(src, mg.tensor([7, 3, 4]), tgt_in)


# --- decoding ---------------------------------------------------------------------------------


class MarkovToy(EncoderDecoder):
    """A model with known probabilities: the next token's log-probabilities depend only on the
    last token, table[src_row][last] (V, V). State: (table per row (B, V, V), last tokens (B,))."""

    def __init__(self, tables):
        super().__init__()
        self.tables = np.log(np.asarray(tables, dtype=np.float64))  # (rows, V, V)

    def encode(self, src, src_lengths):
        return mg.tensor(self.tables[src.cpu().numpy()[:, 0]])

    def decode_step(self, tokens, state):
        return state[mg.arange(len(tokens)), tokens], state

    def reorder_state(self, state, index):
        return state[index]


def _toy(seed, vocab=5, rows=3):
    rng = np.random.default_rng(seed)
    tables = rng.dirichlet(np.full(vocab, 0.5), size=(rows, vocab))
    return MarkovToy(tables), mg.tensor(np.arange(rows).reshape(rows, 1)), mg.ones(rows, dtype=mg.int64)


def _log_prob(toy, row, ids, finished=True):
    seq = [BOS] + ids + ([EOS] if finished else [])
    return sum(toy.tables[row, a, b] for a, b in zip(seq, seq[1:]))


def _best_by_enumeration(toy, row, max_len, alpha):
    """Every sequence of up to max_len tokens, ended by <eos> or cut at max_len; the best by score."""
    tokens = [t for t in range(toy.tables.shape[-1]) if t != EOS]
    best = (-math.inf, None)
    for n in range(max_len):
        for ids in itertools.product(tokens, repeat=n):
            score = _log_prob(toy, row, list(ids)) / gnmt_length_penalty(n + 1, alpha)
            best = max(best, (score, list(ids)))
    for ids in itertools.product(tokens, repeat=max_len):
        score = _log_prob(toy, row, list(ids), finished=False) / gnmt_length_penalty(max_len, alpha)
        best = max(best, (score, list(ids)))
    return best[1]


@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.0])
@pytest.mark.parametrize("seed", range(4))
def test_wide_beam_finds_the_exact_best_sequence(seed, alpha):
    """With a beam as wide as every prefix, beam search is exact: it equals enumeration."""
    toy, src, lengths = _toy(seed, vocab=4)
    max_len = 4
    found = beam_search(toy, src, lengths, BOS, EOS, max_len, beam_width=4**max_len, length_penalty=alpha)
    assert found == [_best_by_enumeration(toy, row, max_len, alpha) for row in range(3)]


def test_beam_search_by_hand():
    """Greedy takes the likelier first token and is stuck with a poor ending; a beam of 2 is not."""
    #            to:  pad   bos   eos    a     b
    p = np.array([[0.2, 0.2, 0.2, 0.2, 0.2],  # from pad (unused)
                  [0.0, 0.0, 0.0, 0.55, 0.45],  # from bos: a 0.55, b 0.45
                  [0.2, 0.2, 0.2, 0.2, 0.2],  # from eos (unused)
                  [0.0, 0.0, 0.3, 0.35, 0.35],  # from a: eos 0.3
                  [0.0, 0.0, 0.9, 0.05, 0.05]])  # from b: eos 0.9  # fmt: skip
    toy = MarkovToy(p[None] + 1e-300)
    src, lengths = mg.zeros(1, 1, dtype=mg.int64), mg.ones(1, dtype=mg.int64)
    assert greedy_search(toy, src, lengths, BOS, EOS, max_len=2) == [[3, 3]]  # a a (cut at max_len)
    # Beam of 2: "b <eos>" has 0.45 * 0.9 = 0.405, every sequence through "a" at most 0.55 * 0.35.
    assert beam_search(toy, src, lengths, BOS, EOS, 2, beam_width=2, length_penalty=0.0) == [[4]]


@pytest.mark.parametrize("seed", range(5))
def test_beam_width_one_is_greedy(seed):
    toy, src, lengths = _toy(seed)
    greedy = greedy_search(toy, src, lengths, BOS, EOS, max_len=6)
    assert beam_search(toy, src, lengths, BOS, EOS, 6, beam_width=1, length_penalty=0.0) == greedy


@pytest.mark.parametrize("cls", MODELS)
def test_beam_search_on_a_model(cls):
    """Beam width 1 is greedy; a wider beam finds a sequence at least as likely as greedy's."""
    model = _model(cls)
    src, lengths, _ = _batch()
    greedy = greedy_search(model, src, lengths, BOS, EOS, max_len=7)
    assert beam_search(model, src, lengths, BOS, EOS, 7, beam_width=1, length_penalty=0.0) == greedy
    beam = beam_search(model, src, lengths, BOS, EOS, 7, beam_width=4, length_penalty=0.0)
    for row, (g, b) in enumerate(zip(greedy, beam)):
        assert _sequence_log_prob(model, src[row : row + 1], lengths[row : row + 1], b, 7) >= (
            _sequence_log_prob(model, src[row : row + 1], lengths[row : row + 1], g, 7) - 1e-5
        )


def _sequence_log_prob(model, src, lengths, ids, max_len):
    """log p(ids <eos>), or of ids alone when cut at max_len."""
    seq = [BOS] + ids + ([EOS] if len(ids) < max_len else [])
    logits = model(src, lengths, mg.tensor([seq[:-1]]))
    log_probs = mg.functional.log_softmax(logits, dim=-1).detach().cpu().numpy()[0]
    return float(sum(log_probs[t, token] for t, token in enumerate(seq[1:])))


def test_beam_width_must_be_positive():
    toy, src, lengths = _toy(0)
    with pytest.raises(ValueError, match="beam_search: beam_width must be an integer >= 1, got 0"):
        beam_search(toy, src, lengths, BOS, EOS, 5, beam_width=0)


def test_the_interface_is_exported():
    assert nn.decoding.beam_search is beam_search
    assert nn.models.Seq2SeqAttention is Seq2SeqAttention
