"""Browser identity tokens: only what this server signed identifies a browser."""

from __future__ import annotations

import pytest

from chatmon.services.identity import IdentityIssuer, legacy_owner_key

SECRET = b"s" * 32


@pytest.fixture
def issuer() -> IdentityIssuer:
    return IdentityIssuer(SECRET)


def test_issued_token_verifies_and_hashes_to_a_stable_owner(issuer: IdentityIssuer) -> None:
    token = issuer.issue()
    browser_id = issuer.verify(token)
    assert browser_id is not None and browser_id in token
    owner = issuer.owner_of(token)
    assert owner == issuer.owner_of(token) == IdentityIssuer(SECRET).owner_of(token)
    assert owner is not None and owner.startswith("b_") and browser_id not in owner


def test_two_browsers_get_different_identities(issuer: IdentityIssuer) -> None:
    assert issuer.owner_of(issuer.issue()) != issuer.owner_of(issuer.issue())


@pytest.mark.parametrize(
    "forged",
    [
        "",
        "0123456789abcdef0123456789abcdef",  # a bare id, as localStorage used to hold
        "v1.0123456789abcdef0123456789abcdef.",  # no signature
        "v1.0123456789abcdef0123456789abcdef.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "v2.0123456789abcdef0123456789abcdef.sig",
        "v1.0123456789ABCDEF0123456789ABCDEF.sig",
        "v1.ünïcödé.sig",
        "v1." + "a" * 10_000,
    ],
)
def test_tokens_the_server_did_not_sign_identify_nobody(
    issuer: IdentityIssuer, forged: str
) -> None:
    assert issuer.verify(forged) is None
    assert issuer.owner_of(forged) is None


def test_a_tampered_id_or_another_servers_token_is_refused(issuer: IdentityIssuer) -> None:
    token = issuer.issue()
    version, browser_id, signature = token.split(".")
    other_id = ("0" if browser_id[0] != "0" else "1") + browser_id[1:]
    assert issuer.verify(f"{version}.{other_id}.{signature}") is None
    assert IdentityIssuer(b"another secret..").verify(token) is None


def test_owner_keys_depend_on_the_secret(issuer: IdentityIssuer) -> None:
    browser_id = "0123456789abcdef0123456789abcdef"
    assert issuer.owner_key(browser_id) != IdentityIssuer(b"t" * 32).owner_key(browser_id)


def test_legacy_owner_key_hashes_only_old_style_ids() -> None:
    old_id = "0123456789abcdef0123456789abcdef"
    key = legacy_owner_key(old_id)
    assert key is not None and key.startswith("legacy_") and old_id not in key
    assert legacy_owner_key(old_id) == key
    for junk in ("", "x" * 32, old_id + "0", {"$ne": ""}, 5):
        assert legacy_owner_key(junk) is None  # type: ignore[arg-type]  # a hostile payload
