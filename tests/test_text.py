"""Text data: tokenizers, Vocab, BucketBatchSampler, the seq2seq tasks and the Shakespeare split."""

import collections
import datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minigrad.data import (
    BucketBatchSampler,
    Vocab,
    char_tokenize,
    dates_task,
    detokenize,
    en_es_task,
    load_en_es,
    shakespeare_chars,
    shakespeare_plays,
    word_tokenize,
)

_TEXT = st.text(alphabet=st.sampled_from(list("abcXYZ019 ñéü.,;:!?()¿¡“”'-\n")), max_size=60)


# ------------------------------------------------------------------------------ tokenizers
def test_word_tokenize_examples():
    assert word_tokenize("Sea la luz: y fué.") == ["sea", "la", "luz", ":", "y", "fué", "."]
    assert word_tokenize("¿Qué?  (sí)") == ["¿", "qué", "?", "(", "sí", ")"]
    assert detokenize(["¿", "qué", "?", "(", "sí", ")", ",", "no"]) == "¿qué? (sí), no"


@given(_TEXT)
def test_word_tokenize_round_trips_through_detokenize(text):
    tokens = word_tokenize(text)
    assert all(t == t.lower() and not t.isspace() for t in tokens)
    assert word_tokenize(detokenize(tokens)) == tokens


@given(_TEXT)
def test_char_vocab_round_trip(text):
    vocab = Vocab(char_tokenize(text))
    ids = vocab.encode(char_tokenize(text), bos=True, eos=True)
    assert ids[0] == Vocab.bos_id and ids[-1] == Vocab.eos_id
    assert "".join(vocab.decode(ids)) == text
    assert "".join(vocab.decode(ids + [Vocab.pad_id] * 3)) == text


