"""minigrad.text: normaliser, pre-tokenizer, WordPiece/BPE, the Tokenizer's encode/decode/batch/save.

What the round trip promises, exactly: with ``norm = tok.normalizer.normalize_str`` and
``words = tok.pre_tokenizer.words``,
- when every character of ``norm(s)`` was seen in training: ``decode(encode(s).ids) == " ".join(words(norm(s)))``;
- always: ``decode(encode(s).ids)`` with its whitespace removed equals ``norm(s)`` with its whitespace and
  its never-seen characters removed.
"""

import json
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from minigrad.data import load_en_es, load_shakespeare, shakespeare_plays
from minigrad.text import SPECIAL_TOKENS, BertPreTokenizer, Normalizer, Tokenizer

HELD_OUT_PLAY = "A MIDSUMMER NIGHT'S DREAM"
HELD_OUT_VERSES = 1000
_ANY_TEXT = st.text(max_size=80)
_MIXED = st.text(alphabet=st.sampled_from(list("abcABC xyz.,!?'-éÉñü你好😀\u0301\u0308\t\n\x00\u200dİß")), max_size=60)


@pytest.fixture(scope="module")
def english():
    """WordPiece and BPE trained on seven plays and all but the last 1000 English verses."""
    plays = shakespeare_plays()
    verses = [en for en, _ in load_en_es()]
    texts = [t for title, t in plays.items() if title != HELD_OUT_PLAY] + verses[:-HELD_OUT_VERSES]
    held_out = [plays[HELD_OUT_PLAY]] + verses[-HELD_OUT_VERSES:]
    models = {m: Tokenizer.train(texts, vocab_size=4000, model=m) for m in ("wordpiece", "bpe")}
    return models, held_out


def _strip_space(text: str) -> str:
    return "".join(text.split())


# ------------------------------------------------------------------------------ normaliser
def test_normalizer_bert_uncased():
    assert Normalizer().normalize_str("Café ÉTÉ Naïve") == "cafe ete naive"
    assert Normalizer(lowercase=False).normalize_str("Cafe\u0301") == "Café"
    assert Normalizer("NFD", lowercase=False).normalize_str("é") == "e\u0301"
    assert Normalizer().normalize_str("a\x00b\u200bc\td") == "abc\td"


@given(st.text(max_size=60))
def test_normalizer_is_the_unicode_normal_form_of_the_whole_text(text):
    kept = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf", "Cs") or ch.isspace())
    for form in ("NFC", "NFD"):
        assert Normalizer(form, lowercase=False).normalize_str(text) == unicodedata.normalize(form, kept)


@given(st.one_of(_ANY_TEXT, _MIXED))
def test_normalizer_spans_cover_the_original(text):
    normalizer = Normalizer()
    normalized, spans = normalizer.normalize(text)
    assert normalized == normalizer.normalize_str(text)
    spans = [(i, i + 1) for i in range(len(text))] if spans is None else spans
    assert len(spans) == len(normalized)
    assert all(0 <= a < b <= len(text) for a, b in spans)
    assert spans == sorted(spans)


def test_pre_tokenizer_splits_punctuation_and_cjk():
    words = BertPreTokenizer().words_with_spans("hi, wor-ld! 你好 ok😀 ¿qué?")
    assert [w for w, _, _ in words] == ["hi", ",", "wor", "-", "ld", "!", "你", "好", "ok😀", "¿", "qué", "?"]
    assert words[2] == ("wor", 4, 7)


# ------------------------------------------------------------------------------ training and encoding
def test_vocabulary_layout_and_size(english):
    models, _ = english
    for tok in models.values():
        assert len(tok) == 4000
        assert tok.vocab[:5] == list(SPECIAL_TOKENS) and tok.pad_id == 0
        assert len(set(tok.vocab)) == len(tok.vocab)
        for ch in "abcxyz.,?!'":
            assert tok.token_to_id(ch) is not None and tok.token_to_id("##" + ch) is not None


def test_held_out_english_has_no_unknown_tokens(english):
    models, held_out = english
    for tok in models.values():
        for text in held_out:
            ids = tok.encode(text).ids
            assert tok.unk_id not in ids
            assert tok.decode(ids) == " ".join(tok.pre_tokenizer.words(tok.normalizer.normalize_str(text)))


def test_encode_examples(english):
    tok = english[0]["wordpiece"]
    enc = tok.encode("Café, 你 x😀y")
    assert enc.tokens[0] == "[CLS]" and enc.tokens[-1] == "[SEP]" and enc.offsets[0] == (0, 0)
    assert enc.tokens[1:-1] == ["ca", "##fe", ",", "[UNK]", "x", "[UNK]", "##y"]  # 你 and 😀 were never seen
    assert enc.offsets[1:-1] == [(0, 2), (2, 4), (4, 5), (6, 7), (8, 9), (9, 10), (10, 11)]
    assert tok.decode(enc.ids) == "cafe , xy"


