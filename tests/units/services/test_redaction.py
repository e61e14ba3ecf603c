"""PII redaction: what a person would call PII is replaced, everything else is left alone."""

from __future__ import annotations

from datetime import UTC, datetime

from chatmon.services.events import LLMCall
from chatmon.services.redaction import find_pii, redact, redact_call

# A labelled sample: (text, [(kind, exact text of the PII)]). Hard negatives included:
# order ids, dates, times, amounts, versions, IPs, a non-Luhn card, a bad IBAN checksum.
SAMPLE: list[tuple[str, list[tuple[str, str]]]] = [
    ("Mail me at jane.doe@example.com please", [("email", "jane.doe@example.com")]),
    (
        "cc: ops+alerts@corp.example.co.uk and bob@x.io",
        [("email", "ops+alerts@corp.example.co.uk"), ("email", "bob@x.io")],
    ),
    ("My card is 4111 1111 1111 1111, exp 12/27", [("card", "4111 1111 1111 1111")]),
    ("card 5500-0000-0000-0004 was declined", [("card", "5500-0000-0000-0004")]),
    ("amex 378282246310005", [("card", "378282246310005")]),
    ("try 6011111111111117 instead", [("card", "6011111111111117")]),
    ("Pay to DE89 3704 0044 0532 0130 00 by Friday", [("iban", "DE89 3704 0044 0532 0130 00")]),
    ("IBAN: GB82WEST12345698765432", [("iban", "GB82WEST12345698765432")]),
    ("NL91ABNA0417164300 is my account", [("iban", "NL91ABNA0417164300")]),
    ("Spanish account ES91 2100 0418 4502 0005 1332.", [("iban", "ES91 2100 0418 4502 0005 1332")]),
    ("Call me on +1 415 555 2671 tomorrow", [("phone", "+1 415 555 2671")]),
    ("UK office: +44 20 7946 0958", [("phone", "+44 20 7946 0958")]),
    ("US number (555) 123-4567 after 5pm", [("phone", "(555) 123-4567")]),
    ("or 555-123-4567", [("phone", "555-123-4567")]),
    ("Berlin +49 30 12345678", [("phone", "+49 30 12345678")]),
    ("landline 030 1234 5678", [("phone", "030 1234 5678")]),
    ("Paris: +33 1 23 45 67 89", [("phone", "+33 1 23 45 67 89")]),
    ("mobile 06-12345678", [("phone", "06-12345678")]),
    ("India +91 98765 43210", [("phone", "+91 98765 43210")]),
    (
        "Reach jane@example.org or +44 7700 900123, card 4012888888881881",
        [("email", "jane@example.org"), ("phone", "+44 7700 900123"), ("card", "4012888888881881")],
    ),
    # negatives
    ("Order 12345678 shipped on 2024-03-15 at 12:30:45", []),
    ("Total: $1,234.56 for 3 items", []),
    ("Upgrade from version 1.2.3 to 2.0.10", []),
    ("The server at 192.168.1.10 answered in 250 ms", []),
    ("Card 4111 1111 1111 1112 fails the checksum", []),
    ("DE89 3704 0044 0532 0130 01 has a bad check digit", []),
    ("Ticket #2024-1187 is about invoice 99812", []),
    ("The meeting is 10-12 on 03/04/2025", []),
    ("Population 8,336,817 in 2020", []),
    ("Use the @example handle or email-like text like a@b", []),
    ("Build 20240315123045 passed", []),
    ("Python 3.11.4 and Node 22.1.0", []),
]


def _score() -> tuple[float, float, list[str]]:
    true_pos = false_pos = false_neg = 0
    problems: list[str] = []
    for text, expected in SAMPLE:
        found = {(m.kind, m.text) for m in find_pii(text)}
        wanted = set(expected)
        true_pos += len(found & wanted)
        false_pos += len(found - wanted)
        false_neg += len(wanted - found)
        if found != wanted:
            problems.append(f"{text!r}: found {sorted(found)}, expected {sorted(wanted)}")
    precision = true_pos / (true_pos + false_pos) if true_pos + false_pos else 1.0
    recall = true_pos / (true_pos + false_neg) if true_pos + false_neg else 1.0
    return precision, recall, problems


def test_redaction_precision_and_recall_on_labelled_sample() -> None:
    precision, recall, problems = _score()
    entities = sum(len(expected) for _, expected in SAMPLE)
    print(
        f"\nPII redaction on {len(SAMPLE)} labelled texts ({entities} entities): "
        f"precision {precision:.3f}, recall {recall:.3f}"
    )
    for problem in problems:
        print("  miss/extra:", problem)
    assert precision >= 0.95, problems
    assert recall >= 0.95, problems


def test_redact_replaces_pii_with_placeholders() -> None:
    text = (
        "I'm jane@example.com, card 4111 1111 1111 1111, IBAN DE89370400440532013000, "
        "tel +44 20 7946 0958."
    )
    assert redact(text) == "I'm [EMAIL], card [CARD], IBAN [IBAN], tel [PHONE]."


def test_redact_leaves_text_without_pii_unchanged() -> None:
    text = "How do I configure Prometheus 2.42 to scrape port 3000 every 15s?"
    assert redact(text) == text


def _call(**overrides: object) -> LLMCall:
    values: dict[str, object] = dict(
        correlation_id="c1",
        session_id="s1",
        conversation_id="v1",
        model="m",
        provider=None,
        started_at=datetime.now(UTC),
        first_token_seconds=0.1,
        total_seconds=0.2,
        input_tokens=1,
        output_tokens=1,
        cost_usd=0.0,
        status="ok",
        error_category=None,
        retries=0,
        temperature=0.7,
        prompt_version="p",
        input_text="mail jane@example.com",
        output_text="I will write to jane@example.com",
    )
    values.update(overrides)
    return LLMCall(**values)  # type: ignore[arg-type]  # field values built in a dict


def test_redact_call_redacts_input_and_output_when_enabled() -> None:
    redacted = redact_call(_call(), enabled=True)
    assert redacted.input_text == "mail [EMAIL]"
    assert redacted.output_text == "I will write to [EMAIL]"
    assert redacted.correlation_id == "c1"


def test_redact_call_keeps_text_when_disabled() -> None:
    call = _call()
    assert redact_call(call, enabled=False) is call
