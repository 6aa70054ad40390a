"""payments

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shopkeeper.core.db import JSONDocument, UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("refunded_amount", sa.Integer(), nullable=False),
        sa.Column("provider_reference", sa.String(100), nullable=True),
        sa.Column("action_type", sa.String(20), nullable=False),
        sa.Column("action_value", sa.Text(), nullable=True),
        sa.Column("paid_order", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("succeeded_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name="fk_payments_order_id_orders"),
        sa.PrimaryKeyConstraint("id", name="pk_payments"),
        sa.UniqueConstraint(
            "provider", "provider_reference", name="uq_payments_provider_provider_reference"
        ),
    )
    op.create_index("ix_payments_order_id", "payments", ["order_id"])
    op.create_index("ix_payments_status_created_at", "payments", ["status", "created_at"])
    op.create_index(
        "uq_payments_pending_order_id",
        "payments",
        ["order_id"],
        unique=True,
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )
    op.create_table(
        "refunds",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("payment_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("dedup_key", sa.String(100), nullable=True),
        sa.Column("provider_reference", sa.String(100), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("completed_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name="fk_refunds_payment_id_payments"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_refunds"),
        sa.UniqueConstraint("payment_id", "dedup_key", name="uq_refunds_payment_id_dedup_key"),
    )
    op.create_index("ix_refunds_payment_id", "refunds", ["payment_id"])
    op.create_table(
        "payment_provider_events",
        sa.Column("provider", sa.String(20), nullable=False),
        sa.Column("event_key", sa.String(200), nullable=False),
        sa.Column("payment_id", sa.Uuid(), nullable=True),
        sa.Column("applied_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("provider", "event_key", name="pk_payment_provider_events"),
    )
    op.create_table(
        "payment_callbacks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.String(20), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("result", sa.String(40), nullable=False),
        sa.Column("detail", sa.String(300), nullable=True),
        sa.Column("event_key", sa.String(200), nullable=True),
        sa.Column("payment_id", sa.Uuid(), nullable=True),
        sa.Column("payload", JSONDocument, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_payment_callbacks"),
    )
    op.create_index(
        "ix_payment_callbacks_provider_received_at",
        "payment_callbacks",
        ["provider", "received_at"],
    )
    op.create_index("ix_payment_callbacks_payment_id", "payment_callbacks", ["payment_id"])


def downgrade() -> None:
    op.drop_table("payment_callbacks")
    op.drop_table("payment_provider_events")
    op.drop_table("refunds")
    op.drop_table("payments")
