"""implicit feedback flags on llm_request

One integer of bits per request (``implicit_flags``: 1 stopped, 2 rephrased,
4 regenerated, 8 abandoned after an error; chatmon.services.implicit_signals), 0 for
every existing row. Three indexes serve the signals: a conversation's requests in
order (rephrase detection, the abandoned check), and two partial indexes holding only
flagged rows and only errors, so a window's flag counts and the periodic abandoned
check read few rows however large the log grows.

Revision ID: e6c2a9d4b7f1
Revises: e5b8c2d7a913
Create Date: 2026-12-02 04:40:00

"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "e6c2a9d4b7f1"
down_revision: str | Sequence[str] | None = "e5b8c2d7a913"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FLAGGED = sa.text("implicit_flags != 0")
_ERRORS = sa.text("status = 'error'")


def upgrade() -> None:
    with op.batch_alter_table("llm_request") as batch:
        batch.add_column(
            sa.Column("implicit_flags", sa.Integer(), server_default="0", nullable=False)
        )
    op.create_index(
        "ix_llm_request_conversation_started_at",
        "llm_request",
        ["conversation_id", "started_at"],
    )
    op.create_index(
        "ix_llm_request_flagged_started_at",
        "llm_request",
        ["started_at"],
        sqlite_where=_FLAGGED,
        postgresql_where=_FLAGGED,
    )
    op.create_index(
        "ix_llm_request_errors_started_at",
        "llm_request",
        ["started_at"],
        sqlite_where=_ERRORS,
        postgresql_where=_ERRORS,
    )


def downgrade() -> None:
    op.drop_index("ix_llm_request_errors_started_at", table_name="llm_request")
    op.drop_index("ix_llm_request_flagged_started_at", table_name="llm_request")
    op.drop_index("ix_llm_request_conversation_started_at", table_name="llm_request")
    with op.batch_alter_table("llm_request") as batch:
        batch.drop_column("implicit_flags")
