"""The daily usage rollup migration (f3b9d2c6a0e4) sums the hourly rows already
recorded into days, on SQLite and PostgreSQL, and comes off again."""

from __future__ import annotations

from alembic.config import Config
from sqlalchemy import Engine, create_engine, inspect, text

from alembic import command
from chatmon.migrate import alembic_config

REVISION = "f3b9d2c6a0e4"
PREVIOUS = "f3b7d2a9c4e8"
_INSERT = text(
    "INSERT INTO llm_usage_hourly (dimension, hour, key, requests, errors, tokens_input,"
    " tokens_output, cost_usd, unpriced, feedback_up, feedback_down)"
    " VALUES (:dimension, :hour, :key, :requests, 0, 10, 20, :cost, 0, :up, 0)"
)


def test_daily_rollup_is_backfilled_from_the_hours(db_url: str) -> None:
    config = alembic_config(db_url)  # db_url is at head (PostgreSQL: shared, emptied)
    command.downgrade(config, PREVIOUS)
    engine = create_engine(db_url)
    try:
        _backfill_then_downgrade(config, engine)
    finally:
        command.upgrade(config, "head")  # whatever happened: the next test's schema
    try:
        assert "llm_usage_daily" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def _backfill_then_downgrade(config: Config, engine: Engine) -> None:
    assert "llm_usage_daily" not in inspect(engine).get_table_names()
    day = 20_000  # 2024-10-04, in whole days since the epoch
    with engine.begin() as connection:
        for hour, key, requests, cost, up in (
            (day * 24, "u1", 2, 0.5, 1),
            (day * 24 + 23, "u1", 1, 0.25, 0),
            (day * 24 + 24, "u1", 4, 1.0, 0),  # the next day
            (day * 24 + 5, "u2", 3, 0.125, 2),
        ):
            connection.execute(
                _INSERT,
                {"dimension": "user", "hour": hour, "key": key, "requests": requests,
                 "cost": cost, "up": up},
            )  # fmt: skip
    command.upgrade(config, REVISION)
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT dimension, day, key, requests, tokens_input, cost_usd, feedback_up"
                " FROM llm_usage_daily ORDER BY day, key"
            )
        ).all()
    assert [tuple(row) for row in rows] == [
        ("user", day, "u1", 3, 20, 0.75, 1),
        ("user", day, "u2", 3, 10, 0.125, 2),
        ("user", day + 1, "u1", 4, 10, 1.0, 0),
    ]
    command.downgrade(config, PREVIOUS)
    assert "llm_usage_daily" not in inspect(engine).get_table_names()
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM llm_usage_hourly")).scalar() == 4
