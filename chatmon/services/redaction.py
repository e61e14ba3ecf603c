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

from chatmon.services.events import LLMCall

PLACEHOLDERS = {
    "email": "[EMAIL]",
    "card": "[CARD]",
    "iban": "[IBAN]",
    "phone": "[PHONE]",
}

_EMAIL = re.compile(r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}\b")
# 2 letters, 2 check digits, then 11-30 alphanumerics, optionally in groups of four.
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,4})?\b")
# 13-19 digits, optionally separated by single spaces or dashes.
_CARD = re.compile(r"(?<![\d\-])\d(?:[ \-]?\d){12,18}(?![\d\-])")
_PHONE = re.compile(
    r"(?<![\w+])(?<![A-Z0-9]{4} )"  # not the tail of a grouped IBAN-like code
    r"(?:\+\d{1,3}[ .\-]?(?:\(\d{1,4}\)[ .\-]?)?\d{1,4}(?:[ .\-]?\d{2,4}){1,4}"  # +44 20 7946 0958
    r"|\(\d{2,5}\)[ .\-]?\d{3,4}[ .\-]?\d{3,4}"  # (020) 7946 0958, (555) 123-4567
    r"|0\d{1,4}[ .\-/]\d{3,4}(?:[ .\-]?\d{2,4}){1,2}"  # 030 1234 5678, 06-12345678
    r"|\d{3}[.\-]\d{3}[.\-]\d{4})"  # 555-123-4567
    r"(?![\w])"
)


@dataclasses.dataclass(frozen=True)
class PIIMatch:
    """One piece of PII found in a text."""

    kind: str  # email | card | iban | phone
    start: int
    end: int
    text: str


def _luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _iban_ok(candidate: str) -> bool:
    compact = candidate.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(char, 36)) for char in rearranged)
    return int(number) % 97 == 1


def _phone_ok(candidate: str) -> bool:
    digits = re.sub(r"\D", "", candidate)
    return 8 <= len(digits) <= 15


def find_pii(text: str) -> list[PIIMatch]:
    """Every piece of PII in ``text``, in order, never overlapping.

    Checked kinds win over shape-only kinds where they overlap: an IBAN or a card
    number is never also reported as a phone number.
    """
    found: list[PIIMatch] = []

    def free(start: int, end: int) -> bool:
        return all(end <= m.start or start >= m.end for m in found)

    def add(kind: str, pattern: re.Pattern[str], check) -> None:
        for match in pattern.finditer(text):
            if free(match.start(), match.end()) and check(match.group()):
                found.append(PIIMatch(kind, match.start(), match.end(), match.group()))

    add("email", _EMAIL, lambda _: True)
    add("iban", _IBAN, _iban_ok)
    add("card", _CARD, lambda s: _luhn_ok(re.sub(r"\D", "", s)))
    add("phone", _PHONE, _phone_ok)
    return sorted(found, key=lambda m: m.start)


def redact(text: str) -> str:
    """``text`` with each piece of PII replaced by its placeholder, e.g. ``[EMAIL]``."""
    if not text:
        return text
    parts: list[str] = []
    last = 0
    for match in find_pii(text):
        parts.append(text[last : match.start])
        parts.append(PLACEHOLDERS[match.kind])
        last = match.end
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
