"""Normalisation: the first step of the pipeline, text -> normalised text, with the span of the
original text that each normalised character comes from (so that tokens can point back into it).

Steps, in order: drop control and format characters (keeping whitespace), lower-case, strip
accents (decompose and drop the non-spacing marks, as BERT-uncased does), then compose or
decompose to Unicode NFC or NFD.

Each step runs on one *cluster* at a time: a starter character with the combining marks that
follow it (and the few starters, such as Hangul vowel and final jamo, that canonical composition
joins to the character before). Composition never crosses a cluster boundary, so the result is
the NFC/NFD of the whole text (tests/test_tokenizer.py checks it), and every normalised
character knows its cluster's span.
"""

from __future__ import annotations

import functools
import re
import unicodedata

FORMS = ("NFC", "NFD")
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x7f]")


@functools.cache
def _joining_starters() -> frozenset[str]:
    """Characters of combining class 0 that canonical composition can join to the character
    before them (the second half of a two-character canonical decomposition), and the Hangul
    vowel and final jamo that compose into syllables."""
    seconds = set()
    for code in range(0x30000):
        parts = unicodedata.decomposition(chr(code)).split()
        if len(parts) == 2 and not parts[0].startswith("<"):
            second = chr(int(parts[1], 16))
            if unicodedata.combining(second) == 0:
                seconds.add(second)
    jamo = [chr(c) for c in (*range(0x1161, 0x1176), *range(0x11A8, 0x11C3))]
    return frozenset(seconds.union(jamo))


def _is_dropped(ch: str) -> bool:
    """Control (Cc), format (Cf) and lone surrogate (Cs) characters, except whitespace."""
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs") and not ch.isspace()


def clusters(text: str) -> list[tuple[int, int]]:
    """The ``(start, end)`` spans of ``text``'s clusters: a starter and the characters that
    normalisation may join to it (a dropped character joins the cluster before it, so that the
    marks after it still compose with that cluster's starter)."""
    joining = _joining_starters()
    starts = [
        i
        for i, ch in enumerate(text)
        if i == 0 or (unicodedata.combining(ch) == 0 and ch not in joining and not _is_dropped(ch))
    ]
    return list(zip(starts, starts[1:] + [len(text)]))


class Normalizer:
    """``form``: ``"NFC"``, ``"NFD"`` or ``None`` (no Unicode normalisation); ``lowercase``;
    ``strip_accents``: drop non-spacing marks (``None``: follow ``lowercase``, BERT's rule)."""

    def __init__(self, form: str | None = "NFC", lowercase: bool = True, strip_accents: bool | None = None):
        if form not in (*FORMS, None):
            raise ValueError(f"Normalizer: form must be one of {FORMS} or None, got {form!r}")
        self.form = form
        self.lowercase = lowercase
        self.strip_accents = lowercase if strip_accents is None else strip_accents

    def normalize_str(self, text: str) -> str:
        """The normalised text."""
        if text.isascii() and not _ASCII_CONTROL.search(text):
            return text.lower() if self.lowercase else text
        return "".join(self._cluster(text[a:b]) for a, b in clusters(text))

    def normalize(self, text: str) -> tuple[str, list[tuple[int, int]] | None]:
        """The normalised text and, for each of its characters, the ``(start, end)`` span of
        ``text`` it comes from; ``None`` when the two are aligned one to one."""
        if text.isascii() and not _ASCII_CONTROL.search(text):
            return (text.lower() if self.lowercase else text), None
        pieces, spans = [], []
        for a, b in clusters(text):
            piece = self._cluster(text[a:b])
            pieces.append(piece)
            spans.extend([(a, b)] * len(piece))
        return "".join(pieces), spans

    def _cluster(self, text: str) -> str:
        text = "".join(ch for ch in text if not _is_dropped(ch))
        if self.lowercase:
            text = text.lower()
        if self.strip_accents:
            text = "".join(ch for ch in unicodedata.normalize("NFD", text) if unicodedata.category(ch) != "Mn")
        return unicodedata.normalize(self.form, text) if self.form else text

    def to_dict(self) -> dict:
        return {"form": self.form, "lowercase": self.lowercase, "strip_accents": self.strip_accents}
