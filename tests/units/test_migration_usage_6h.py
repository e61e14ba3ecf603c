"""The 6-hour usage rollup migration (a4c8e1f6b2d9) sums the hourly rows already
recorded into blocks, on SQLite and PostgreSQL, and comes off again."""

from __future__ import annotations

from alembic.config import Config
from sqlalchemy import Engine, create_engine, inspect, text

from alembic import command
from chatmon.migrate import alembic_config

REVISION = "a4c8e1f6b2d9"
PREVIOUS = "f3b9d2c6a0e4"
_INSERT = text(
    "INSERT INTO llm_usage_hourly (dimension, hour, key, requests, errors, tokens_input,"
    " tokens_output, cost_usd, unpriced, feedback_up, feedback_down)"
    " VALUES (:dimension, :hour, :key, :requests, 0, 10, 20, :cost, 0, :up, 0)"
)


def test_block_rollup_is_backfilled_from_the_hours(db_url: str) -> None:
    config = alembic_config(db_url)  # db_url is at head (PostgreSQL: shared, emptied)
    command.downgrade(config, PREVIOUS)
    engine = create_engine(db_url)
    try:
        _backfill_then_downgrade(config, engine)
    finally:
        command.upgrade(config, "head")  # whatever happened: the next test's schema
    try:
        assert "llm_usage_6h" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def _backfill_then_downgrade(config: Config, engine: Engine) -> None:
    assert "llm_usage_6h" not in inspect(engine).get_table_names()
    block = 80_000  # 2024-10-04 00:00 UTC, in 6-hour blocks since the epoch
    with engine.begin() as connection:
        for hour, key, requests, cost, up in (
            (block * 6, "u1", 2, 0.5, 1),
            (block * 6 + 5, "u1", 1, 0.25, 0),  # the same block's last hour
            (block * 6 + 6, "u1", 4, 1.0, 0),  # the next block
            (block * 6 + 3, "u2", 3, 0.125, 2),
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
                "SELECT dimension, block, key, requests, tokens_input, cost_usd, feedback_up"
                " FROM llm_usage_6h ORDER BY block, key"
            )
        ).all()
    assert [tuple(row) for row in rows] == [
        ("user", block, "u1", 3, 20, 0.75, 1),
        ("user", block, "u2", 3, 10, 0.125, 2),
        ("user", block + 1, "u1", 4, 10, 1.0, 0),
    ]
    command.downgrade(config, PREVIOUS)
    assert "llm_usage_6h" not in inspect(engine).get_table_names()
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM llm_usage_hourly")).scalar() == 4