@given(st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), max_size=40), st.integers(1, 4))
def test_vocab_order_min_freq_and_unknowns(tokens, min_freq):
    vocab = Vocab(tokens, min_freq=min_freq)
    counts = collections.Counter(tokens)
    assert vocab.itos[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    assert set(vocab.itos[4:]) == {t for t, c in counts.items() if c >= min_freq}
    assert [counts[t] for t in vocab.itos[4:]] == sorted((counts[t] for t in vocab.itos[4:]), reverse=True)
    for t in "abcde":
        assert vocab[t] == (vocab.itos.index(t) if counts[t] >= min_freq else Vocab.unk_id)
    assert vocab.decode(vocab.encode(tokens), strip=False) == [t if t in vocab else "<unk>" for t in tokens]


def test_vocab_from_sequences_counter_max_size_and_strip():
    vocab = Vocab([["b", "a"], ["a"]])
    assert vocab.itos == ["<pad>", "<bos>", "<eos>", "<unk>", "a", "b"] and len(vocab) == 6
    assert Vocab(collections.Counter("aab"), max_size=5).itos[4:] == ["a"]
    assert vocab.decode([1, 4, 5, 2, 4, 0]) == ["a", "b"]
    assert vocab.decode([1, 4, 5, 2, 4, 0], strip=False) == ["<bos>", "a", "b", "<eos>", "a", "<pad>"]


def test_vocab_bad_input():
    vocab = Vocab("abc")
    with pytest.raises(ValueError, match=r"Vocab.decode: id 7 .*size 7"):
        vocab.decode([4, 7])
    with pytest.raises(ValueError, match=r"id -1 .*size 7"):
        vocab.decode([-1])
    with pytest.raises(ValueError, match="min_freq"):
        Vocab("abc", min_freq=0)
    with pytest.raises(ValueError, match="max_size"):
        Vocab("abc", max_size=2)


# --------------------------------------------------------------------------------- sampler
@settings(deadline=None)
@given(
    st.lists(st.integers(1, 30), min_size=1, max_size=300),
    st.integers(1, 16),
    st.booleans(),
    st.booleans(),
    st.integers(0, 5),
)
def test_bucket_sampler_covers_every_index_once(lengths, batch_size, shuffle, drop_last, epoch):
    sampler = BucketBatchSampler(lengths, batch_size, shuffle=shuffle, seed=3, drop_last=drop_last)
    sampler.set_epoch(epoch)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    seen = [i for b in batches for i in b]
    assert len(seen) == len(set(seen))
    if drop_last:
        assert all(len(b) == batch_size for b in batches)
        assert len(seen) == len(lengths) // batch_size * batch_size
    else:
        assert sorted(seen) == list(range(len(lengths)))
        assert sum(len(b) < batch_size for b in batches) <= 1
    assert batches == list(sampler)  # deterministic


def test_bucket_sampler_groups_similar_lengths_and_reshuffles_by_epoch():
    lengths = np.random.default_rng(0).integers(1, 100, size=2000)
    sampler = BucketBatchSampler(lengths, 32, seed=1)
    first = list(sampler)
    spread = np.mean([np.ptp(lengths[b]) for b in first])
    assert spread < 10  # random batches of 32 would spread over ~90
    sampler.set_epoch(1)
    assert list(sampler) != first
    assert list(BucketBatchSampler(lengths, 32, seed=1)) == first
    assert list(BucketBatchSampler(lengths, 32, seed=2)) != first
    ordered = [i for b in BucketBatchSampler(lengths, 32, shuffle=False) for i in b]
    assert (np.diff(lengths[ordered]) >= 0).all()


# ------------------------------------------------------------------------------- seq2seq
@pytest.fixture(scope="module")
def dates():
    return dates_task(n_train=3000, n_valid=200, n_test=400, seed=1)


def test_dates_task_splits_and_held_out_dates(dates):
    assert (len(dates.train), len(dates.valid), len(dates.test)) == (3000, 200, 400)
    train_days = {iso for _, iso in dates.train}
    assert not train_days & {iso for _, iso in dates.test}
    assert not train_days & {iso for _, iso in dates.valid}
    for human, iso in dates.test[:50]:
        assert str(datetime.date.fromisoformat(iso).year) in human
    assert dates_task(n_train=3000, n_valid=200, n_test=400, seed=1).test == dates.test
    assert dates_task(n_train=3000, n_valid=200, n_test=400, seed=2).test != dates.test
    with pytest.raises(ValueError, match="dates_task: at most"):
        dates_task(n_train=80_000)


def test_dates_task_uses_a_dozen_formats(dates):
    shapes = {"".join("9" if c.isdigit() else "a" if c.isalpha() else c for c in h) for h, _ in dates.train}
    separators = {"".join(c for c in shape if not c.isalnum()) for shape in shapes}
    assert len(separators) >= 6 and len(shapes) >= 12


def test_seq2seq_batches(dates):
    batches = list(dates.batches("valid", 16, seed=0))
    assert sum(b.src.shape[0] for b in batches) == 200
    decoded = []
    for b in batches:
        n, s = b.src.shape
        assert b.src.dtype == b.tgt_in.dtype == b.tgt_out.dtype == b.src_lengths.dtype
        assert b.src_lengths.shape == (n,) and b.src_lengths.cpu().numpy().max() == s
        assert b.tgt_in.shape == b.tgt_out.shape and (b.tgt_in.cpu().numpy()[:, 0] == Vocab.bos_id).all()
        np.testing.assert_array_equal(
            b.tgt_in.cpu().numpy()[:, 1:],
            np.where(b.tgt_out.cpu().numpy() == Vocab.eos_id, 0, b.tgt_out.cpu().numpy())[:, :-1],
        )
        for row, length in zip(b.src.cpu().numpy(), b.src_lengths.cpu().numpy()):
            assert row[length - 1] == Vocab.eos_id and (row[length:] == Vocab.pad_id).all()
        decoded += [
            ("".join(dates.src_vocab.decode(s)), dates.detokenize(dates.tgt_vocab.decode(t)))
            for s, t in zip(b.src.cpu().numpy(), b.tgt_out.cpu().numpy())
        ]
    assert sorted(decoded) == sorted(dates.valid)
    first = [b.src.cpu().numpy().tolist() for b in dates.batches("valid", 16, seed=0)]
    assert first == [b.src.cpu().numpy().tolist() for b in batches]
    with pytest.raises(ValueError, match="split must be"):
        next(dates.batches("dev", 4))


def test_en_es_task():
    task = en_es_task(seed=0)
    assert (len(task.train), len(task.valid), len(task.test)) == (4715, 500, 500)
    assert sorted(task.train + task.valid + task.test) == sorted(load_en_es())  # a partition
    assert en_es_task(seed=0).test == task.test and en_es_task(seed=1).test != task.test
    assert 1000 < len(task.src_vocab) < 4000 and 1000 < len(task.tgt_vocab) < 4000
    assert all(t == t.lower() for t in task.tgt_vocab.itos)
    batch = next(task.batches("test", 8, shuffle=False))
    text = task.detokenize(task.tgt_vocab.decode(batch.tgt_out.cpu().numpy()[0]))
    assert isinstance(text, str) and text


# ---------------------------------------------------------------------------- shakespeare
def test_shakespeare_split_by_play():
    plays = shakespeare_plays()
    assert len(plays) == 8 and "HAMLET, PRINCE OF DENMARK" in plays and "A MIDSUMMER NIGHT'S DREAM" in plays
    assert sum(map(len, plays.values())) == 1036481
    corpus = shakespeare_chars()
    assert corpus.valid.shape == (len(plays["A MIDSUMMER NIGHT'S DREAM"]),)
    assert corpus.train.shape[0] + corpus.valid.shape[0] == 1036481
    assert 60 < len(corpus.vocab) < 90
    assert "".join(corpus.vocab.decode(corpus.train.cpu().numpy()[:25])) == "HAMLET, PRINCE OF DENMARK"
    other = shakespeare_chars(valid_play="MACBETH")
    assert other.valid.shape == (len(plays["MACBETH"]),)
    with pytest.raises(ValueError, match="valid_play must be one of"):
        shakespeare_chars(valid_play="Hamlet")
