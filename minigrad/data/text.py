"""Text data: tokenizers, a vocabulary, a length-bucketing batch sampler and ready-made tasks.

- ``char_tokenize word_tokenize detokenize``: text -> tokens -> text
- ``Vocab``: tokens <-> ids, with ``<pad> <bos> <eos> <unk>`` as ids 0..3
- ``BucketBatchSampler``: batches of indices of similar length (little padding)
- ``Seq2SeqTask`` with ``dates_task`` (characters) and ``en_es_task`` (words): pairs split into
  train/valid/test and batched as padded id tensors
- ``shakespeare_chars``: the embedded plays as character ids, split by play
- ``mask_tokens``: BERT's masked-LM corruption (15 % of the tokens; 80/10/10) and its labels
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from minigrad import backend
from minigrad.data.datasets import load_en_es, load_shakespeare
from minigrad.data.synthetic import calendar_days, date_pairs
from minigrad.tensor import Tensor

np = backend.numpy

# ------------------------------------------------------------------------------ tokenizers
_WORD_OR_SYMBOL = re.compile(r"\w+|[^\w\s]")
_NO_SPACE_BEFORE = set(".,;:!?)]}”’%")
_NO_SPACE_AFTER = set("([{¿¡“‘")


def char_tokenize(text: str) -> list[str]:
    """Every character is a token: ``"ab c" -> ["a", "b", " ", "c"]``."""
    return list(text)


def word_tokenize(text: str) -> list[str]:
    """Lower-cased words (runs of letters, digits and ``_``) and every other non-space character
    as a token of its own: ``"Sea la luz: y fué." -> ["sea", "la", "luz", ":", "y", "fué", "."]``."""
    return _WORD_OR_SYMBOL.findall(text.lower())


def detokenize(tokens: list[str]) -> str:
    """Join ``word_tokenize``'s tokens into text: a space between tokens except before closing
    punctuation and after opening punctuation, so ``word_tokenize(detokenize(t)) == t``."""
    text = ""
    for i, token in enumerate(tokens):
        if i and token not in _NO_SPACE_BEFORE and tokens[i - 1] not in _NO_SPACE_AFTER:
            text += " "
        text += token
    return text


# ------------------------------------------------------------------------------ vocabulary
class Vocab:
    """Tokens <-> ids. Ids 0..3 are ``<pad> <bos> <eos> <unk>``, then the tokens seen at least
    ``min_freq`` times, most frequent first (ties in alphabetical order), at most ``max_size``
    ids in all. An unknown token maps to ``unk_id``.

    ``counter_or_tokens``: a ``Counter`` (or dict) of token counts, an iterable of tokens, or an
    iterable of token sequences (e.g. tokenized sentences).
    """

    specials = ("<pad>", "<bos>", "<eos>", "<unk>")
    pad_id, bos_id, eos_id, unk_id = 0, 1, 2, 3

    def __init__(self, counter_or_tokens, min_freq: int = 1, max_size: int | None = None):
        if min_freq < 1:
            raise ValueError(f"Vocab: min_freq must be >= 1, got {min_freq}")
        if max_size is not None and max_size < len(self.specials):
            raise ValueError(f"Vocab: max_size must be >= {len(self.specials)} (the special tokens), got {max_size}")
        counts = counter_or_tokens if isinstance(counter_or_tokens, dict) else Counter(_flatten(counter_or_tokens))
        kept = [t for t, c in counts.items() if c >= min_freq and t not in self.specials]
        ranked = sorted(kept, key=lambda t: (-counts[t], t))
        self.itos = list(self.specials) + ranked
        if max_size is not None:
            self.itos = self.itos[:max_size]
        self.stoi = {token: i for i, token in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def __getitem__(self, token: str) -> int:
        return self.stoi.get(token, self.unk_id)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)})"

    def encode(self, tokens: Iterable[str], bos: bool = False, eos: bool = False) -> list[int]:
        """Ids of ``tokens``, optionally framed by ``<bos>`` and ``<eos>``."""
        ids = [self.stoi.get(token, self.unk_id) for token in tokens]
        return [self.bos_id] * bos + ids + [self.eos_id] * eos

    def decode(self, ids, strip: bool = True) -> list[str]:
        """Tokens of ``ids`` (a list or a 1-D tensor). ``strip``: stop at the first ``<eos>`` and
        drop ``<pad>`` and ``<bos>``."""
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
        tokens = []
        for i in ids:
            if not 0 <= i < len(self.itos):
                raise ValueError(f"Vocab.decode: id {i} is out of range for a vocab of size {len(self.itos)}")
            if strip and i == self.eos_id:
                break
            if not (strip and i in (self.pad_id, self.bos_id)):
                tokens.append(self.itos[i])
        return tokens


def _flatten(tokens_or_sequences) -> Iterator[str]:
    for item in tokens_or_sequences:
        if isinstance(item, str):
            yield item
        else:
            yield from item


# --------------------------------------------------------------------------------- sampler
class BucketBatchSampler:
    """Batches of indices of similar ``lengths``, so that padding stays small.

    With ``shuffle``, each epoch permutes the indices (seeded by ``seed`` and the epoch, see
    ``set_epoch``), sorts each pool of ``100 * batch_size`` of them by length, cuts the result
    into batches and shuffles the batch order; without, it cuts the indices sorted by length.
    Every index appears exactly once per epoch; only the last batch cut may be smaller, and
    ``drop_last`` leaves it out.
    """

    _POOL_BATCHES = 100

    def __init__(self, lengths, batch_size: int, shuffle: bool = True, seed: int = 0, drop_last: bool = False):
        if batch_size < 1:
            raise ValueError(f"BucketBatchSampler: batch_size must be >= 1, got {batch_size}")
        self.lengths = np.asarray(lengths.tolist() if hasattr(lengths, "tolist") else lengths, dtype=backend.int64)
        self.batch_size, self.shuffle, self.seed, self.drop_last = batch_size, shuffle, seed, drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw the next iteration's order from ``(seed, epoch)``."""
        self.epoch = epoch

    def __len__(self) -> int:
        n, b = len(self.lengths), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self) -> Iterator[list[int]]:
        n = len(self.lengths)
        if not self.shuffle:
            order = np.argsort(self.lengths, kind="stable")
        else:
            rng = np.random.default_rng([self.seed, self.epoch])
            order = rng.permutation(n)
            pool = self._POOL_BATCHES * self.batch_size
            order = np.concatenate(
                [
                    chunk[np.argsort(self.lengths[chunk], kind="stable")]
                    for chunk in np.split(order, range(pool, n, pool))
                ]
            )
        batches = [order[i : i + self.batch_size].tolist() for i in range(0, n, self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        yield from batches


# ------------------------------------------------------------------------------- seq2seq
class Batch(NamedTuple):
    """A padded batch, batch-first, int64, padding ``Vocab.pad_id``: ``src (B, S)`` source ids
    ending in ``<eos>``, ``src_lengths (B,)`` their lengths, ``tgt_in (B, T)`` = ``<bos> y...``
    (the decoder's input) and ``tgt_out (B, T)`` = ``y... <eos>`` (what it must predict)."""

    src: Tensor
    src_lengths: Tensor
    tgt_in: Tensor
    tgt_out: Tensor


def _pad(rows: list[list[int]]) -> Tensor:
    out = np.full((len(rows), max(map(len, rows))), Vocab.pad_id, dtype=backend.int64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return Tensor(out)


@dataclass
class Seq2SeqTask:
    """Sentence pairs ``(source_text, target_text)`` split into ``train valid test``, with the
    tokenizers and vocabularies (built on ``train``) that turn them into padded batches."""

    train: list[tuple[str, str]]
    valid: list[tuple[str, str]]
    test: list[tuple[str, str]]
    src_vocab: Vocab
    tgt_vocab: Vocab
    src_tokenize: Callable[[str], list[str]]
    tgt_tokenize: Callable[[str], list[str]]
    detokenize: Callable[[list[str]], str]

    def split(self, name: str) -> list[tuple[str, str]]:
        if name not in ("train", "valid", "test"):
            raise ValueError(f"Seq2SeqTask: split must be 'train', 'valid' or 'test', got {name!r}")
        return getattr(self, name)

    def encode(self, name: str) -> tuple[list[list[int]], list[list[int]]]:
        """The split's source ids (ending in ``<eos>``) and target ids (without ``<bos>``/``<eos>``)."""
        pairs = self.split(name)
        sources = [self.src_vocab.encode(self.src_tokenize(s), eos=True) for s, _ in pairs]
        targets = [self.tgt_vocab.encode(self.tgt_tokenize(t)) for _, t in pairs]
        return sources, targets

    def batches(self, split: str, batch_size: int, shuffle: bool = True, seed: int = 0) -> Iterator[Batch]:
        """The split as ``Batch``es of pairs of similar source length (``BucketBatchSampler``)."""
        sources, targets = self.encode(split)
        sampler = BucketBatchSampler([len(s) for s in sources], batch_size, shuffle=shuffle, seed=seed)
        bos, eos = self.tgt_vocab.bos_id, self.tgt_vocab.eos_id
        for indices in sampler:
            yield Batch(
                src=_pad([sources[i] for i in indices]),
                src_lengths=Tensor(np.array([len(sources[i]) for i in indices], dtype=backend.int64)),
                tgt_in=_pad([[bos] + targets[i] for i in indices]),
                tgt_out=_pad([targets[i] + [eos] for i in indices]),
            )


def _join_chars(tokens: list[str]) -> str:
    return "".join(tokens)


def dates_task(n_train: int = 20_000, n_valid: int = 1_000, n_test: int = 2_000, seed: int = 0) -> Seq2SeqTask:
    """Human-written dates -> ISO dates (``synthetic.dates``' twelve formats), character level.

    Every pair has a different calendar day, so no test (or validation) date ever occurs in
    training, in any format: the test set measures generalisation to unseen dates.
    """
    days = np.array(calendar_days())
    if n_train + n_valid + n_test > len(days):
        raise ValueError(f"dates_task: at most {len(days)} distinct dates, asked for {n_train + n_valid + n_test}")
    rng = np.random.default_rng(seed)
    days = rng.permutation(days)
    cuts = np.cumsum([n_train, n_valid, n_test])
    train, valid, test = (date_pairs(part, rng) for part in np.split(days[: cuts[-1]], cuts[:2]))
    return Seq2SeqTask(
        train=train,
        valid=valid,
        test=test,
        src_vocab=Vocab(char_tokenize(s) for s, _ in train),
        tgt_vocab=Vocab(char_tokenize(t) for _, t in train),
        src_tokenize=char_tokenize,
        tgt_tokenize=char_tokenize,
        detokenize=_join_chars,
    )


def en_es_task(seed: int = 0, min_freq: int = 2, n_valid: int = 500, n_test: int = 500) -> Seq2SeqTask:
    """English -> Spanish Bible verses (``load_en_es``, 5715 pairs), lower-cased words.

    The split is a permutation fixed by ``seed`` (4715 / 500 / 500 by default); the vocabularies
    hold the training words seen at least ``min_freq`` times, rarer ones become ``<unk>``.
    """
    pairs = load_en_es()
    order = np.random.default_rng(seed).permutation(len(pairs)).tolist()
    test = [pairs[i] for i in order[:n_test]]
    valid = [pairs[i] for i in order[n_test : n_test + n_valid]]
    train = [pairs[i] for i in order[n_test + n_valid :]]
    return Seq2SeqTask(
        train=train,
        valid=valid,
        test=test,
        src_vocab=Vocab((word_tokenize(s) for s, _ in train), min_freq=min_freq),
        tgt_vocab=Vocab((word_tokenize(t) for _, t in train), min_freq=min_freq),
        src_tokenize=word_tokenize,
        tgt_tokenize=word_tokenize,
        detokenize=detokenize,
    )


# ---------------------------------------------------------------------------- shakespeare
_PLAY_TITLE = re.compile(r"^(.+)\n\nby William Shakespeare\n", re.MULTILINE)


def shakespeare_plays() -> dict[str, str]:
    """The embedded plays by title (``"HAMLET, PRINCE OF DENMARK"``, ...), in file order. Each play
    starts at its title line, which the text follows with ``by William Shakespeare``."""
    text = load_shakespeare()
    starts = [m.start() for m in _PLAY_TITLE.finditer(text)] + [len(text)]
    return {_PLAY_TITLE.match(text, a).group(1): text[a:b] for a, b in zip(starts, starts[1:])}


@dataclass
class CharCorpus:
    """A character corpus: ``train`` and ``valid`` int64 id tensors (T,) and their ``vocab``."""

    train: Tensor
    valid: Tensor
    vocab: Vocab
    valid_play: str


def shakespeare_chars(valid_play: str = "A MIDSUMMER NIGHT'S DREAM") -> CharCorpus:
    """The eight plays as character ids: seven for training, ``valid_play`` held out whole for
    validation (a play, not random lines, so that validation text shares no scene with training).
    The vocabulary holds the training characters; a character only the held-out play uses maps
    to ``<unk>``."""
    plays = shakespeare_plays()
    if valid_play not in plays:
        raise ValueError(f"shakespeare_chars: valid_play must be one of {list(plays)}, got {valid_play!r}")
    train_text = "".join(text for title, text in plays.items() if title != valid_play)
    vocab = Vocab(char_tokenize(train_text))

    def ids(text: str) -> Tensor:
        return Tensor(np.array(vocab.encode(text), dtype=backend.int64))

    return CharCorpus(train=ids(train_text), valid=ids(plays[valid_play]), vocab=vocab, valid_play=valid_play)


# ------------------------------------------------------------------- masked language model
IGNORE_INDEX = -100  # cross_entropy's default ignore_index: no loss at that position


def mask_tokens(
    input_ids: Tensor,
    special_mask_or_ids: Tensor | Collection[int],
    mask_id: int,
    vocab_size: int,
    probability: float = 0.15,
    generator=None,
) -> tuple[Tensor, Tensor]:
    """BERT's masked-LM recipe: choose each non-special position with ``probability`` (15 %);
    of the chosen, 80 % become ``mask_id``, 10 % a token drawn uniformly from the vocabulary and
    10 % stay as they are (so the model cannot tell which inputs it must predict).

    input_ids: (B, T) int. special_mask_or_ids: a bool (B, T) tensor, True where a position
    must never be chosen (special tokens, padding), or the special token ids ([CLS], [SEP],
    [PAD], ...). generator: a NumPy ``Generator`` (default: minigrad's, seeded by
    ``mg.manual_seed``). Returns ``masked_input_ids (B, T)`` and ``labels (B, T)``: the original
    id at the chosen positions, -100 (``cross_entropy``'s ignore_index) everywhere else.
    """
    if not 0 <= probability <= 1:
        raise ValueError(f"mask_tokens: probability must be in [0, 1], got {probability}")
    ids = input_ids.cpu().numpy()
    if ids.dtype.kind not in "iu":
        raise TypeError(f"mask_tokens: input_ids must be an integer tensor, got {ids.dtype}")
    if isinstance(special_mask_or_ids, Tensor):
        special = special_mask_or_ids.cpu().numpy().astype(bool)
        if special.shape != ids.shape:
            raise ValueError(
                f"mask_tokens: the special mask must have the shape of input_ids {ids.shape}, got {special.shape}"
            )
    else:
        special = np.isin(ids, np.asarray(list(special_mask_or_ids), dtype=ids.dtype))
    rng = generator if generator is not None else backend.generator("cpu")
    chosen = (rng.random(ids.shape) < probability) & ~special
    fate = rng.random(ids.shape)  # < 0.8: [MASK]; 0.8 to 0.9: a random token; >= 0.9: unchanged
    masked = np.where(chosen & (fate < 0.8), mask_id, ids)
    random_token = chosen & (fate >= 0.8) & (fate < 0.9)
    masked = np.where(random_token, rng.integers(0, vocab_size, ids.shape), masked).astype(ids.dtype)
    labels = np.where(chosen, ids, IGNORE_INDEX).astype(backend.int64)
    return Tensor(masked).to(input_ids.device), Tensor(labels).to(input_ids.device)
