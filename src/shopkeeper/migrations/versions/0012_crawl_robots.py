"""crawl: the robots.txt cache shared by workers

Revision ID: 0012_crawl_robots
Revises: 0011_crawl_frontier
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_crawl_robots"
down_revision = "0011_crawl_frontier"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crawl_robots",
        sa.Column("host", sa.String(300), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("fetched_at", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.Column("crawl_delay_ms", sa.Integer(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("host", name="pk_crawl_robots"),
    )


def downgrade() -> None:
    op.drop_table("crawl_robots")
