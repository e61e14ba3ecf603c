"""alert delivery claim token

Each claim of an alert delivery writes a fresh token; recording the outcome of a send
requires it, so a sender whose lease ran out and was taken over by another process
cannot overwrite that process's outcome.

Revision ID: a7d3c9e2f410
Revises: c51c824dd5fb
Create Date: 2026-12-01 19:50:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "a7d3c9e2f410"
down_revision: str | Sequence[str] | None = "c51c824dd5fb"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("alert_delivery", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("claim_token", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True)
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("alert_delivery", schema=None) as batch_op:
        batch_op.drop_column("claim_token")
