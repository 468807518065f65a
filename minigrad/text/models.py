"""Models: a word -> pieces. Both share one vocabulary layout and one trainer:

- the vocabulary is the special tokens, then the alphabet (every training character ``c`` and its
  continuation form ``##c``, so that any character seen in training can be encoded anywhere in a
  word), then one token per learnt merge;
- training starts from words split into characters (``"hat" -> h ##a ##t``) and merges the most
  frequent adjacent pair, again and again, until the vocabulary holds ``vocab_size`` tokens
  (``("h", "##a") -> "ha"``; ``("##a", "##t") -> "##at"``), as Hugging Face's BPE and
  WordPiece trainers do;
- ``WordPiece`` cuts a word greedily, longest known piece first; ``BPE`` replays the merges in the
  order they were learnt.

A character no training text held becomes ``[UNK]`` on its own; the rest of its word is still cut
into pieces.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict

PREFIX = "##"
_CACHE_SIZE = 1 << 17


def _join(a: str, b: str) -> str:
    return a + b[len(PREFIX) :]


def _alphabet(word_counts: dict[str, int], size: int) -> list[str]:
    """The ``size`` most frequent characters (ties by code point), in code point order."""
    chars = Counter()
    for word, count in word_counts.items():
        for ch in word:
            chars[ch] += count
    return sorted(sorted(chars, key=lambda ch: (-chars[ch], ch))[:size])


def learn_merges(
    word_counts: dict[str, int], vocab_size: int, specials: list[str], min_frequency: int = 2
) -> tuple[list[str], list[tuple[str, str]]]:
    """The vocabulary (``specials``, the alphabet, the merged tokens) and the merges, learnt from
    ``{word: count}``. The alphabet keeps the most frequent characters that fit in
    ``vocab_size`` (each takes two tokens, ``c`` and ``##c``); merging stops at ``vocab_size``
    tokens or when no pair occurs ``min_frequency`` times."""
    room = vocab_size - len(specials)
    if room < 0:
        raise ValueError(f"learn_merges: vocab_size must be >= {len(specials)} (the special tokens), got {vocab_size}")
    alphabet = _alphabet(word_counts, room // 2)
    vocab = specials + alphabet + [PREFIX + ch for ch in alphabet]
    token_id = {token: i for i, token in enumerate(vocab)}
    unknown = -1  # a character outside the alphabet: never merged

    words, counts = [], []
    for word, count in word_counts.items():
        pieces = [word[0]] + [PREFIX + ch for ch in word[1:]]
        words.append([token_id.get(p, unknown) for p in pieces])
        counts.append(count)

    pair_counts: dict[tuple[int, int], int] = defaultdict(int)
    where: dict[tuple[int, int], set[int]] = defaultdict(set)
    for w, ids in enumerate(words):
        for pair in zip(ids, ids[1:]):
            if unknown not in pair:
                pair_counts[pair] += counts[w]
                where[pair].add(w)
    heap = [(-c, pair) for pair, c in pair_counts.items()]
    heapq.heapify(heap)

    merges, learnt = [], set()
    while len(vocab) < vocab_size and heap:
        negative, pair = heapq.heappop(heap)
        if pair_counts.get(pair, 0) != -negative:
            continue  # stale: a fresher entry for this pair is in the heap
        if -negative < min_frequency:
            break
        a, b = pair
        merged = _join(vocab[a], vocab[b])
        if (vocab[a], vocab[b]) not in learnt:  # a pair merged before can reappear through a later merge
            learnt.add((vocab[a], vocab[b]))
            merges.append((vocab[a], vocab[b]))
        if merged not in token_id:  # else another pair already made it: the merge adds no token
            token_id[merged] = len(vocab)
            vocab.append(merged)
        new = token_id[merged]

        delta: dict[tuple[int, int], int] = defaultdict(int)
        for w in where.pop(pair):
            ids = words[w]
            merged_ids, i = [], 0
            while i < len(ids):
                if i + 1 < len(ids) and ids[i] == a and ids[i + 1] == b:
                    merged_ids.append(new)
                    i += 2
                else:
                    merged_ids.append(ids[i])
                    i += 1
            for old_pair in zip(ids, ids[1:]):
                delta[old_pair] -= counts[w]
            for new_pair in zip(merged_ids, merged_ids[1:]):
                delta[new_pair] += counts[w]
                where[new_pair].add(w)
            words[w] = merged_ids
        for changed, d in delta.items():
            if d and unknown not in changed:
                pair_counts[changed] += d
                heapq.heappush(heap, (-pair_counts[changed], changed))
    return vocab, merges


class SubwordModel:
    """The vocabulary and the word -> pieces cache that both models share. ``tokenize(word)``
    gives ``[(id, start, end), ...]`` with spans in the word's characters."""

    kind = ""

    def __init__(self, vocab: list[str], unk_token: str = "[UNK]"):
        if not isinstance(vocab, list) or not all(isinstance(token, str) and token for token in vocab):
            raise ValueError(f"{type(self).__name__}: the vocabulary must be a list of non-empty strings")
        if len(set(vocab)) != len(vocab):
            raise ValueError(f"{type(self).__name__}: the vocabulary holds a token twice")
        if unk_token not in vocab:
            raise ValueError(f"{type(self).__name__}: unk_token {unk_token!r} is not in the vocabulary")
        self.vocab = list(vocab)
        self.token_id = {token: i for i, token in enumerate(vocab)}
        self.unk_token, self.unk_id = unk_token, self.token_id[unk_token]
        self._cache: dict[str, list[tuple[int, int, int]]] = {}

    def tokenize(self, word: str) -> list[tuple[int, int, int]]:
        pieces = self._cache.get(word)
        if pieces is None:
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            pieces = self._cache[word] = self._split(word)
        return pieces

    def _split(self, word: str) -> list[tuple[int, int, int]]:
        raise NotImplementedError

    def to_dict(self) -> dict:
        return {"type": self.kind, "vocab": self.vocab, "unk_token": self.unk_token}


class WordPiece(SubwordModel):
    """Greedy longest-match-first: at each position take the longest piece in the vocabulary
    (``##``-prefixed after the word's first piece). A word longer than ``max_input_chars_per_word``
    is one ``[UNK]``, as in BERT and Hugging Face's WordPiece."""

    kind = "wordpiece"

    def __init__(self, vocab: list[str], unk_token: str = "[UNK]", max_input_chars_per_word: int = 100):
        super().__init__(vocab, unk_token)
        self.longest = max(len(token.removeprefix(PREFIX)) for token in vocab)
        self.max_input_chars_per_word = max_input_chars_per_word

    def _split(self, word: str) -> list[tuple[int, int, int]]:
        if len(word) > self.max_input_chars_per_word:
            return [(self.unk_id, 0, len(word))]
        pieces, start = [], 0
        while start < len(word):
            prefix = PREFIX if start else ""
            for end in range(min(len(word), start + self.longest), start, -1):
                piece = self.token_id.get(prefix + word[start:end])
                if piece is not None:
                    break
            else:
                piece, end = self.unk_id, start + 1
            pieces.append((piece, start, end))
            start = end
        return pieces

    def to_dict(self) -> dict:
        return {**super().to_dict(), "max_input_chars_per_word": self.max_input_chars_per_word}


class BPE(SubwordModel):
    """Start from characters and apply the learnt merges, lowest rank (earliest learnt) first."""

    kind = "bpe"

    def __init__(self, vocab: list[str], merges: list[tuple[str, str]], unk_token: str = "[UNK]"):
        super().__init__(vocab, unk_token)
        for i, merge in enumerate(merges):
            pair = isinstance(merge, (list, tuple)) and len(merge) == 2 and all(isinstance(t, str) for t in merge)
            if not (pair and merge[1].startswith(PREFIX) and {*merge, _join(*merge)} <= self.token_id.keys()):
                raise ValueError(
                    f"BPE: merge {i} {merge!r} must be a token and a ## piece of the vocabulary whose join is in it too"
                )
        self.merges = [tuple(m) for m in merges]
        self.rank = {pair: r for r, pair in enumerate(self.merges)}

    def _split(self, word: str) -> list[tuple[str, int, int]]:
        pieces = [(ch if i == 0 else PREFIX + ch, i, i + 1) for i, ch in enumerate(word)]
        while len(pieces) > 1:
            ranks = [self.rank.get((a[0], b[0]), len(self.rank)) for a, b in zip(pieces, pieces[1:])]
            best = min(range(len(ranks)), key=ranks.__getitem__)
            if ranks[best] == len(self.rank):
                break
            (a, start, _), (b, _, end) = pieces[best], pieces[best + 1]
            pieces[best : best + 2] = [(_join(a, b), start, end)]
        return [(self.token_id.get(token, self.unk_id), start, end) for token, start, end in pieces]

    def to_dict(self) -> dict:
        return {**super().to_dict(), "merges": [list(m) for m in self.merges]}


def model_from_dict(state: dict) -> SubwordModel:
    if state["type"] == "wordpiece":
        return WordPiece(state["vocab"], state["unk_token"], state.get("max_input_chars_per_word", 100))
    if state["type"] == "bpe":
        return BPE(state["vocab"], state["merges"], state["unk_token"])
    raise ValueError(f"model_from_dict: type must be 'wordpiece' or 'bpe', got {state['type']!r}")
