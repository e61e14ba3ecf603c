"""usage rollup per 6 hours

``llm_usage_6h`` holds ``llm_usage_hourly`` summed per 6-hour block (``block`` = hour
// 6), kept in step by the same writes as the days; /api/usage reads the edge of a
window that starts mid-day from at most two blocks and three hours instead of up to
twelve hours. The blocks of the hourly rows already recorded are summed here.

Revision ID: a4c8e1f6b2d9
Revises: f3b9d2c6a0e4
Create Date: 2026-12-02 17:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "a4c8e1f6b2d9"
down_revision: str | Sequence[str] | None = "f3b9d2c6a0e4"
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
        "llm_usage_6h",
        sa.Column("dimension", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("block", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("tokens_input", sa.Integer(), nullable=False),
        sa.Column("tokens_output", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("unpriced", sa.Integer(), nullable=False),
        sa.Column("feedback_up", sa.Integer(), nullable=False),
        sa.Column("feedback_down", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("dimension", "block", "key"),
        sqlite_with_rowid=False,
    )
    sums = ", ".join(f"SUM({name})" for name in _COUNTERS)
    op.execute(  # hour and 6 are integers: integer division on both databases
        f"INSERT INTO llm_usage_6h (dimension, block, key, {', '.join(_COUNTERS)}) "
        f"SELECT dimension, hour / 6, key, {sums} FROM llm_usage_hourly "
        "GROUP BY dimension, hour / 6, key"
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("llm_usage_6h")
