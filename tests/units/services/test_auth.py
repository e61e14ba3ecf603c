"""Passwords, user lists, gates, signed sessions and the post-login redirect."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from chatmon.services import auth
from chatmon.states.auth import safe_next

FAST = 1000  # PBKDF2 rounds for tests


def test_hashed_password_verifies_only_itself() -> None:
    encoded = auth.hash_password("correct horse", iterations=FAST)
    assert auth.verify_password("correct horse", encoded)
    assert not auth.verify_password("correct hors", encoded)
    assert "correct horse" not in encoded


@pytest.mark.parametrize(
    "broken",
    ["", "plain", "md5$1$a$b", "pbkdf2_sha256$x$a$b", "pbkdf2_sha256$10$salt$\u00e9\u00e9"],
)
def test_malformed_hash_never_verifies(broken: str) -> None:
    assert not auth.verify_password("anything", broken)


def test_users_list_parses_and_rejects_plain_passwords() -> None:
    alice = auth.hash_password("a", iterations=FAST)
    bob = auth.hash_password("b", iterations=FAST)
    assert auth.parse_users(f"alice:{alice}, bob:{bob}") == {"alice": alice, "bob": bob}
    with pytest.raises(ValueError, match="user:pbkdf2_sha256"):
        auth.parse_users("alice:hunter2")


def test_gate_with_users_and_shared_password() -> None:
    gate = auth.Gate(password="shared", users={"alice": auth.hash_password("a", iterations=FAST)})
    assert gate.enabled
    assert gate.check("alice", "a") == "alice"
    assert gate.check("alice", "wrong") is None
    assert gate.check("", "shared") == auth.DEFAULT_MONITOR_USER
    assert gate.check("carol", "shared") == "carol"
    assert not auth.Gate().enabled


def test_named_user_cannot_sign_in_with_the_shared_password() -> None:
    gate = auth.Gate(password="shared", users={"alice": auth.hash_password("a", iterations=FAST)})
    assert gate.check("alice", "shared") is None


def test_closed_gate_without_credentials_admits_nobody() -> None:
    gate = auth.Gate(closed=True)
    assert gate.enabled
    assert gate.check("", "") is None
    assert gate.check("admin", "anything") is None


def test_generated_password_hash_opens_the_gate() -> None:
    gate = auth.Gate(password_hash=auth.hash_password("generated", iterations=FAST), closed=True)
    assert gate.check("", "generated") == auth.DEFAULT_MONITOR_USER
    assert gate.check("ops", "generated") == "ops"
    assert gate.check("", "guess") is None


def _count_pbkdf2(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = hashlib.pbkdf2_hmac

    def counting(name: str, password: bytes, salt: bytes, rounds: int, *args: object) -> bytes:
        calls.append(rounds)
        return real(name, password, salt, rounds, *args)

    monkeypatch.setattr(auth.hashlib, "pbkdf2_hmac", counting)
    return calls


@pytest.mark.parametrize(
    "gate_kind",
    ["users", "users_and_shared", "generated"],
)
def test_unknown_user_costs_the_same_pbkdf2_as_a_known_one(
    monkeypatch: pytest.MonkeyPatch, gate_kind: str
) -> None:
    users = {"alice": auth.hash_password("a", iterations=5000)}
    gate = {
        "users": auth.Gate(users=users),
        "users_and_shared": auth.Gate(users=users, password="shared"),
        "generated": auth.Gate(password_hash=auth.hash_password("g", iterations=5000)),
    }[gate_kind]
    calls = _count_pbkdf2(monkeypatch)
    gate.check("alice", "wrong")
    known = list(calls)
    calls.clear()
    gate.check("nobody-has-this-name", "wrong")
    assert known == calls == [5000]


def test_fingerprint_changes_with_the_credential_and_the_key() -> None:
    alice = auth.hash_password("a", iterations=FAST)
    gate = auth.Gate(users={"alice": alice}, key=b"k" * 32)
    assert gate.fingerprint("alice") == auth.Gate(
        users={"alice": alice}, key=b"k" * 32
    ).fingerprint("alice")
    assert gate.fingerprint("alice") != auth.Gate(
        users={"alice": auth.hash_password("a", iterations=FAST)}, key=b"k" * 32
    ).fingerprint("alice")
    assert gate.fingerprint("alice") != auth.Gate(
        users={"alice": alice}, key=b"j" * 32
    ).fingerprint("alice")
    assert gate.fingerprint("bob") is None
    assert "a" not in (auth.Gate(password="a", key=b"k").fingerprint("x") or "a")


def test_session_token_round_trip_and_scope() -> None:
    signer = auth.SessionSigner(b"k" * 32)
    token = signer.issue(user="alice", scope="monitor")
    assert signer.verify(token, scope="monitor") == "alice"
    assert signer.verify(token, scope="chat") is None
    assert auth.SessionSigner(b"other-key" * 4).verify(token, scope="monitor") is None


def test_tampered_or_expired_token_is_refused() -> None:
    signer = auth.SessionSigner(b"k" * 32)
    token = signer.issue(user="alice", scope="monitor")
    body, _, signature = token.partition(".")
    forged = signer.issue(user="mallory", scope="monitor").partition(".")[0] + "." + signature
    assert signer.verify(forged, scope="monitor") is None
    assert signer.verify(body + ".", scope="monitor") is None
    assert signer.verify("", scope="monitor") is None
    expired = signer.issue(user="alice", scope="monitor", ttl=-1)
    assert signer.verify(expired, scope="monitor") is None


def _signed(signer: auth.SessionSigner, payload: object) -> str:
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    return f"{body}.{signer._sign(body)}"


@pytest.mark.parametrize(
    "token",
    ["\u00e9t\u00e9.sig", "abc.\u00e9", "\x00\x01", "a" * 5000, ".", "x.y.z", "not base64!.x"],
)
def test_malformed_tokens_are_simply_invalid(token: str) -> None:
    assert auth.SessionSigner(b"k" * 32).verify(token, scope="monitor") is None


@pytest.mark.parametrize(
    "payload",
    [
        [1, 2],
        "text",
        {"u": 1, "s": "monitor", "e": 9999999999},
        {"u": "a", "s": "monitor", "e": "soon"},
        {"u": "a", "s": "monitor"},
        {"u": "a", "s": "monitor", "e": 9999999999, "c": 5},
    ],
)
def test_signed_but_ill_typed_payloads_are_invalid(payload: object) -> None:
    signer = auth.SessionSigner(b"k" * 32)
    assert signer.verify(_signed(signer, payload), scope="monitor") is None


def test_session_ends_when_the_user_is_removed_or_the_password_changes() -> None:
    signer = auth.SessionSigner(b"k" * 32)
    alice = auth.hash_password("a", iterations=FAST)
    gate = auth.Gate(
        users={"alice": alice, "bob": auth.hash_password("b", iterations=FAST)}, key=b"k" * 32
    )
    token = signer.issue(user="alice", scope="monitor", credential=gate.fingerprint("alice") or "")
    assert auth.session_user(signer, gate, token, scope="monitor") == "alice"
    removed = auth.Gate(users={"bob": gate.users["bob"]}, key=b"k" * 32)  # type: ignore[index]  # the test gate has users
    assert auth.session_user(signer, removed, token, scope="monitor") is None
    changed = auth.Gate(users={"alice": auth.hash_password("new", iterations=FAST)}, key=b"k" * 32)
    assert auth.session_user(signer, changed, token, scope="monitor") is None
    assert auth.session_user(signer, gate, token, scope="chat") is None


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("/monitor", "/monitor"),
        ("/", "/"),
        ("/?conversation=abc123", "/?conversation=abc123"),
        ("/monitor?window=1h%2024h", "/monitor?window=1h%2024h"),
        (None, "/monitor"),
        ("", "/monitor"),
        ("monitor", "/monitor"),
        ("https://evil.example", "/monitor"),
        ("//evil.example", "/monitor"),
        ("///evil.example", "/monitor"),
        ("/\\evil", "/monitor"),
        ("/\\/evil", "/monitor"),
        ("\\\\evil", "/monitor"),
        ("/\t/evil", "/monitor"),
        ("/\n/evil", "/monitor"),
        ("/\r\nLocation: https://evil", "/monitor"),
        (" /monitor", "/monitor"),
        ("/%2F%2Fevil", "/monitor"),
        ("/%2f/evil", "/monitor"),
        ("%2F%2Fevil", "/monitor"),
        ("/%5Cevil", "/monitor"),
        ("/%5c%5cevil", "/monitor"),
        ("/%09/evil", "/monitor"),
        ("/%0d%0a/evil", "/monitor"),
        ("/%00", "/monitor"),
        ("/%252F%252Fevil", "/monitor"),
        ("/%25252F%25252Fevil", "/monitor"),
        ("/\u2215\u2215evil", "/monitor"),
        ("/\uff0f\uff0fevil", "/monitor"),
        ("/%C2%85evil", "/monitor"),
        ("/" + "a" * 3000, "/monitor"),
    ],
)
def test_login_redirect_stays_on_this_site(given: str | None, expected: str) -> None:
    assert safe_next(given) == expected
