"""Point the access code (deps, access, middleware) at one Settings and a test database."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlmodel import Session

from chatmon import deps
from chatmon.models import InstanceSecret, LoginFailure
from chatmon.settings import Settings, load_settings

MODULES = ("chatmon.deps", "chatmon.access", "chatmon.middleware")

Configure = Callable[..., Settings]


def reset_deps() -> None:
    """Forget every cached access object (settings, secret, gates, guard)."""
    for cached in (deps.instance_secret, deps.chat_gate, deps.session_signer, deps.login_guard):
        cached.cache_clear()
    deps._monitor_gate = None


@pytest.fixture
def access_config(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Configure]:
    """``configure(**settings)``: the access code then runs with those settings on ``engine``."""
    with Session(engine) as session:
        session.execute(delete(InstanceSecret))
        session.execute(delete(LoginFailure))
        session.commit()
    monkeypatch.setattr("chatmon.deps.get_engine", lambda: engine)
    monkeypatch.setattr("chatmon.db.get_engine", lambda: engine)  # what /api reads (db.run)

    def configure(**overrides: object) -> Settings:
        settings = load_settings(**overrides)
        for module in MODULES:
            monkeypatch.setattr(f"{module}.get_settings", lambda: settings)
        reset_deps()
        return settings

    yield configure
    reset_deps()
