"""A watch (a SKU and a competitor URL) and its price history, one row per change."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from shopkeeper.core.db import Base, UTCDateTime, new_id, utcnow


class Watch(Base):
    """Each check queues the URL on the watch's own crawl under a fingerprint of its own
    (`pending_fingerprint`): the frontier dedups within a crawl, and a check is a new fetch."""

    __tablename__ = "crawl_watches"

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=new_id)
    sku: Mapped[str] = mapped_column(String(64), nullable=False)
    url: Mapped[str] = mapped_column(Text(), nullable=False)
    selector: Mapped[str | None] = mapped_column(Text())
    every_seconds: Mapped[int] = mapped_column(Integer(), nullable=False)
    crawl_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("crawl_crawls.id", ondelete="CASCADE"), nullable=False
    )
    checks: Mapped[int] = mapped_column(Integer(), nullable=False, default=0)
    """Checks queued so far; the n-th check's fingerprint derives from n."""
    pending_fingerprint: Mapped[int | None] = mapped_column(BigInteger())
    """The check queued and not read yet, if any."""
    next_check_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    last_amount: Mapped[int | None] = mapped_column(BigInteger())
    last_currency: Mapped[str | None] = mapped_column(String(3))
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)

    __table_args__ = (
        Index("ix_crawl_watches_sku", "sku"),
        Index("ix_crawl_watches_next_check_at", "next_check_at"),
    )


class WatchPrice(Base):
    """A price read that differs from the one before it (the first read has no `previous`)."""

    __tablename__ = "crawl_watch_prices"

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=new_id)
    watch_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("crawl_watches.id", ondelete="CASCADE"), nullable=False
    )
    amount: Mapped[int] = mapped_column(BigInteger(), nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    previous_amount: Mapped[int | None] = mapped_column(BigInteger())
    previous_currency: Mapped[str | None] = mapped_column(String(3))
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)

    __table_args__ = (Index("ix_crawl_watch_prices_watch_observed", "watch_id", "observed_at"),)
