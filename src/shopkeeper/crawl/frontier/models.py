"""Tables of the SQL frontier. Times are epoch seconds (double precision) on the database's clock,
so the lease statement compares them with `clock_timestamp()` without conversions."""

from __future__ import annotations

import uuid

from sqlalchemy import BigInteger, Boolean, Double, Index, Integer, String, Text, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from shopkeeper.core.db import Base

QUEUED = "queued"
LEASED = "leased"
DONE = "done"


class FrontierCrawl(Base):
    """Which crawls may be leased from; the crawl itself lives in the domain's own table."""

    __tablename__ = "crawl_frontier_crawls"

    crawl_id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean(), nullable=False)


class CrawlURL(Base):
    __tablename__ = "crawl_urls"

    crawl_id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    fingerprint: Mapped[int] = mapped_column(BigInteger(), primary_key=True)
    url: Mapped[str] = mapped_column(Text(), nullable=False)
    host: Mapped[str] = mapped_column(String(300), nullable=False)
    depth: Mapped[int] = mapped_column(Integer(), nullable=False)
    state: Mapped[str] = mapped_column(String(8), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer(), nullable=False)
    not_before: Mapped[float] = mapped_column(Double(), nullable=False)
    lease_token: Mapped[str | None] = mapped_column(String(40))
    lease_expires_at: Mapped[float | None] = mapped_column(Double())
    worker: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        # The lease statement's path: a host's due URLs, oldest first.
        Index(
            "ix_crawl_urls_queued",
            "host",
            "not_before",
            postgresql_where=text("state = 'queued'"),
            sqlite_where=text("state = 'queued'"),
        ),
        Index(
            "ix_crawl_urls_leased",
            "lease_expires_at",
            postgresql_where=text("state = 'leased'"),
            sqlite_where=text("state = 'leased'"),
        ),
    )


class CrawlHost(Base):
    """A host's politeness state, shared by every crawl and worker."""

    __tablename__ = "crawl_hosts"

    host: Mapped[str] = mapped_column(String(300), primary_key=True)
    delay_ms: Mapped[int] = mapped_column(Integer(), nullable=False)
    max_inflight: Mapped[int] = mapped_column(Integer(), nullable=False)
    in_flight: Mapped[int] = mapped_column(Integer(), nullable=False)
    queued: Mapped[int] = mapped_column(Integer(), nullable=False)
    """Queued URLs of the host over all crawls (inactive ones and retries not yet due included)."""
    next_start_at: Mapped[float] = mapped_column(Double(), nullable=False)
    paused_until: Mapped[float] = mapped_column(Double(), nullable=False)
    reason: Mapped[str | None] = mapped_column(Text())

    # The lease statement walks the hosts having queued URLs in this order and stops as soon as
    # it has enough; finished hosts are not in the index at all.
    __table_args__ = (
        Index(
            "ix_crawl_hosts_ready",
            "next_start_at",
            postgresql_where=text("queued > 0"),
            sqlite_where=text("queued > 0"),
        ),
    )


class CrawlHostPolicy(Base):
    """One crawl's wish for a host; `crawl_hosts` holds the strictest among active crawls."""

    __tablename__ = "crawl_host_policies"

    crawl_id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    host: Mapped[str] = mapped_column(String(300), primary_key=True)
    delay_ms: Mapped[int] = mapped_column(Integer(), nullable=False)
    max_inflight: Mapped[int] = mapped_column(Integer(), nullable=False)
