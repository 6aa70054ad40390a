"""Jobs: one run of a spider or of a scheduled crawl, with attempts, a lease and a heartbeat.

`crawl_jobs` has UNIQUE(schedule_id, fire_at): a schedule's fire time makes one job, however
many schedulers reach it. Items a spider yields are rows of `crawl_job_items`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from shopkeeper.core.db import Base, JSONDocument, UTCDateTime, new_id, utcnow


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    DEAD = "dead"


LIVE_JOB = (JobStatus.QUEUED, JobStatus.RUNNING)
ENDED_JOB = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.DEAD)


class Job(Base):
    __tablename__ = "crawl_jobs"

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=new_id)
    schedule_id: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    fire_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    spider: Mapped[str | None] = mapped_column(String(200))
    crawl: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    """A crawl body (scheduled crawls): the run creates the crawl from it."""
    crawl_id: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    args: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False, default=dict)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=JobStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer(), nullable=False, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer(), nullable=False, default=3)
    worker: Mapped[str | None] = mapped_column(String(300))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancel_requested: Mapped[bool] = mapped_column(Boolean(), nullable=False, default=False)
    token_hash: Mapped[str | None] = mapped_column(String(64))
    stats: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False, default=dict)
    error: Mapped[str | None] = mapped_column(Text())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("schedule_id", "fire_at", name="uq_crawl_jobs_schedule_fire"),
        Index("ix_crawl_jobs_status_created", "status", "created_at"),
        Index("ix_crawl_jobs_crawl_id", "crawl_id"),
    )


class JobItem(Base):
    __tablename__ = "crawl_job_items"

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=new_id)
    job_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("crawl_jobs.id", ondelete="CASCADE"), nullable=False
    )
    data: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)

    __table_args__ = (Index("ix_crawl_job_items_job", "job_id", "id"),)