def test_offsets_point_into_the_original_text(english):
    tok = english[0]["wordpiece"]
    text = "  Wherefore art thou, ROMEO?\nDeny thy father"
    enc = tok.encode(text, add_special_tokens=False)
    assert [text[a:b].lower() for a, b in enc.offsets] == [t.removeprefix("##") for t in enc.tokens]


@pytest.mark.parametrize("model", ["wordpiece", "bpe"])
@given(text=st.one_of(_ANY_TEXT, _MIXED))
def test_any_text_encodes_and_round_trips(english, model, text):
    tok = english[0][model]
    enc = tok.encode(text, add_special_tokens=False)
    assert all(0 <= i < len(tok) for i in enc.ids)
    assert enc.tokens == [tok.vocab[i] for i in enc.ids]
    normalized = tok.normalizer.normalize_str(text)
    seen = "".join(ch for ch in normalized if ch in tok.model.token_id)
    assert _strip_space(tok.decode(enc.ids)) == _strip_space(seen)
    assert enc.ids.count(tok.unk_id) == sum(not ch.isspace() and ch not in tok.model.token_id for ch in normalized)
    for token, (a, b) in zip(enc.tokens, enc.offsets):
        assert 0 <= a < b <= len(text)
        if token != "[UNK]":
            assert token.removeprefix("##") in tok.normalizer.normalize_str(text[a:b])


@pytest.mark.parametrize("model", ["wordpiece", "bpe"])
@given(text=st.one_of(_ANY_TEXT, _MIXED), vocab_size=st.integers(5, 120))
def test_trained_on_itself(model, text, vocab_size):
    tok = Tokenizer.train(text, vocab_size=vocab_size, model=model, min_frequency=1)
    assert len(tok) <= vocab_size
    words = tok.pre_tokenizer.words(tok.normalizer.normalize_str(text))
    known = [w for w in words if all(ch in tok.model.token_id for ch in w)]
    if len(known) == len(words):  # the alphabet fit: every character is known
        assert tok.decode(tok.encode(text).ids) == " ".join(words)
    if len(tok) < vocab_size and model == "wordpiece":  # stopped early: nothing left to merge
        assert all(len(tok.model.tokenize(w)) == 1 for w in known)


def test_vocab_size_is_reached_on_shakespeare():
    text = load_shakespeare()[:200_000]
    for size in (300, 1000, 3000):
        assert len(Tokenizer.train(text, vocab_size=size)) == size
    with pytest.raises(ValueError, match="vocab_size"):
        Tokenizer.train(text, vocab_size=4)
    with pytest.raises(ValueError, match="model"):
        Tokenizer.train(text, model="unigram")


def test_bpe_and_wordpiece_pieces_spell_the_word(english):
    models, held_out = english
    words = BertPreTokenizer().words(held_out[0].lower())[:3000]
    for tok in models.values():
        for word in words:
            pieces = [tok.vocab[i] for i, _, _ in tok.model.tokenize(word)]
            assert pieces[0] + "".join(p.removeprefix("##") for p in pieces[1:]) == word


# ------------------------------------------------------------------------------ batches
def test_encode_batch_pads_masks_and_segments(english):
    tok = english[0]["wordpiece"]
    batch = tok.encode_batch(["to be", "or not to be, that is the question"], ["yes", "no"])
    B, T = batch.ids.shape
    single = tok.encode("or not to be, that is the question", "no")
    assert (B, T) == (2, len(single))
    assert all(t.dtype == mg.int64 and t.shape == (B, T) for t in batch)
    first = tok.encode("to be", "yes")
    ids, mask, types = (t.cpu().numpy().tolist() for t in batch)
    assert ids[0] == first.ids + [tok.pad_id] * (T - len(first))
    assert mask[0] == [1] * len(first) + [0] * (T - len(first))
    assert types[0] == [0, 0, 0, 0, 1, 1] + [0] * (T - 6)
    assert ids[1] == single.ids and types[1] == single.type_ids


def test_encode_batch_truncates_longest_first(english):
    tok = english[0]["wordpiece"]
    a, b = "one two three four five six seven", "eight nine"
    batch = tok.encode_batch([a], [b], max_length=8, padding="max_length")
    tokens = [tok.vocab[i] for i in batch.ids.cpu().numpy()[0]]
    assert tokens == ["[CLS]", "one", "two", "three", "[SEP]", "eight", "nine", "[SEP]"]
    short = tok.encode_batch(["a b"], max_length=6, padding="max_length")
    assert short.attention_mask.cpu().numpy().tolist() == [[1, 1, 1, 1, 0, 0]]
    with pytest.raises(ValueError, match="equal lengths"):
        tok.encode_batch(["a", "a b"], padding=False)
    with pytest.raises(ValueError, match="max_length"):
        tok.encode_batch(["a b c d"], truncation=False, max_length=3, padding="max_length")


