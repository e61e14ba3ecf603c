"""Instance secrets and the generated monitor password (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from chatmon.models import InstanceSecret
from chatmon.services import auth, first_start, instance_secrets
from chatmon.settings import load_settings


@pytest.fixture(autouse=True)
def _no_secrets(engine: Engine) -> None:
    with Session(engine) as session:
        session.execute(delete(InstanceSecret))
        session.commit()


def test_get_or_create_keeps_the_first_value(session: Session) -> None:
    first, created = instance_secrets.get_or_create_secret(
        session=session, name="x", make=lambda: "one"
    )
    again, created_again = instance_secrets.get_or_create_secret(
        session=session, name="x", make=lambda: "two"
    )
    assert (first, created, again, created_again) == ("one", True, "one", False)


def test_racing_processes_agree_on_one_secret(engine: Engine) -> None:
    """Workers and instances starting at once: one creates, every one reads that value."""
    barrier = threading.Barrier(6)
    results: list[tuple[str, bool]] = []

    def start(n: int) -> None:
        with Session(engine) as session:
            barrier.wait()
            claimed = instance_secrets.claim_secret(session=session, name="race", value=f"v{n}")
            value = instance_secrets.read_secret(session=session, name="race")
            results.append((value or "", claimed))

    threads = [threading.Thread(target=start, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({value for value, _ in results}) == 1
    assert sum(claimed for _, claimed in results) == 1


def _settings(**overrides: object):
    return load_settings(**overrides)


def test_generated_password_is_returned_once_and_only_its_hash_stored(session: Session) -> None:
    settings = _settings()
    password = first_start.ensure_monitor_password(session=session, settings=settings)
    assert password and len(password) >= 20
    assert first_start.ensure_monitor_password(session=session, settings=settings) is None
    rows = session.execute(select(InstanceSecret.name, InstanceSecret.value)).all()
    assert [name for name, _ in rows] == [instance_secrets.MONITOR_PASSWORD_HASH]
    stored = rows[0][1]
    assert password not in stored and stored.startswith("pbkdf2_sha256$")
    assert auth.verify_password(password, stored)


@pytest.mark.parametrize(
    "overrides",
    [
        {"monitor_password": "a-configured-password"},
        {"monitor_auth": False},
        {"monitor_users": "alice:" + auth.hash_password("a", iterations=1000)},
    ],
)
def test_no_password_is_generated_when_one_is_configured_or_auth_is_off(
    session: Session, overrides: dict
) -> None:
    assert (
        first_start.ensure_monitor_password(session=session, settings=_settings(**overrides))
        is None
    )
    assert (
        instance_secrets.read_secret(session=session, name=instance_secrets.MONITOR_PASSWORD_HASH)
        is None
    )


def test_reset_replaces_the_hash(session: Session) -> None:
    old = first_start.ensure_monitor_password(session=session, settings=_settings())
    new = first_start.reset_monitor_password(session=session)
    stored = instance_secrets.read_secret(
        session=session, name=instance_secrets.MONITOR_PASSWORD_HASH
    )
    assert old != new
    assert auth.verify_password(new, stored or "") and not auth.verify_password(
        old or "", stored or ""
    )


def test_announcement_says_how_to_change_it() -> None:
    text = first_start.announcement("pw-123")
    assert "pw-123" in text
    assert "MONITOR_PASSWORD" in text and "reset-monitor-password" in text
