"""Skillsets, their abilities, and the secrets abilities use (values encrypted at rest).

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
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
    op.create_table(
        "skillsets",
        sa.Column("alias", sa.String(length=128), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("blueprint_id", sa.String(length=40), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=True),
        sa.Column("visibility", sa.String(length=16), nullable=True),
        *_owned(),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "alias"),
    )
    with op.batch_alter_table("skillsets", schema=None) as batch_op:
        batch_op.create_index(
            "ix_skillsets_account_created", ["account_id", "created_at", "id"], unique=False
        )
    op.create_table(
        "abilities",
        sa.Column("skillset_id", sa.String(length=40), nullable=False),
        sa.Column("alias", sa.String(length=128), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("instruction", sa.Text(), nullable=True),
        sa.Column("linked_bot_id", sa.String(length=40), nullable=True),
        sa.Column("linked_secret_id", sa.String(length=40), nullable=True),
        sa.Column("blueprint_id", sa.String(length=40), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=True),
        *_owned(),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["skillset_id"], ["skillsets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "alias"),
    )
    with op.batch_alter_table("abilities", schema=None) as batch_op:
        batch_op.create_index(
            "ix_abilities_skillset_created", ["skillset_id", "created_at", "id"], unique=False
        )
    op.create_table(
        "ability_secrets",
        sa.Column("alias", sa.String(length=128), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("value_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("blueprint_id", sa.String(length=40), nullable=True),
        sa.Column("visibility", sa.String(length=16), nullable=True),
        *_owned(),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "alias"),
    )
    with op.batch_alter_table("ability_secrets", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ability_secrets_account_created",
            ["account_id", "created_at", "id"],
            unique=False,
        )


def downgrade() -> None:
    op.drop_table("abilities")
    op.drop_table("ability_secrets")
    op.drop_table("skillsets")
