"""message branches: alternatives of a reply or an edited question

Each message follows ``parent_id`` (the message before it); messages with the same
parent are alternatives, ``active`` marks the one shown. Existing conversations become
one straight branch: each message's parent is the message written before it.

A downgrade drops both columns: the alternatives then read as ordinary messages in the
order they were written.

Revision ID: e5b8c2d7a913
Revises: e5b8c2d4f6a1
Create Date: 2026-12-02 04:40:00

"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "e5b8c2d7a913"
down_revision: str | Sequence[str] | None = "e5b8c2d4f6a1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("chatmessage") as batch:
        batch.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch.create_index(batch.f("ix_chatmessage_parent_id"), ["parent_id"], unique=False)
    op.execute(
        "UPDATE chatmessage SET parent_id = ("
        " SELECT MAX(earlier.id) FROM chatmessage AS earlier"
        " WHERE earlier.conversation_id = chatmessage.conversation_id"
        " AND earlier.id < chatmessage.id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("chatmessage") as batch:
        batch.drop_index(batch.f("ix_chatmessage_parent_id"))
        batch.drop_column("active")
        batch.drop_column("parent_id")
