"""Polled channels (Telegram's getUpdates): the lease one worker holds to poll an integration,
with where its next poll starts; an update's reply remembers how many parts were sent.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "integration_pollers",
        sa.Column("integration_id", sa.String(length=40), nullable=False),
        sa.Column("holder", sa.String(length=191), nullable=True),
        sa.Column("lease_until", sa.BigInteger(), nullable=True),
        sa.Column("cursor", sa.String(length=191), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["integration_id"], ["integrations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("integration_id"),
    )
    with op.batch_alter_table("integration_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sent_parts", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("integration_events", schema=None) as batch_op:
        batch_op.drop_column("sent_parts")
    op.drop_table("integration_pollers")
