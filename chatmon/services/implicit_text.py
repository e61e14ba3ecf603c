"""The text side of a rephrase: a message's words and how much two messages share.

Pure and bounded: a word is a run of ``str.isalnum`` characters, read in one pass over
the first ``MAX_TEXT_CHARS`` characters, with no regular expression, so any message
(the user's or the model's) costs time linear in its capped length.
"""

from __future__ import annotations

from chatmon.services.implicit_signals import (
    MAX_TEXT_CHARS,
    REPHRASE_MIN_OVERLAP,
    REPHRASE_MIN_WORDS,
)


def words(text: str) -> frozenset[str]:
    """The distinct words of ``text`` (its first ``MAX_TEXT_CHARS`` characters), case-folded.

    A word is a run of alphanumeric characters; everything else separates words. One
    pass over the characters, so any input costs time linear in its (capped) length.
    """
    found: set[str] = set()
    current: list[str] = []
    for char in text[:MAX_TEXT_CHARS].casefold():
        if char.isalnum():
            current.append(char)
        elif current:
            found.add("".join(current))
            current.clear()
    if current:
        found.add("".join(current))
    return frozenset(found)


def overlap(first: frozenset[str], second: frozenset[str]) -> float:
    """The Jaccard index of two word sets: shared words over all words (0 when both empty)."""
    union = len(first | second)
    return len(first & second) / union if union else 0.0


def is_rephrase(earlier: str, later: str) -> bool:
    """Whether ``later`` says nearly what ``earlier`` said (the rule is in
    :mod:`chatmon.services.implicit_signals`)."""
    first, second = words(earlier), words(later)
    if min(len(first), len(second)) < REPHRASE_MIN_WORDS:
        return False
    return overlap(first, second) >= REPHRASE_MIN_OVERLAP
