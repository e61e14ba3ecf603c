"""PII redaction: emails, phone numbers, card numbers and IBANs, replaced by placeholders.

Applied (when ``ENABLE_PII_REDACTION`` is on, the default) to the text of a request
before it is stored in the request log or sent to Langfuse. The chat itself keeps
showing people their own words; only copies that leave the conversation are redacted.

Detection favours precision: card numbers must pass the Luhn check and IBANs the
ISO 13616 mod-97 check, so order ids and amounts are left alone. Phone numbers are
recognised by shape (an international ``+`` prefix, or a grouped national number of
8-15 digits); a labelled sample in the tests measures precision and recall.
"""

from __future__ import annotations

import dataclasses
import re
import string
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from chatmon.services.events import LLMCall

PLACEHOLDERS = {
    "email": "[EMAIL]",
    "card": "[CARD]",
    "iban": "[IBAN]",
    "phone": "[PHONE]",
}

# Every pattern starts with a character class, which the regex engine looks for without
# running the pattern at every offset, and checks right after it (a lookbehind) that a
# run of such characters starts there. So a scan never retries from every offset inside
# a long run: emails were quadratic on ``a.a.a.a...`` and ``ab-ab-ab-...`` that way.
_LOCAL = r"A-Za-z0-9._%+\-"  # an email's local part
_LOCAL_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-")
_DOMAIN = r"@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}\b"
# An address starts at the first word boundary of a run of local-part characters: at the
# run's first character, or at the group ``late`` (an atomic skip, never retried).
_EMAIL = re.compile(
    rf"[{_LOCAL}](?<![{_LOCAL}].)(?=[{_LOCAL}]*+@)"  # a run that ends in "@"
    rf"(?>(?<=\b.)|[{_LOCAL}]*?\b(?=[{_LOCAL}])(?P<late>))"
    rf"[{_LOCAL}]*+{_DOMAIN}"
)
# The same, right where a previous address ended inside a run (``a@b.com.c@d.org``).
_EMAIL_CONTINUED = re.compile(rf"(?>[{_LOCAL}]*?\b)(?P<late>)[{_LOCAL}]++{_DOMAIN}")
# 2 letters, 2 check digits, then 11-30 alphanumerics, optionally in groups of four.
_IBAN = re.compile(r"[A-Z](?<!\w.)[A-Z]\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,4})?\b")
# 13-19 digits, optionally separated by single spaces or dashes.
_CARD = re.compile(r"\d(?<![\d\-].)(?:[ \-]?\d){12,18}(?![\d\-])")
_PHONE = re.compile(
    r"[+(\d](?<![\w+].)(?<![A-Z0-9]{4} .)"  # not the tail of a grouped IBAN-like code
    # +44 20 7946 0958
    r"(?:(?<=\+)\d{1,3}[ .\-]?(?:\(\d{1,4}\)[ .\-]?)?\d{1,4}(?:[ .\-]?\d{2,4}){1,4}"
    r"|(?<=\()\d{2,5}\)[ .\-]?\d{3,4}[ .\-]?\d{3,4}"  # (020) 7946 0958, (555) 123-4567
    r"|(?<=0)\d{1,4}[ .\-/]\d{3,4}(?:[ .\-]?\d{2,4}){1,2}"  # 030 1234 5678, 06-12345678
    r"|(?<=\d)\d{2}[.\-]\d{3}[.\-]\d{4})"  # 555-123-4567
    r"(?![\w])"
)


class PIIMatch(NamedTuple):
    """One piece of PII found in a text."""

    kind: str  # email | card | iban | phone
    start: int
    end: int
    text: str


_DOUBLED = bytes.maketrans(b"0123456789", b"0246813579")  # 2*d with its digits summed
_SEPARATORS = str.maketrans("", "", " .-/()+")
_LETTER_VALUES = {ord(char): str(value) for value, char in enumerate(string.ascii_uppercase, 10)}


