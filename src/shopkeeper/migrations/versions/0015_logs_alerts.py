"""logs: alert rules with their evaluation state, and their transitions (history)

Revision ID: 0015_logs_alerts
Revises: 0014_promotions_vouchers
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shopkeeper.core.db import JSONDocument, UTCDateTime

revision = "0015_logs_alerts"
down_revision = "0014_promotions_vouchers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "logs_alert_rules",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("op", sa.String(length=2), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("for_duration", sa.String(length=32), nullable=False),
        sa.Column("for_seconds", sa.Float(), nullable=False),
        sa.Column("every", sa.String(length=32), nullable=False),
        sa.Column("every_seconds", sa.Float(), nullable=False),
        sa.Column("labels", JSONDocument, nullable=False),
        sa.Column("notify", JSONDocument, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("active_since", UTCDateTime(), nullable=True),
        sa.Column("last_evaluated_at", UTCDateTime(), nullable=True),
        sa.Column("last_value", sa.Float(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_evaluation_at", UTCDateTime(), nullable=False),
        sa.Column("claim", sa.Uuid(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("state IN ('inactive', 'pending', 'firing')", name="state"),
        sa.CheckConstraint("op IN ('>', '>=', '<', '<=')", name="op"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_logs_alert_rules_due", "logs_alert_rules", ["next_evaluation_at"])
    op.create_index("ix_logs_alert_rules_tenant", "logs_alert_rules", ["tenant", "id"])
    op.create_table(
        "logs_alert_transitions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("alert_id", sa.Uuid(), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=False),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["logs_alert_rules.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_logs_alert_transitions_alert", "logs_alert_transitions", ["alert_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_logs_alert_transitions_alert", table_name="logs_alert_transitions")
    op.drop_table("logs_alert_transitions")
    op.drop_index("ix_logs_alert_rules_tenant", table_name="logs_alert_rules")
    op.drop_index("ix_logs_alert_rules_due", table_name="logs_alert_rules")
    op.drop_table("logs_alert_rules")
