"""Shared fixtures. Tests never read the developer's .env or chatmon.db."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Before anything imports chatmon: a throw-away database and the offline switches.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ["DATABASE_URL"] = "sqlite:///" + str(
    Path(os.environ.get("TMPDIR", "/tmp")) / f"chatmon-test-{os.getpid()}.db"
)
os.environ.pop("LLM_MODEL", None)

from sqlalchemy import create_engine, make_url, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, SQLModel

from chatmon import models  # noqa: F401  (every table on SQLModel.metadata)
from chatmon.db import make_engine
from chatmon.migrate import upgrade_head
from tests.services import postgres_admin_url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A migrated PostgreSQL database of this test session's own, dropped at the end.

    The server is the one tests/services.py finds (CHATMON_TEST_POSTGRES_URL, the running
    one when it accepts the tests' credentials, or a throwaway server of the session's own).
    """
    name = f"chatmon_test_{os.getpid()}"
    admin_url = postgres_admin_url()
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {admin_url}: {exc.__class__.__name__}")
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    upgrade_head(url)
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _empty_all_tables(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as connection:
        names = ", ".join(f'"{table.name}"' for table in SQLModel.metadata.sorted_tables)
        connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database of this test's own: SQLite, then PostgreSQL."""
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
        _empty_all_tables(url)
        return url
    url = f"sqlite:///{tmp_path / 'test.db'}"
    upgrade_head(url)
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on the test's database."""
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session that commits at the end of the test's block of work."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests last: Playwright's sync API keeps an event loop running on the main
    thread for the rest of the session, which async tests after it could not use."""
    items.sort(key=lambda item: "browser" in getattr(item, "fixturenames", ()))
