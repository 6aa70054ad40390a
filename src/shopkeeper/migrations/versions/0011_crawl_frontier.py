"""crawl frontier: URLs, hosts' politeness state, per-crawl host policies

Revision ID: 0011_crawl_frontier
Revises: 0010_hardening_bigint_money
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_crawl_frontier"
down_revision = "0010_hardening_bigint_money"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crawl_frontier_crawls",
        sa.Column("crawl_id", sa.Uuid(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("crawl_id", name="pk_crawl_frontier_crawls"),
    )
    op.create_table(
        "crawl_urls",
        sa.Column("crawl_id", sa.Uuid(), nullable=False),
        sa.Column("fingerprint", sa.BigInteger(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("host", sa.String(300), nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("not_before", sa.Double(), nullable=False),
        sa.Column("lease_token", sa.String(40), nullable=True),
        sa.Column("lease_expires_at", sa.Double(), nullable=True),
        sa.Column("worker", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("crawl_id", "fingerprint", name="pk_crawl_urls"),
    )
    op.create_index(
        "ix_crawl_urls_queued",
        "crawl_urls",
        ["host", "not_before"],
        postgresql_where=sa.text("state = 'queued'"),
        sqlite_where=sa.text("state = 'queued'"),
    )
    op.create_index(
        "ix_crawl_urls_leased",
        "crawl_urls",
        ["lease_expires_at"],
        postgresql_where=sa.text("state = 'leased'"),
        sqlite_where=sa.text("state = 'leased'"),
    )
    op.create_table(
        "crawl_hosts",
        sa.Column("host", sa.String(300), nullable=False),
        sa.Column("delay_ms", sa.Integer(), nullable=False),
        sa.Column("max_inflight", sa.Integer(), nullable=False),
        sa.Column("in_flight", sa.Integer(), nullable=False),
        sa.Column("queued", sa.Integer(), nullable=False),
        sa.Column("next_start_at", sa.Double(), nullable=False),
        sa.Column("paused_until", sa.Double(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("host", name="pk_crawl_hosts"),
    )
    op.create_index(
        "ix_crawl_hosts_ready",
        "crawl_hosts",
        ["next_start_at"],
        postgresql_where=sa.text("queued > 0"),
        sqlite_where=sa.text("queued > 0"),
    )
    op.create_table(
        "crawl_host_policies",
        sa.Column("crawl_id", sa.Uuid(), nullable=False),
        sa.Column("host", sa.String(300), nullable=False),
        sa.Column("delay_ms", sa.Integer(), nullable=False),
        sa.Column("max_inflight", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("crawl_id", "host", name="pk_crawl_host_policies"),
    )


def downgrade() -> None:
    op.drop_table("crawl_host_policies")
    op.drop_index("ix_crawl_hosts_ready", table_name="crawl_hosts")
    op.drop_table("crawl_hosts")
    op.drop_index("ix_crawl_urls_leased", table_name="crawl_urls")
    op.drop_index("ix_crawl_urls_queued", table_name="crawl_urls")
    op.drop_table("crawl_urls")
    op.drop_table("crawl_frontier_crawls")
