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

from sqlalchemy.engine import Engine  # noqa: E402
from sqlmodel import Session  # noqa: E402

from chatmon.db import make_engine  # noqa: E402
from chatmon.migrate import upgrade_head  # noqa: E402


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A migrated, empty SQLite database of this test's own."""
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
