"""Caps on text: a long text is cut with a marker, and a cut never leaves part of a secret."""

from __future__ import annotations

from chatmon.services.limits import socket_max_message_chars, truncate
from chatmon.services.redaction import pii_spans, redact
from chatmon.services.secrets import bounded, mask_secrets, register_secret_values

CONFIGURED_SECRET = "cfg-secret-9f8e7d6c5b4a"


def test_text_within_the_limit_is_returned_as_is() -> None:
    assert truncate("x" * 100, 100) == "x" * 100


def test_long_text_keeps_its_head_and_says_how_much_was_cut() -> None:
    assert truncate("a" * 10 + "b" * 90, 10) == "a" * 10 + "…[truncated 90 chars]"


def test_cut_moves_back_to_the_start_of_a_protected_span() -> None:
    text = "x" * 95 + "SECRET" + "y" * 100

    def secret(window: str) -> list[tuple[int, int]]:
        return [(window.find("SECRET"), window.find("SECRET") + len("SECRET"))]

    cut = truncate(text, 98, protect=secret)
    assert cut == "x" * 95 + "…[truncated 106 chars]"


def test_a_key_across_the_cut_is_not_left_half_unmasked() -> None:
    text = "a" * 16_380 + " sk-proj-abcdefghijklmnop more"
    masked = mask_secrets(text, max_chars=16_384)  # the cut falls 3 characters into the key
    assert "sk-p" not in masked and "abcdef" not in masked
    assert masked.startswith("a" * 16_380) and "…[truncated" in masked


def test_a_configured_secret_across_the_cut_is_not_left_half_unmasked() -> None:
    register_secret_values([CONFIGURED_SECRET])
    text = "b" * 1_000 + CONFIGURED_SECRET + "c" * 1_000
    masked = mask_secrets(text, max_chars=1_010)
    assert "cfg-secret" not in masked and "9f8e7d" not in masked


def test_pii_across_the_cut_is_dropped_whole_not_left_in_part() -> None:
    text = "d " * 500 + "card 4111 1111 1111 1111 and more"
    kept = redact(bounded(text, 1_012, also=pii_spans))  # the cut falls inside the card
    assert "4111" not in kept and "1111" not in kept
    assert kept.endswith("card …[truncated 28 chars]")


def test_socket_holds_a_maximum_message_of_escaped_characters() -> None:
    assert socket_max_message_chars(16_000) >= 16_000 * 6 + 10_000
