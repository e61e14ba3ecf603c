"""synthetic flag on llm_request (the probe's requests)

The synthetic probe records its requests in the request log with ``synthetic`` true;
the rollups and every user-facing figure leave them out. Existing rows are real
requests: the column defaults to false, so no rollup changes.

Revision ID: d41a7c9e2b30
Revises: c76112512e5e
Create Date: 2026-12-02 01:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "d41a7c9e2b30"
down_revision: str | Sequence[str] | None = "c76112512e5e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("llm_request", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("synthetic", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("llm_request", schema=None) as batch_op:
        batch_op.drop_column("synthetic")
