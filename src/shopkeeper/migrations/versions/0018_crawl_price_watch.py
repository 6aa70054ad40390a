"""crawl: price watches and their history, Scrapy requests; shop: competitor prices per SKU

Revision ID: 0018_crawl_price_watch
Revises: 0016_crawl_schedules
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shopkeeper.core.db import UTCDateTime

revision = "0018_crawl_price_watch"
down_revision = "0017_shop_staff_operations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crawl_watches",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("selector", sa.Text(), nullable=True),
        sa.Column("every_seconds", sa.Integer(), nullable=False),
        sa.Column("crawl_id", sa.Uuid(), nullable=False),
        sa.Column("checks", sa.Integer(), nullable=False),
        sa.Column("pending_fingerprint", sa.BigInteger(), nullable=True),
        sa.Column("next_check_at", UTCDateTime(), nullable=False),
        sa.Column("last_amount", sa.BigInteger(), nullable=True),
        sa.Column("last_currency", sa.String(3), nullable=True),
        sa.Column("last_checked_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["crawl_id"],
            ["crawl_crawls.id"],
            name="fk_crawl_watches_crawl_id_crawl_crawls",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_crawl_watches"),
    )
    op.create_index("ix_crawl_watches_sku", "crawl_watches", ["sku"])
    op.create_index("ix_crawl_watches_next_check_at", "crawl_watches", ["next_check_at"])
    op.create_table(
        "crawl_watch_prices",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("watch_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("previous_amount", sa.BigInteger(), nullable=True),
        sa.Column("previous_currency", sa.String(3), nullable=True),
        sa.Column("observed_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["watch_id"],
            ["crawl_watches.id"],
            name="fk_crawl_watch_prices_watch_id_crawl_watches",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_crawl_watch_prices"),
    )
    op.create_index(
        "ix_crawl_watch_prices_watch_observed", "crawl_watch_prices", ["watch_id", "observed_at"]
    )
    op.create_table(
        "shop_competitor_prices",
        sa.Column("watch_id", sa.Uuid(), nullable=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("observed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("watch_id", name="pk_shop_competitor_prices"),
    )
    op.create_index("ix_shop_competitor_prices_sku", "shop_competitor_prices", ["sku"])
    op.create_table(
        "crawl_scrapy_requests",
        sa.Column("crawl_id", sa.Uuid(), nullable=False),
        sa.Column("fingerprint", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["crawl_id"],
            ["crawl_crawls.id"],
            name="fk_crawl_scrapy_requests_crawl_id_crawl_crawls",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("crawl_id", "fingerprint", name="pk_crawl_scrapy_requests"),
    )


def downgrade() -> None:
    op.drop_table("crawl_scrapy_requests")
    op.drop_index("ix_shop_competitor_prices_sku", table_name="shop_competitor_prices")
    op.drop_table("shop_competitor_prices")
    op.drop_index("ix_crawl_watch_prices_watch_observed", table_name="crawl_watch_prices")
    op.drop_table("crawl_watch_prices")
    op.drop_index("ix_crawl_watches_next_check_at", table_name="crawl_watches")
    op.drop_index("ix_crawl_watches_sku", table_name="crawl_watches")
    op.drop_table("crawl_watches")
