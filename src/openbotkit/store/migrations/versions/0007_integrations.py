"""Integrations: chat channels publishing a bot, their contacts, inbound updates (deduplicated)
and contacts' current conversations; jobs get a payload for kinds other than file syncs.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _owned() -> list[sa.Column[object]]:
    return [
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=True),
    ]


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("payload", sa.JSON(), nullable=True))
    op.create_table(
        "contacts",
        *_owned(),
        sa.Column("fingerprint", sa.String(length=256), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("nick", sa.Text(), nullable=True),
        sa.Column("preferences", sa.Text(), nullable=True),
        sa.Column("verified_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "fingerprint"),
    )
    op.create_index("ix_contacts_account_created", "contacts", ["account_id", "created_at", "id"])
    op.create_table(
        "integrations",
        *_owned(),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("alias", sa.String(length=128), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("bot_id", sa.String(length=40), nullable=True),
        sa.Column("blueprint_id", sa.String(length=40), nullable=True),
        sa.Column("allow_from", sa.Text(), nullable=True),
        sa.Column("session_duration", sa.BigInteger(), nullable=True),
        sa.Column("contact_collection", sa.Boolean(), nullable=True),
        sa.Column("settings", sa.JSON(), nullable=True),
        sa.Column("secrets", sa.JSON(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "alias"),
    )
    op.create_index(
        "ix_integrations_account_kind_created",
        "integrations",
        ["account_id", "kind", "created_at", "id"],
    )
    op.create_table(
        "integration_events",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("integration_id", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=191), nullable=False),
        sa.Column("conversation_id", sa.String(length=40), nullable=True),
        sa.Column("reply", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["integration_id"], ["integrations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("integration_id", "event_id"),
    )
    op.create_table(
        "integration_sessions",
        sa.Column("integration_id", sa.String(length=40), nullable=False),
        sa.Column("contact_id", sa.String(length=40), nullable=False),
        sa.Column("conversation_id", sa.String(length=40), nullable=False),
        sa.Column("last_message_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["integration_id"], ["integrations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("integration_id", "contact_id"),
    )


def downgrade() -> None:
    op.drop_table("integration_sessions")
    op.drop_table("integration_events")
    op.drop_index("ix_integrations_account_kind_created", table_name="integrations")
    op.drop_table("integrations")
    op.drop_index("ix_contacts_account_created", table_name="contacts")
    op.drop_table("contacts")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("payload")
