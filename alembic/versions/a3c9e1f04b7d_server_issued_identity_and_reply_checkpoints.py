"""server-issued identity and reply checkpoints

Conversations were owned by a random id the browser kept in localStorage, and the
request log's ``session_id`` held the same value, so anyone who saw an export could
present it as their own. Both columns now hold one-way hashes: existing values become
``legacy_<sha256>`` (``chatmon.services.identity.legacy_owner_key``), which a browser
still presenting its old id can claim once; new rows hold keyed owner keys.

Chat messages gain ``status`` and ``updated_at``: a reply is saved while it streams
(checkpoints), so a reply whose worker died is kept and marked interrupted.

Revision ID: a3c9e1f04b7d
Revises: a7d3c9e2f410
Create Date: 2026-12-01 20:10:00.000000

"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "a3c9e1f04b7d"
down_revision: str | Sequence[str] | None = "a7d3c9e2f410"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEGACY_PREFIX = "legacy_"


def _legacy_key(value: str) -> str:
    # the same as chatmon.services.identity.legacy_owner_key (kept here: a revision
    # must not change when the application code does)
    return LEGACY_PREFIX + hashlib.sha256(value.encode()).hexdigest()[:32]


def _hash_column(table: str, column: str) -> None:
    """Replace every raw id in ``table.column`` by its legacy hash (distinct values only)."""
    connection = op.get_bind()
    values = (
        connection.execute(sa.text(f"SELECT DISTINCT {column} FROM {table} WHERE {column} <> ''"))
        .scalars()
        .all()
    )
    update = sa.text(f"UPDATE {table} SET {column} = :new WHERE {column} = :old")
    for value in values:
        if value.startswith((LEGACY_PREFIX, "b_")):
            continue
        connection.execute(update, {"new": _legacy_key(value), "old": value})


def upgrade() -> None:
    with op.batch_alter_table("chatmessage") as batch:
        batch.add_column(
            sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True)
        )
        batch.add_column(
            sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
    _hash_column("conversation", "owner_id")
    _hash_column("llm_request", "session_id")


def downgrade() -> None:
    # The raw ids are gone by design (one-way hashes); only the columns come back out.
    with op.batch_alter_table("chatmessage") as batch:
        batch.drop_column("updated_at")
        batch.drop_column("status")
