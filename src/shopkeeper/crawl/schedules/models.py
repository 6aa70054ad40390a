"""Schedules: a cron expression in a time zone, firing a crawl or a spider as jobs."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from shopkeeper.core.db import Base, JSONDocument, UTCDateTime, new_id, utcnow


class Overlap(StrEnum):
    SKIP = "skip"
    """A fire while the schedule's previous job is queued or running makes no job."""
    QUEUE = "queue"
    """The new job waits until the previous one ends."""
    CANCEL_PREVIOUS = "cancel_previous"
    """The previous job is cancelled and the new one runs."""


class Schedule(Base):
    __tablename__ = "crawl_schedules"

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    cron: Mapped[str] = mapped_column(String(200), nullable=False)
    timezone: Mapped[str] = mapped_column(String(64), nullable=False, default="UTC")
    spider: Mapped[str | None] = mapped_column(String(200))
    crawl: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    args: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False, default=dict)
    overlap: Mapped[str] = mapped_column(String(20), nullable=False, default=Overlap.SKIP)
    misfire_grace_s: Mapped[int] = mapped_column(Integer(), nullable=False, default=300)
    enabled: Mapped[bool] = mapped_column(Boolean(), nullable=False, default=True)
    next_fire_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """The next fire time not yet fired (None while disabled)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)

    __table_args__ = (Index("ix_crawl_schedules_next_fire_at", "enabled", "next_fire_at"),)
