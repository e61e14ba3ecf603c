"""Passwords, user lists and signed sessions."""

from __future__ import annotations


import pytest

from chatmon.services import auth
from chatmon.states.auth import safe_next


def test_hashed_password_verifies_only_itself() -> None:
    encoded = auth.hash_password("correct horse", iterations=1000)
    assert auth.verify_password("correct horse", encoded)
    assert not auth.verify_password("correct hors", encoded)
    assert "correct horse" not in encoded


@pytest.mark.parametrize("broken", ["", "plain", "md5$1$a$b", "pbkdf2_sha256$x$a$b"])
def test_malformed_hash_never_verifies(broken: str) -> None:
    assert not auth.verify_password("anything", broken)


def test_users_list_parses_and_rejects_plain_passwords() -> None:
    alice = auth.hash_password("a", iterations=1000)
    bob = auth.hash_password("b", iterations=1000)
    assert auth.parse_users(f"alice:{alice}, bob:{bob}") == {"alice": alice, "bob": bob}
    with pytest.raises(ValueError, match="user:pbkdf2_sha256"):
        auth.parse_users("alice:hunter2")


def test_gate_with_users_and_shared_password() -> None:
    gate = auth.Gate(password="shared", users={"alice": auth.hash_password("a", iterations=1000)})
    assert gate.enabled
    assert gate.check("alice", "a") == "alice"
    assert gate.check("alice", "wrong") is None
    assert gate.check("", "shared") == auth.DEFAULT_MONITOR_USER
    assert gate.check("carol", "shared") == "carol"
    assert not auth.Gate().enabled


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


@pytest.mark.parametrize(
    ("given", "expected"),
    [("/monitor", "/monitor"), ("/", "/"), (None, "/monitor"), ("https://evil.example", "/monitor"),
     ("//evil.example", "/monitor"), ("/\\evil", "/monitor")],
)
def test_login_redirect_stays_on_this_site(given: str | None, expected: str) -> None:
    assert safe_next(given) == expected
