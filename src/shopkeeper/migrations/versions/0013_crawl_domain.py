"""crawl: crawls, pages and workers

Revision ID: 0013_crawl_domain
Revises: 0012_crawl_robots
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shopkeeper.core.db import JSONDocument, UTCDateTime

revision = "0013_crawl_domain"
down_revision = "0012_crawl_robots"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crawl_crawls",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("seeds", JSONDocument, nullable=False),
        sa.Column("scope", JSONDocument, nullable=False),
        sa.Column("politeness", JSONDocument, nullable=False),
        sa.Column("extract", JSONDocument, nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_crawl_crawls"),
    )
    op.create_table(
        "crawl_pages",
        sa.Column("crawl_id", sa.Uuid(), nullable=False),
        sa.Column("fingerprint", sa.BigInteger(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("final_url", sa.Text(), nullable=True),
        sa.Column("host", sa.String(300), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("product", JSONDocument, nullable=True),
        sa.Column("fields", JSONDocument, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("fetched_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["crawl_id"],
            ["crawl_crawls.id"],
            name="fk_crawl_pages_crawl_id_crawl_crawls",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("crawl_id", "fingerprint", name="pk_crawl_pages"),
    )
    op.create_table(
        "crawl_workers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("in_flight", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_crawl_workers"),
    )
    op.create_index("ix_crawl_workers_last_seen_at", "crawl_workers", ["last_seen_at"])


def downgrade() -> None:
    op.drop_index("ix_crawl_workers_last_seen_at", table_name="crawl_workers")
    op.drop_table("crawl_workers")
    op.drop_table("crawl_pages")
    op.drop_table("crawl_crawls")
