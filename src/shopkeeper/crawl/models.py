"""Tables of the crawl domain: crawls, their pages (one row per requested URL) and workers.

The frontier (what is queued, leased, done) and the robots.txt cache keep their own tables
(`crawl/frontier/models.py`, `crawl/robots_models.py`); these hold what users read.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from shopkeeper.core.db import Base, JSONDocument, UTCDateTime, new_id, utcnow


class CrawlStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"
    CANCELLED = "cancelled"


class PageState(StrEnum):
    FETCHED = "fetched"
    FAILED = "failed"
    DEAD = "dead"
    ROBOTS_DENIED = "robots_denied"


class Crawl(Base):
    __tablename__ = "crawl_crawls"

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=CrawlStatus.QUEUED)
    seeds: Mapped[list[str]] = mapped_column(JSONDocument, nullable=False)
    scope: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False)
    """allow, deny, max_depth, max_pages, as given."""
    politeness: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False)
    extract: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False)
    max_attempts: Mapped[int] = mapped_column(Integer(), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Page(Base):
    """The outcome of one requested URL of a crawl; written by an upsert on (crawl, fingerprint),
    so a URL delivered twice (its worker died after storing, before acknowledging) stays one row.
    Lists and exports walk the primary key (keyset), so no other index is needed."""

    __tablename__ = "crawl_pages"

    crawl_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("crawl_crawls.id", ondelete="CASCADE"), primary_key=True
    )
    fingerprint: Mapped[int] = mapped_column(BigInteger(), primary_key=True)
    url: Mapped[str] = mapped_column(Text(), nullable=False)
    final_url: Mapped[str | None] = mapped_column(Text())
    host: Mapped[str] = mapped_column(String(300), nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    status: Mapped[int | None] = mapped_column(Integer())
    depth: Mapped[int] = mapped_column(Integer(), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer(), nullable=False)
    title: Mapped[str | None] = mapped_column(Text())
    product: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    fields: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    error: Mapped[str | None] = mapped_column(Text())
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class Worker(Base):
    """A `crawl worker` process; alive while it heartbeats, `lost` after three missed beats."""

    __tablename__ = "crawl_workers"

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    hostname: Mapped[str] = mapped_column(String(255), nullable=False)
    pid: Mapped[int] = mapped_column(Integer(), nullable=False)
    capacity: Mapped[int] = mapped_column(Integer(), nullable=False)
    in_flight: Mapped[int] = mapped_column(Integer(), nullable=False, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)

    __table_args__ = (Index("ix_crawl_workers_last_seen_at", "last_seen_at"),)
