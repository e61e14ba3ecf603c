"""fallback flag on llm_request (a reply served by an LLM_FALLBACK_MODELS model)

A request whose primary model failed (its breaker open, or a transient failure after
its retries) is answered by the next model of ``LLM_FALLBACK_MODELS``; its row records
that model in ``model`` and ``fallback`` true. Existing rows were all served by the
model they name: the column defaults to false.

Revision ID: e5b8c2d7a9f1
Revises: d4f1a2b3c5e6
Create Date: 2026-12-02 04:30:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "e5b8c2d7a9f1"
down_revision: str | Sequence[str] | None = "d4f1a2b3c5e6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("llm_request", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("fallback", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("llm_request", schema=None) as batch_op:
        batch_op.drop_column("fallback")
