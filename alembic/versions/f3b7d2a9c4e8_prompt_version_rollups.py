"""prompt-version rollups for the before/after comparisons

``llm_version_hourly`` holds per (hour, prompt version, model) the counts a change's
side needs (requests, errors, ratings, implicitly flagged requests, and the count, sum
and sum of squares of known costs); ``llm_version_latency_hourly`` the latency-bin
histogram of the same key. The recorder keeps both in step with ``llm_request`` (rows,
ratings and implicit flags, in the same transaction); existing rows are rolled up here
(probe requests excepted), so /api/versions covers the history already recorded.

Revision ID: f3b7d2a9c4e8
Revises: e6c2a9d4b7f1
Create Date: 2026-12-02 13:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "f3b7d2a9c4e8"
down_revision: str | Sequence[str] | None = "e6c2a9d4b7f1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KNOWN_COST = "cost_usd IS NOT NULL AND priced"


def _epoch_hour(dialect: str) -> str:
    if dialect == "sqlite":
        return "CAST(strftime('%s', started_at) AS INTEGER) / 3600"
    return "CAST(FLOOR(EXTRACT(EPOCH FROM started_at)) AS BIGINT) / 3600"


def _key_columns() -> list[sa.Column]:
    return [
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("prompt_version", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("model", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "llm_version_hourly",
        *_key_columns(),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("feedback_up", sa.Integer(), nullable=False),
        sa.Column("feedback_down", sa.Integer(), nullable=False),
        sa.Column("flagged", sa.Integer(), nullable=False),
        sa.Column("costed", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("cost_squares", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("hour", "prompt_version", "model"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "llm_version_latency_hourly",
        *_key_columns(),
        sa.Column("bin", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("hour", "prompt_version", "model", "bin"),
        sqlite_with_rowid=False,
    )
    hour = _epoch_hour(op.get_bind().dialect.name)
    op.execute(
        "INSERT INTO llm_version_hourly (hour, prompt_version, model, requests, errors,"
        " feedback_up, feedback_down, flagged, costed, cost_usd, cost_squares)"
        f" SELECT {hour}, prompt_version, model, COUNT(*),"
        " SUM(CASE WHEN status IN ('error', 'interrupted') THEN 1 ELSE 0 END),"
        " SUM(CASE WHEN feedback = 1 THEN 1 ELSE 0 END),"
        " SUM(CASE WHEN feedback = -1 THEN 1 ELSE 0 END),"
        " SUM(CASE WHEN implicit_flags != 0 THEN 1 ELSE 0 END),"
        f" SUM(CASE WHEN {_KNOWN_COST} THEN 1 ELSE 0 END),"
        f" COALESCE(SUM(CASE WHEN {_KNOWN_COST} THEN cost_usd ELSE 0.0 END), 0.0),"
        f" COALESCE(SUM(CASE WHEN {_KNOWN_COST} THEN cost_usd * cost_usd ELSE 0.0 END), 0.0)"
        f" FROM llm_request WHERE NOT synthetic GROUP BY {hour}, prompt_version, model"
    )
    op.execute(
        "INSERT INTO llm_version_latency_hourly (hour, prompt_version, model, bin, count)"
        f" SELECT {hour}, prompt_version, model, latency_bin, COUNT(*) FROM llm_request"
        " WHERE NOT synthetic AND latency_bin IS NOT NULL"
        f" GROUP BY {hour}, prompt_version, model, latency_bin"
    )


def downgrade() -> None:
    op.drop_table("llm_version_latency_hourly")
    op.drop_table("llm_version_hourly")
