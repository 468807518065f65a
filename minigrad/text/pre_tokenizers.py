"""Pre-tokenisation: normalised text -> words, each with its ``(start, end)`` span. BERT's rule:
split on whitespace; every punctuation character (Unicode category P, and the ASCII symbols
``!"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~``) and every CJK ideograph is a word of its own. The
model then cuts each word into pieces; no piece crosses a word boundary."""

from __future__ import annotations

import functools
import re
import unicodedata

_CJK_RANGES = [
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
]


def _char_class(ranges: list[tuple[int, int]]) -> str:
    return "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)


def _ranges(codes: list[int]) -> list[tuple[int, int]]:
    ranges = []
    for code in codes:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    return ranges


@functools.cache
def _word_pattern() -> re.Pattern:
    """One punctuation or CJK character, or a run of other non-space characters."""
    ascii_symbols = [c for c in range(33, 127) if not chr(c).isalnum()]
    punctuation = [c for c in range(0x110000) if unicodedata.category(chr(c)).startswith("P")]
    alone = "[" + _char_class(_ranges(sorted(set(ascii_symbols + punctuation))) + _CJK_RANGES) + "]"
    return re.compile(alone + "|" + alone.replace("[", r"[^\s", 1) + "+")


class BertPreTokenizer:
    """Whitespace, punctuation and CJK split (see the module docstring)."""

    def words(self, text: str) -> list[str]:
        return _word_pattern().findall(text)

    def words_with_spans(self, text: str) -> list[tuple[str, int, int]]:
        """``[(word, start, end), ...]`` in ``text``'s character positions."""
        return [(m.group(), m.start(), m.end()) for m in _word_pattern().finditer(text)]

    def to_dict(self) -> dict:
        return {"type": "bert"}
