"""shop: variants and categories can be archived; a payment keeps what its provider reported
when it needs review, and how staff resolved it; refund reasons hold a sentence

Revision ID: 0017_shop_staff_operations
Revises: 0014_promotions_vouchers
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shopkeeper.core.db import UTCDateTime

revision = "0017_shop_staff_operations"
down_revision = "0016_crawl_schedules"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("variants", sa.Column("archived_at", UTCDateTime(), nullable=True))
    op.add_column("categories", sa.Column("archived_at", UTCDateTime(), nullable=True))
    op.add_column("payments", sa.Column("reported_amount", sa.BigInteger(), nullable=True))
    op.add_column("payments", sa.Column("reported_currency", sa.String(length=3), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        # SQLite does not enforce VARCHAR lengths: nothing to change there.
        op.alter_column(
            "refunds",
            "reason",
            type_=sa.String(length=200),
            existing_type=sa.String(length=40),
            existing_nullable=False,
        )
    op.create_table(
        "payment_resolutions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("payment_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("refund_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_payment_resolutions_payment_id", "payment_resolutions", ["payment_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_payment_resolutions_payment_id", table_name="payment_resolutions")
    op.drop_table("payment_resolutions")
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "refunds",
            "reason",
            type_=sa.String(length=40),
            existing_type=sa.String(length=200),
            existing_nullable=False,
        )
    op.drop_column("payments", "reported_currency")
    op.drop_column("payments", "reported_amount")
    op.drop_column("categories", "archived_at")
    op.drop_column("variants", "archived_at")
