"""prompt versions

Each system prompt version the chat served: its hash, first and last use, its text;
and an index for one version's requests of a window (the before/after comparisons).

Revision ID: e5b8c2d4f6a1
Revises: e5b8c2d7a9f1
Create Date: 2026-12-02 04:40:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "e5b8c2d4f6a1"
down_revision: str | Sequence[str] | None = "e5b8c2d7a9f1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "prompt_version",
        sa.Column("hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("first_seen", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_seen", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("text", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.PrimaryKeyConstraint("hash"),
    )
    op.create_index("ix_prompt_version_first_seen", "prompt_version", ["first_seen"])
    op.create_index("ix_prompt_version_last_seen", "prompt_version", ["last_seen"])
    with op.batch_alter_table("llm_request") as batch:
        batch.create_index(
            "ix_llm_request_prompt_version_started_at", ["prompt_version", "started_at"]
        )


def downgrade() -> None:
    with op.batch_alter_table("llm_request") as batch:
        batch.drop_index("ix_llm_request_prompt_version_started_at")
    op.drop_index("ix_prompt_version_last_seen", table_name="prompt_version")
    op.drop_index("ix_prompt_version_first_seen", table_name="prompt_version")
    op.drop_table("prompt_version")
