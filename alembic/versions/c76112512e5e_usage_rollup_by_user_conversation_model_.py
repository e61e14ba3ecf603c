"""usage rollup by user, conversation, model and prompt version

``llm_usage_hourly`` holds per-hour spend per key of each dimension ("user" is the
browser's owner key, a keyed hash), kept by the recorder in the same transaction as
the rows; /api/usage and the monitor's "Top spenders" read it. Existing rows are
rolled up here, so the figures cover the history already recorded.

Revision ID: c76112512e5e
Revises: b2e4f6a8c0d1
Create Date: 2026-12-01 23:31:05.806684

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "c76112512e5e"
down_revision: str | Sequence[str] | None = "b2e4f6a8c0d1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DIMENSIONS = {
    "user": "session_id",
    "conversation": "conversation_id",
    "model": "model",
    "prompt_version": "prompt_version",
}


def _epoch_hour(dialect: str) -> str:
    if dialect == "sqlite":
        return "CAST(strftime('%s', started_at) AS INTEGER) / 3600"
    return "CAST(FLOOR(EXTRACT(EPOCH FROM started_at)) AS BIGINT) / 3600"


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "llm_usage_hourly",
        sa.Column("dimension", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("tokens_input", sa.Integer(), nullable=False),
        sa.Column("tokens_output", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("unpriced", sa.Integer(), nullable=False),
        sa.Column("feedback_up", sa.Integer(), nullable=False),
        sa.Column("feedback_down", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("dimension", "hour", "key"),
        sqlite_with_rowid=False,
    )
    hour = _epoch_hour(op.get_bind().dialect.name)
    for dimension, column in _DIMENSIONS.items():
        op.execute(
            "INSERT INTO llm_usage_hourly (dimension, hour, key, requests, errors, "
            "tokens_input, tokens_output, cost_usd, unpriced, feedback_up, feedback_down) "
            f"SELECT '{dimension}', {hour}, COALESCE({column}, ''), COUNT(*), "
            "SUM(CASE WHEN status IN ('error', 'interrupted') THEN 1 ELSE 0 END), "
            "COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0), "
            "COALESCE(SUM(cost_usd), 0.0), SUM(CASE WHEN priced THEN 0 ELSE 1 END), "
            "SUM(CASE WHEN feedback = 1 THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN feedback = -1 THEN 1 ELSE 0 END) "
            f"FROM llm_request GROUP BY {hour}, COALESCE({column}, '')"
        )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("llm_usage_hourly")
