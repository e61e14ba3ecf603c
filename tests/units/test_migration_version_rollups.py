"""The prompt-version rollups migration (f3b7d2a9c4e8) creates both tables, rolls up
the requests already recorded (probes excepted) exactly as the recorder would have, and
downgrades cleanly, on SQLite and on a PostgreSQL database of the test's own."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, make_url, text
from sqlmodel import Session

from alembic import command
from chatmon.migrate import alembic_config
from chatmon.services import version_rollup
from tests.services import postgres_admin_url

REVISION = "f3b7d2a9c4e8"
PREVIOUS = "e6c2a9d4b7f1"
TABLES = {"llm_version_hourly", "llm_version_latency_hourly"}
AT = datetime(2026, 11, 20, 12, 5, tzinfo=UTC)  # epoch hour 493164
LATER = datetime(2026, 11, 20, 13, 59, tzinfo=UTC)
# correlation id, started, model, status, cost, priced, feedback, flags, latency bin, synthetic
ROWS = (
    ("c1", AT, "m", "ok", 0.002, 1, 1, 0, 40, 0),
    ("c2", AT, "m", "error", None, 1, -1, 8, 60, 0),
    ("c3", AT, "m", "cancelled", 0.004, 1, None, 1, None, 0),
    ("c4", AT, "u", "interrupted", None, 0, None, 0, None, 0),
    ("c5", AT, "m", "ok", 0.5, 1, -1, 2, 40, 1),  # a probe: in no rollup
    ("c6", LATER, "m", "ok", 0.003, 1, None, 0, 41, 0),
)


def _tables(connection: object) -> dict[str, list[tuple[object, ...]]]:
    run = connection.execute  # type: ignore[attr-defined]
    return {
        "counts": [
            tuple(row) for row in run(text("SELECT * FROM llm_version_hourly ORDER BY hour, model"))
        ],
        "bins": [
            tuple(row)
            for row in run(
                text("SELECT * FROM llm_version_latency_hourly ORDER BY hour, model, bin")
            )
        ],
    }


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file, or a PostgreSQL database created for the test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.db'}"
        return
    name = f"chatmon_migration_{os.getpid()}"
    admin = create_engine(postgres_admin_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(postgres_admin_url()).set(database=name)
    yield url.render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_version_rollups_are_created_backfilled_and_dropped(empty_url: str) -> None:
    url = empty_url
    config = alembic_config(url)
    command.upgrade(config, PREVIOUS)
    engine = create_engine(url)
    with engine.begin() as connection:
        for cid, started, model, status, cost, priced, feedback, flags, bin_, synthetic in ROWS:
            connection.execute(
                text(
                    "INSERT INTO llm_request (correlation_id, session_id, conversation_id,"
                    " model, started_at, latency_seconds, cost_usd, priced, status, retries,"
                    " temperature, prompt_version, feedback, implicit_flags, latency_bin,"
                    " synthetic, fallback) VALUES (:cid, '', '', :model, :at, 1.0, :cost,"
                    " :priced, :status, 0, 0.7, 'v1', :feedback, :flags, :bin, :synthetic,"
                    " :fallback)"
                ),
                {
                    "cid": cid,
                    "model": model,
                    "at": started,
                    "cost": cost,
                    "priced": bool(priced),
                    "status": status,
                    "feedback": feedback,
                    "flags": flags,
                    "bin": bin_,
                    "synthetic": bool(synthetic),
                    "fallback": False,
                },
            )
    command.upgrade(config, REVISION)
    assert set(inspect(engine).get_table_names()) >= TABLES
    with engine.connect() as connection:
        migrated = _tables(connection)
    hour = int(AT.timestamp()) // 3600
    # hour, version, model, requests, errors, up, down, flagged, costed, cost, squares
    assert migrated["counts"] == [
        (hour, "v1", "m", 3, 1, 1, 1, 2, 2, 0.006, 0.002**2 + 0.004**2),
        (hour, "v1", "u", 1, 1, 0, 0, 0, 0, 0.0, 0.0),
        (hour + 1, "v1", "m", 1, 0, 0, 0, 0, 1, 0.003, 0.003**2),
    ]
    assert migrated["bins"] == [
        (hour, "v1", "m", 40, 1),
        (hour, "v1", "m", 60, 1),
        (hour + 1, "v1", "m", 41, 1),
    ]
    with Session(engine) as session:  # what the recorder's rebuild computes
        version_rollup.rebuild(session)
        session.commit()
    with engine.connect() as connection:
        assert _tables(connection) == migrated
    command.downgrade(config, PREVIOUS)
    assert not TABLES & set(inspect(engine).get_table_names())
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM llm_request")).scalar() == 6
    command.upgrade(config, "head")
    assert set(inspect(engine).get_table_names()) >= TABLES
    engine.dispose()
