"""per-SKU low-stock thresholds

Revision ID: 0008_stock_thresholds
Revises: 0007_search_words
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shopkeeper.core.db import UTCDateTime

revision = "0008_stock_thresholds"
down_revision = "0007_search_words"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stock_thresholds",
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("low_stock_threshold", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "low_stock_threshold >= 0", name="ck_stock_thresholds_threshold_not_negative"
        ),
        sa.ForeignKeyConstraint(
            ["sku"], ["variants.sku"], name="fk_stock_thresholds_sku_variants", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("sku", name="pk_stock_thresholds"),
    )


def downgrade() -> None:
    op.drop_table("stock_thresholds")
