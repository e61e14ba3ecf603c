"""feedback reasons and comment

A rating may carry reasons (``chat_message`` and ``llm_request``) and a comment
(``chat_message`` only: the request log holds no text).

Revision ID: d4f1a2b3c5e6
Revises: d4a7c1e9f2b3
Create Date: 2026-12-02 01:05:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "d4f1a2b3c5e6"
down_revision: str | Sequence[str] | None = "d4a7c1e9f2b3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("chatmessage") as batch:
        batch.add_column(
            sa.Column("feedback_reasons", sqlmodel.AutoString(length=64), nullable=True)
        )
        batch.add_column(sa.Column("feedback_comment", sqlmodel.AutoString(), nullable=True))
    with op.batch_alter_table("llm_request") as batch:
        batch.add_column(
            sa.Column("feedback_reasons", sqlmodel.AutoString(length=64), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("llm_request") as batch:
        batch.drop_column("feedback_reasons")
    with op.batch_alter_table("chatmessage") as batch:
        batch.drop_column("feedback_comment")
        batch.drop_column("feedback_reasons")
