"""roles held by users, and API keys for machines

Revision ID: 0009_roles_and_keys
Revises: 0008_stock_thresholds
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shopkeeper.core.db import JSONDocument, UTCDateTime

revision = "0009_roles_and_keys"
down_revision = "0008_stock_thresholds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_roles",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=50), nullable=False),
        sa.Column("granted_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "role"),
    )
    # Every staff user so far could do everything: they become admins.
    op.execute(
        "INSERT INTO user_roles (user_id, role, granted_at) "
        "SELECT id, 'admin', CURRENT_TIMESTAMP FROM users WHERE is_staff"
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("scopes", JSONDocument, nullable=False),
        sa.Column("tenant", sa.String(length=100), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash"),
    )


def downgrade() -> None:
    op.drop_table("api_keys")
    op.drop_table("user_roles")
