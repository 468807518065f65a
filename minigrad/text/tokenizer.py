"""``Tokenizer``: normalizer -> pre-tokenizer -> model -> post-processor, trained from raw text.

tok = Tokenizer.train(texts, vocab_size=8000, model="wordpiece")
enc = tok.encode("Wherefore art thou?")   # Encoding(ids, tokens, offsets, type_ids)
tok.decode(enc.ids)                        # "wherefore art thou ?"
batch = tok.encode_batch(questions, answers, max_length=64)
batch.ids, batch.attention_mask, batch.token_type_ids   # int64 tensors (B, T)
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from minigrad import backend
from minigrad.tensor import Tensor
from minigrad.text.models import BPE, PREFIX, SubwordModel, WordPiece, learn_merges, model_from_dict
from minigrad.text.normalizers import Normalizer
from minigrad.text.pre_tokenizers import BertPreTokenizer
from minigrad.text.processors import BertProcessor, Encoding, truncate_pair

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
MODELS = {"wordpiece": WordPiece, "bpe": BPE}
_FORMAT_VERSION = 1
np = backend.numpy


class BatchEncoding(NamedTuple):
    """A padded batch: ``ids`` (B, T); ``attention_mask`` (B, T), 1 where a real token is (to
    attend to) and 0 at padding; ``token_type_ids`` (B, T), 0 for the first text, 1 for the
    second (and 0 at padding). All int64 tensors."""

    ids: Tensor
    attention_mask: Tensor
    token_type_ids: Tensor


class Tokenizer:
    """The pipeline of Hugging Face ``tokenizers``, small: ``normalizer`` (text -> normalised text
    and its alignment), ``pre_tokenizer`` (-> words with spans), ``model`` (word -> pieces), then
    BERT's ``[CLS] ... [SEP]`` post-processing. The vocabulary starts with ``SPECIAL_TOKENS``:
    ``[PAD]`` is id 0."""

    def __init__(self, normalizer: Normalizer, pre_tokenizer: BertPreTokenizer, model: SubwordModel):
        missing = [t for t in SPECIAL_TOKENS if t not in model.token_id]
        if missing:
            raise ValueError(f"Tokenizer: the vocabulary lacks the special tokens {missing}")
        self.normalizer, self.pre_tokenizer, self.model = normalizer, pre_tokenizer, model
        self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = (model.token_id[t] for t in SPECIAL_TOKENS)
        self.special_ids = {model.token_id[t] for t in SPECIAL_TOKENS}
        self.post_processor = BertProcessor(("[CLS]", self.cls_id), ("[SEP]", self.sep_id))

    # ------------------------------------------------------------------------------ training
    @classmethod
    def train(
        cls,
        texts: Iterable[str] | str,
        vocab_size: int = 8000,
        model: str = "wordpiece",
        lowercase: bool = True,
        strip_accents: bool | None = None,
        unicode_form: str | None = "NFC",
        min_frequency: int = 2,
    ) -> Tokenizer:
        """Learn a vocabulary of at most ``vocab_size`` tokens from ``texts`` (see
        ``minigrad.text.models``). ``strip_accents=None`` follows ``lowercase`` (BERT-uncased);
        ``min_frequency``: a pair seen fewer times is never merged."""
        if model not in MODELS:
            raise ValueError(f"Tokenizer.train: model must be one of {list(MODELS)}, got {model!r}")
        normalizer, pre_tokenizer = Normalizer(unicode_form, lowercase, strip_accents), BertPreTokenizer()
        word_counts = Counter()
        for text in [texts] if isinstance(texts, str) else texts:
            word_counts.update(pre_tokenizer.words(normalizer.normalize_str(text)))
        vocab, merges = learn_merges(word_counts, vocab_size, list(SPECIAL_TOKENS), min_frequency)
        subwords = WordPiece(vocab, "[UNK]") if model == "wordpiece" else BPE(vocab, merges, "[UNK]")
        return cls(normalizer, pre_tokenizer, subwords)

    # ------------------------------------------------------------------------------ encoding
    @property
    def vocab(self) -> list[str]:
        """Tokens in id order."""
        return self.model.vocab

    def __len__(self) -> int:
        return len(self.model.vocab)

    def token_to_id(self, token: str) -> int | None:
        return self.model.token_id.get(token)

    def id_to_token(self, id: int) -> str | None:
        """The token of ``id``; None outside ``[0, len(self))`` (as ``token_to_id`` for an unknown token)."""
        return self.model.vocab[id] if 0 <= id < len(self.model.vocab) else None

    def _pieces(self, text: str) -> Encoding:
        """``text`` through normaliser, pre-tokenizer and model, without special tokens."""
        normalized, spans = self.normalizer.normalize(text)
        ids, offsets = [], []
        for word, start, _ in self.pre_tokenizer.words_with_spans(normalized):
            for piece, a, b in self.model.tokenize(word):
                ids.append(piece)
                offsets.append((start + a, start + b))
        if spans is not None:
            offsets = [(spans[a][0], spans[b - 1][1]) for a, b in offsets]
        vocab = self.model.vocab
        return Encoding(ids, [vocab[i] for i in ids], offsets)

    def encode(
        self,
        text: str,
        pair: str | None = None,
        add_special_tokens: bool = True,
        max_length: int | None = None,
    ) -> Encoding:
        """One text (or a pair of texts) as an ``Encoding``: ``[CLS] text [SEP]`` or
        ``[CLS] text [SEP] pair [SEP]``; offsets index into the text each token came from.
        ``max_length`` truncates (longest text first) to that many tokens in all."""
        a = self._pieces(text)
        b = None if pair is None else self._pieces(pair)
        if not add_special_tokens:
            if b is not None:
                raise ValueError("Tokenizer.encode: a pair needs add_special_tokens=True ([SEP] marks its boundary)")
            return a if max_length is None else a.truncated(max_length)
        if max_length is not None:
            a, b = truncate_pair(a, b, max_length)
        return self.post_processor(a, b)

    def encode_batch(
        self,
        texts: list[str],
        pairs: list[str] | None = None,
        padding: bool | str = True,
        truncation: bool = True,
        max_length: int | None = None,
    ) -> BatchEncoding:
        """Encode ``texts`` (with ``pairs``: ``[CLS] text [SEP] pair [SEP]``) into (B, T) tensors.
        ``padding``: ``True``/``"longest"`` pads with ``[PAD]`` to the longest sequence,
        ``"max_length"`` to ``max_length``, ``False`` needs equal lengths. ``truncation``: cut to
        ``max_length`` tokens (longest text first)."""
        if isinstance(texts, str) or isinstance(pairs, str):
            raise TypeError("Tokenizer.encode_batch: texts and pairs must be lists of strings, not one string")
        if pairs is not None and len(pairs) != len(texts):
            raise ValueError(f"Tokenizer.encode_batch: {len(texts)} texts but {len(pairs)} pairs")
        if padding not in (True, False, "longest", "max_length"):
            raise ValueError(f"encode_batch: padding must be True, False, 'longest' or 'max_length', not {padding!r}")
        if padding == "max_length" and max_length is None:
            raise ValueError("Tokenizer.encode_batch: padding='max_length' needs max_length")
        limit = max_length if truncation else None
        encodings = [self.encode(t, None if pairs is None else pairs[i], max_length=limit) for i, t in enumerate(texts)]
        lengths = [len(e) for e in encodings]
        longest = max(lengths, default=0)
        if not padding and len(set(lengths)) > 1:
            raise ValueError(f"Tokenizer.encode_batch: padding=False needs equal lengths, got {sorted(set(lengths))}")
        T = max_length if padding == "max_length" else longest
        if T < longest:
            raise ValueError(f"Tokenizer.encode_batch: {longest} tokens exceed max_length={T}; use truncation=True")
        ids = np.full((len(encodings), T), self.pad_id, dtype=backend.int64)
        mask = np.zeros((len(encodings), T), dtype=backend.int64)
        types = np.zeros((len(encodings), T), dtype=backend.int64)
        for row, e in enumerate(encodings):
            ids[row, : len(e)] = e.ids
            mask[row, : len(e)] = 1
            types[row, : len(e)] = e.type_ids
        return BatchEncoding(Tensor(ids), Tensor(mask), Tensor(types))

    # ------------------------------------------------------------------------------ decoding
    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        """Tokens joined by spaces, a ``##`` piece glued (without its ``##``) to the token before
        it. With ``skip_special_tokens`` the special tokens (``[UNK]`` too) are left out."""
        vocab, text = self.model.vocab, []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(vocab):
                raise ValueError(f"Tokenizer.decode: id {i} is outside the vocabulary [0, {len(vocab)})")
            if skip_special_tokens and i in self.special_ids:
                continue
            token = vocab[i]
            if token.startswith(PREFIX) and len(token) > len(PREFIX):
                text.append(token[len(PREFIX) :])
            else:
                text.append(" " + token if text else token)
        return "".join(text)

    # ------------------------------------------------------------------------------ saving
    def to_dict(self) -> dict:
        return {
            "version": _FORMAT_VERSION,
            "normalizer": self.normalizer.to_dict(),
            "pre_tokenizer": self.pre_tokenizer.to_dict(),
            "model": self.model.to_dict(),
        }

    def save(self, path: str | Path) -> None:
        """The tokenizer as JSON (UTF-8)."""
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Tokenizer:
        """A tokenizer saved by ``save``; a file whose structure is not that raises ``ValueError``."""
        state = json.loads(Path(path).read_text(encoding="utf-8"))
        version = state.get("version") if isinstance(state, dict) else None
        if version != _FORMAT_VERSION:
            raise ValueError(f"Tokenizer.load: {path} has version {version!r}, expected {_FORMAT_VERSION}")
        normalizer, model = state.get("normalizer"), state.get("model")
        if not isinstance(normalizer, dict) or set(normalizer) != {"form", "lowercase", "strip_accents"}:
            raise ValueError(f"Tokenizer.load: {path}: normalizer must hold form, lowercase and strip_accents")
        if not all(isinstance(normalizer[key], bool) for key in ("lowercase", "strip_accents")):
            raise ValueError(f"Tokenizer.load: {path}: normalizer's lowercase and strip_accents must be true or false")
        if state.get("pre_tokenizer") != BertPreTokenizer().to_dict():
            raise ValueError(f"Tokenizer.load: {path}: pre_tokenizer must be {BertPreTokenizer().to_dict()}")
        needed = {"type", "vocab", "unk_token"} | (
            {"merges"} if isinstance(model, dict) and model.get("type") == "bpe" else set()
        )
        if not isinstance(model, dict) or not needed <= model.keys():
            raise ValueError(f"Tokenizer.load: {path}: model must hold {sorted(needed)}")
        return cls(Normalizer(**normalizer), BertPreTokenizer(), model_from_dict(model))