def _luhn_ok(digits: str) -> bool:
    if not digits.isascii():  # other scripts' digits (\d is Unicode): the plain way
        digits = "".join(str(int(char)) for char in digits)
    raw = digits.encode("ascii")
    total = sum(raw[-1::-2]) + sum(raw[-2::-2].translate(_DOUBLED)) - ord("0") * len(raw)
    return total % 10 == 0


def _card_ok(candidate: str) -> bool:
    return _luhn_ok(candidate.replace(" ", "").replace("-", ""))


def _iban_ok(candidate: str) -> bool:
    compact = candidate.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    return int((compact[4:] + compact[:4]).translate(_LETTER_VALUES)) % 97 == 1


def _phone_ok(candidate: str) -> bool:
    digits = len(candidate.translate(_SEPARATORS))  # a match is digits and separators
    return 8 <= digits <= 15


def _emails(text: str) -> Iterator[re.Match[str]]:
    """Every email address in ``text``, as one left-to-right scan would find them."""
    position = 0
    while (match := _EMAIL.search(text, position)) is not None:
        yield match
        position = match.end()
        while position < len(text) and text[position] in _LOCAL_CHARS:
            if (match := _EMAIL_CONTINUED.match(text, position)) is None:
                break  # the rest of this run cannot hold an address either
            yield match
            position = match.end()


def _email_start(match: re.Match[str]) -> int:
    late = match.start("late")
    return late if late >= 0 else match.start()


Span = tuple[int, int, str]  # start, end, kind


def _untaken(taken: list[Span], candidates: Iterable[Span]) -> list[Span]:
    """The candidates (in order, not overlapping each other) that overlap nothing taken."""
    kept: list[Span] = []
    index = 0
    for candidate in candidates:
        start, end, _ = candidate
        while index < len(taken) and taken[index][1] <= start:
            index += 1
        if index == len(taken) or taken[index][0] >= end:
            kept.append(candidate)
    return kept


# Shape-only and checked kinds after emails, in the order they claim text.
_CHECKED_KINDS: list[tuple[str, re.Pattern[str], Callable[[str], bool]]] = [
    ("iban", _IBAN, _iban_ok),
    ("card", _CARD, _card_ok),
    ("phone", _PHONE, _phone_ok),
]


def _find_spans(text: str) -> list[Span]:
    found = [(_email_start(m), m.end(), "email") for m in _emails(text)] if "@" in text else []
    for kind, pattern, check in _CHECKED_KINDS:
        candidates = (
            (m.start(), m.end(), kind) for m in pattern.finditer(text) if check(m.group())
        )
        found = sorted([*found, *_untaken(found, candidates)])
    return found


def find_pii(text: str) -> list[PIIMatch]:
    """Every piece of PII in ``text``, in order, never overlapping.

    Checked kinds win over shape-only kinds where they overlap: an IBAN or a card
    number is never also reported as a phone number. Linear in ``len(text)``.
    """
    return [PIIMatch(kind, start, end, text[start:end]) for start, end, kind in _find_spans(text)]


def pii_spans(text: str) -> list[tuple[int, int]]:
    """Where ``text`` holds PII (for cutting a text without splitting any)."""
    return [(start, end) for start, end, _ in _find_spans(text)]


def redact(text: str) -> str:
    """``text`` with each piece of PII replaced by its placeholder, e.g. ``[EMAIL]``."""
    if not text:
        return text
    parts: list[str] = []
    last = 0
    for start, end, kind in _find_spans(text):
        parts.append(text[last:start])
        parts.append(PLACEHOLDERS[kind])
        last = end
    parts.append(text[last:])
    return "".join(parts)


def redact_call(call: LLMCall, *, enabled: bool) -> LLMCall:
    """A copy of ``call`` whose input and output text are redacted (``call`` when disabled).

    For every consumer that stores or ships the text of a request (the recorder,
    tracing): ``redact_call(call, enabled=settings.enable_pii_redaction)``.
    """
    if not enabled:
        return call
    return dataclasses.replace(
        call, input_text=redact(call.input_text), output_text=redact(call.output_text)
    )
