"""The prompt_version migration (e5b8c2d4f6a1) upgrades and downgrades on SQLite, and a
database that had requests before it keeps them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, inspect, text

from alembic import command
from chatmon.migrate import alembic_config

REVISION = "e5b8c2d4f6a1"
PREVIOUS = "e5b8c2d7a9f1"
INDEX = "ix_llm_request_prompt_version_started_at"


def test_prompt_version_table_comes_and_goes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    config = alembic_config(url)
    command.upgrade(config, PREVIOUS)
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO llm_request (correlation_id, session_id, conversation_id, model,"
                " started_at, latency_seconds, priced, status, retries, temperature,"
                " prompt_version) VALUES ('c1', '', '', 'm', :at, 1.0, 1, 'ok', 0, 0.7, 'v1')"
            ),
            {"at": datetime(2026, 1, 1, tzinfo=UTC)},
        )
    command.upgrade(config, REVISION)
    inspector = inspect(engine)
    assert "prompt_version" in inspector.get_table_names()
    assert {c["name"] for c in inspector.get_columns("prompt_version")} == {
        "hash",
        "first_seen",
        "last_seen",
        "text",
    }
    indexes = {index["name"] for index in inspector.get_indexes("prompt_version")}
    assert indexes == {"ix_prompt_version_first_seen", "ix_prompt_version_last_seen"}
    assert INDEX in {index["name"] for index in inspector.get_indexes("llm_request")}
    command.downgrade(config, PREVIOUS)
    assert "prompt_version" not in inspect(engine).get_table_names()
    assert INDEX not in {index["name"] for index in inspect(engine).get_indexes("llm_request")}
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM llm_request")).scalar() == 1
    command.upgrade(config, "head")
    assert "prompt_version" in inspect(engine).get_table_names()
    engine.dispose()
