"""crawl: schedules, jobs and the items spiders yield

Revision ID: 0016_crawl_schedules
Revises: 0014_promotions_vouchers
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shopkeeper.core.db import JSONDocument, UTCDateTime

revision = "0016_crawl_schedules"
down_revision = "0015_logs_alerts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crawl_schedules",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("cron", sa.String(200), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("spider", sa.String(200), nullable=True),
        sa.Column("crawl", JSONDocument, nullable=True),
        sa.Column("args", JSONDocument, nullable=False),
        sa.Column("overlap", sa.String(20), nullable=False),
        sa.Column("misfire_grace_s", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("next_fire_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_crawl_schedules"),
    )
    op.create_index(
        "ix_crawl_schedules_next_fire_at", "crawl_schedules", ["enabled", "next_fire_at"]
    )
    op.create_table(
        "crawl_jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("schedule_id", sa.Uuid(), nullable=True),
        sa.Column("fire_at", UTCDateTime(), nullable=True),
        sa.Column("spider", sa.String(200), nullable=True),
        sa.Column("crawl", JSONDocument, nullable=True),
        sa.Column("crawl_id", sa.Uuid(), nullable=True),
        sa.Column("args", JSONDocument, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(300), nullable=True),
        sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=True),
        sa.Column("stats", JSONDocument, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_crawl_jobs"),
        sa.UniqueConstraint("schedule_id", "fire_at", name="uq_crawl_jobs_schedule_fire"),
    )
    op.create_index("ix_crawl_jobs_status_created", "crawl_jobs", ["status", "created_at"])
    op.create_index("ix_crawl_jobs_crawl_id", "crawl_jobs", ["crawl_id"])
    op.create_table(
        "crawl_job_items",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("data", JSONDocument, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["crawl_jobs.id"],
            name="fk_crawl_job_items_job_id_crawl_jobs",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_crawl_job_items"),
    )
    op.create_index("ix_crawl_job_items_job", "crawl_job_items", ["job_id", "id"])


def downgrade() -> None:
    op.drop_table("crawl_job_items")
    op.drop_table("crawl_jobs")
    op.drop_table("crawl_schedules")
