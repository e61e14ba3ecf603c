"""request rollups in key order

The hourly rollup tables are rebuilt with their rows stored in primary-key order on
SQLite (WITHOUT ROWID), and the latency histogram is keyed (metric, model, hour, bin)
and gains "all models" rows (model "*"): a window's histogram is then one contiguous
key range of one row per hour and bin, whatever the number of models, which is what
keeps the monitor's 7-day figures fast at millions of requests. Autogenerate sees
neither storage option nor key order, hence a hand-written revision.

Revision ID: c51c824dd5fb
Revises: e77da4311e15
Create Date: 2026-11-26 12:24:03.980134

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "c51c824dd5fb"
down_revision: str | Sequence[str] | None = "e77da4311e15"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HOURLY_COLUMNS = (
    "hour, model, status, error_category, requests, tokens_input, tokens_output, cost_usd,"
    " unpriced, retries, feedback_up, feedback_down"
)
LATENCY_COLUMNS = "metric, hour, bin, model, count"


def _hourly(rowid: bool) -> None:
    op.create_table(
        "llm_request_hourly",
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("model", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("error_category", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("tokens_input", sa.Integer(), nullable=False),
        sa.Column("tokens_output", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("unpriced", sa.Integer(), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("feedback_up", sa.Integer(), nullable=False),
        sa.Column("feedback_down", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("hour", "model", "status", "error_category"),
        sqlite_with_rowid=rowid,
    )


def _latency(*, rowid: bool, key: tuple[str, ...]) -> None:
    columns = {
        "metric": sa.Column("metric", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        "hour": sa.Column("hour", sa.Integer(), nullable=False),
        "bin": sa.Column("bin", sa.Integer(), nullable=False),
        "model": sa.Column("model", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    }
    op.create_table(
        "llm_latency_hourly",
        *(columns[name] for name in key),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(*key),
        sqlite_with_rowid=rowid,
    )


def _rebuild(table: str, columns: str, create) -> None:
    """Copy ``table`` aside, recreate it with ``create``, copy the rows back."""
    op.execute(f"CREATE TABLE {table}_copy AS SELECT {columns} FROM {table}")
    op.drop_table(table)
    create()
    op.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {table}_copy")
    op.drop_table(f"{table}_copy")


ALL_MODELS = "*"


def upgrade() -> None:
    """Upgrade schema."""
    _rebuild("llm_request_hourly", HOURLY_COLUMNS, lambda: _hourly(rowid=False))
    _rebuild(
        "llm_latency_hourly",
        LATENCY_COLUMNS,
        lambda: _latency(rowid=False, key=("metric", "model", "hour", "bin")),
    )
    op.execute(
        f"INSERT INTO llm_latency_hourly ({LATENCY_COLUMNS})"
        f" SELECT metric, hour, bin, '{ALL_MODELS}', SUM(count) FROM llm_latency_hourly"
        " GROUP BY metric, hour, bin"
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.execute(f"DELETE FROM llm_latency_hourly WHERE model = '{ALL_MODELS}'")
    _rebuild("llm_request_hourly", HOURLY_COLUMNS, lambda: _hourly(rowid=True))
    _rebuild(
        "llm_latency_hourly",
        LATENCY_COLUMNS,
        lambda: _latency(rowid=True, key=("hour", "model", "metric", "bin")),
    )
