"""logs: searches saved in the web UI

Revision ID: 0019_logs_saved_searches
Revises: 0015_logs_alerts
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shopkeeper.core.db import UTCDateTime

revision = "0019_logs_saved_searches"
down_revision = "0018_crawl_price_watch"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "logs_saved_searches",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("range", sa.String(length=32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "name"),
    )
    op.create_index(
        op.f("ix_logs_saved_searches_user_id"), "logs_saved_searches", ["user_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_logs_saved_searches_user_id"), table_name="logs_saved_searches")
    op.drop_table("logs_saved_searches")