# ------------------------------------------------------------------------------ decoding, saving
def test_decode_rejects_ids_outside_the_vocabulary(english):
    tok = english[0]["wordpiece"]
    assert [tok.id_to_token(i) for i in (-1, len(tok), 2)] == [None, None, "[CLS]"]  # as tokenizers' id_to_token
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode([len(tok)])
    assert tok.decode(tok.encode("Thou art").ids, skip_special_tokens=False) == "[CLS] thou art [SEP]"


@pytest.mark.parametrize("model", ["wordpiece", "bpe"])
def test_save_load_round_trip(english, model, tmp_path):
    tok = english[0][model]
    tok.save(tmp_path / "tok.json")
    loaded = Tokenizer.load(tmp_path / "tok.json")
    assert loaded.to_dict() == tok.to_dict()
    for text in ["Wherefore art thou Romeo?", "Café 你好 😀 naïve", english[1][1]]:
        assert loaded.encode(text) == tok.encode(text)


def _edit(state: dict, where: str, value) -> dict:
    """``state`` with the entry at the dotted path ``where`` set to ``value`` (deleted when ``value`` is ...)."""
    state = json.loads(json.dumps(state))
    *parents, key = where.split(".")
    node = state
    for parent in parents:
        node = node[int(parent)] if isinstance(node, list) else node[parent]
    if value is ...:
        del node[key]
    else:
        node[int(key) if isinstance(node, list) else key] = value
    return state


@pytest.mark.parametrize(
    "model, where, value, message",
    [
        ("wordpiece", "model", ..., r"model must hold \['type', 'unk_token', 'vocab'\]"),
        ("wordpiece", "model.vocab", {"[PAD]": 0}, "list of non-empty strings"),
        ("wordpiece", "model.vocab.7", 7, "list of non-empty strings"),
        ("wordpiece", "normalizer.lowercase", "no", "true or false"),
        ("wordpiece", "normalizer.unicode", "NFC", "must hold form, lowercase and strip_accents"),
        ("wordpiece", "pre_tokenizer.type", "whitespace", "pre_tokenizer must be"),
        ("wordpiece", "version", "1", "version '1', expected 1"),
        ("bpe", "model.merges", ..., "merges"),
        ("bpe", "model.merges.0", "t ##h", "merge 0 't ##h'"),
        ("bpe", "model.merges.0", ["zz", "##qq"], "merge 0"),
        ("bpe", "model.merges.0", ["a", "b"], "merge 0"),
    ],
)
def test_load_rejects_an_edited_file(english, tmp_path, model, where, value, message):
    path = tmp_path / "tok.json"
    path.write_text(json.dumps(_edit(english[0][model].to_dict(), where, value)), encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        Tokenizer.load(path)


def test_load_rejects_a_file_that_is_not_an_object(tmp_path):
    (tmp_path / "tok.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="has version None"):
        Tokenizer.load(tmp_path / "tok.json")


def test_encode_batch_rejects_one_string(english):
    with pytest.raises(TypeError, match="lists of strings, not one string"):
        english[0]["wordpiece"].encode_batch("to be")


# ------------------------------------------------------------------------------ Hugging Face tokenizers
def test_wordpiece_word_longer_than_max_input_chars_is_one_unknown(english):
    tok = english[0]["wordpiece"]
    enc = tok.encode("a " + "x" * 101 + " b", add_special_tokens=False)
    assert enc.tokens == ["a", "[UNK]", "b"] and enc.offsets == [(0, 1), (2, 103), (104, 105)]
    assert "[UNK]" not in tok.encode("x" * 100).tokens
    tokenizers = pytest.importorskip("tokenizers")
    theirs = tokenizers.Tokenizer(
        tokenizers.models.WordPiece({t: i for i, t in enumerate(tok.vocab)}, unk_token="[UNK]")
    )
    theirs.pre_tokenizer = tokenizers.pre_tokenizers.BertPreTokenizer()
    for text in ["a " + "x" * 101 + " b", "y" * 100]:
        ours, expected = tok.encode(text, add_special_tokens=False), theirs.encode(text, add_special_tokens=False)
        assert (ours.ids, ours.offsets) == (expected.ids, expected.offsets)


def test_wordpiece_agrees_with_hugging_face(english):
    tokenizers = pytest.importorskip("tokenizers")
    tok = english[0]["wordpiece"]
    theirs = tokenizers.Tokenizer(
        tokenizers.models.WordPiece({t: i for i, t in enumerate(tok.vocab)}, unk_token="[UNK]")
    )
    theirs.normalizer = tokenizers.normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    theirs.pre_tokenizer = tokenizers.pre_tokenizers.BertPreTokenizer()
    lines = [line for line in english[1][0].splitlines() if line.strip()] + english[1][1:]
    same = sum(
        theirs.encode(line, add_special_tokens=False).ids == tok.encode(line, add_special_tokens=False).ids
        for line in lines
    )
    print(f"agreement with tokenizers' WordPiece: {same}/{len(lines)} lines")
    assert same / len(lines) >= 0.99
