"""Post-processing: BERT's template around the model's pieces, ``[CLS] a [SEP]`` for one text and
``[CLS] a [SEP] b [SEP]`` for a pair, with segment (token type) 0 up to the first ``[SEP]`` and 1
after it; truncation that makes room for the special tokens first."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Encoding:
    """One encoded text (or pair): ``ids``, ``tokens``, ``offsets`` (the ``(start, end)`` character
    span of each token in the original text it came from; ``(0, 0)`` for special tokens) and
    ``type_ids`` (0: first text, 1: second)."""

    ids: list[int]
    tokens: list[str]
    offsets: list[tuple[int, int]]
    type_ids: list[int] = field(default_factory=list)

    def __post_init__(self):
        if not self.type_ids:
            self.type_ids = [0] * len(self.ids)

    def __len__(self) -> int:
        return len(self.ids)

    def truncated(self, length: int) -> Encoding:
        return Encoding(self.ids[:length], self.tokens[:length], self.offsets[:length], self.type_ids[:length])


def truncate_pair(a: Encoding, b: Encoding | None, max_length: int) -> tuple[Encoding, Encoding | None]:
    """Drop tokens from the end of the longer of ``a`` and ``b`` until the two, with their special
    tokens, fit in ``max_length`` (Hugging Face's "longest first")."""
    specials = 2 if b is None else 3
    if max_length < specials:
        raise ValueError(f"truncate_pair: max_length must be >= {specials} (the special tokens), got {max_length}")
    room = max_length - specials
    if b is None:
        return a.truncated(room), None
    len_a, len_b = len(a), len(b)
    while len_a + len_b > room:
        if len_a > len_b:
            len_a -= 1
        else:
            len_b -= 1
    return a.truncated(len_a), b.truncated(len_b)


class BertProcessor:
    """``[CLS] a [SEP]`` or ``[CLS] a [SEP] b [SEP]``."""

    def __init__(self, cls: tuple[str, int], sep: tuple[str, int]):
        self.cls, self.sep = cls, sep

    def __call__(self, a: Encoding, b: Encoding | None = None) -> Encoding:
        cls, sep = Encoding([self.cls[1]], [self.cls[0]], [(0, 0)]), Encoding([self.sep[1]], [self.sep[0]], [(0, 0)])
        parts = [cls, a, sep] if b is None else [cls, a, sep, b, sep]
        segments = [0, 0, 0] if b is None else [0, 0, 0, 1, 1]
        return Encoding(
            [i for p in parts for i in p.ids],
            [t for p in parts for t in p.tokens],
            [o for p in parts for o in p.offsets],
            [s for p, s in zip(parts, segments) for _ in p.ids],
        )
