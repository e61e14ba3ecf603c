"""usage rollup per day

``llm_usage_daily`` holds ``llm_usage_hourly`` summed per UTC day (``day`` = whole
days since the epoch), kept in step by the same writes; /api/usage reads a long window
by user or conversation from whole days instead of every hour. The days of the
hourly rows already recorded are summed here.

Revision ID: f3b9d2c6a0e4
Revises: f3b7d2a9c4e8
Create Date: 2026-12-02 12:40:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "f3b9d2c6a0e4"
down_revision: str | Sequence[str] | None = "f3b7d2a9c4e8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COUNTERS = (
    "requests",
    "errors",
    "tokens_input",
    "tokens_output",
    "cost_usd",
    "unpriced",
    "feedback_up",
    "feedback_down",
)


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "llm_usage_daily",
        sa.Column("dimension", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("tokens_input", sa.Integer(), nullable=False),
        sa.Column("tokens_output", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("unpriced", sa.Integer(), nullable=False),
        sa.Column("feedback_up", sa.Integer(), nullable=False),
        sa.Column("feedback_down", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("dimension", "day", "key"),
        sqlite_with_rowid=False,
    )
    sums = ", ".join(f"SUM({name})" for name in _COUNTERS)
    op.execute(  # hour and 24 are integers: integer division on both databases
        f"INSERT INTO llm_usage_daily (dimension, day, key, {', '.join(_COUNTERS)}) "
        f"SELECT dimension, hour / 24, key, {sums} FROM llm_usage_hourly "
        "GROUP BY dimension, hour / 24, key"
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("llm_usage_daily")
