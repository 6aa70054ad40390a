"""The robots.txt cache shared by every worker (one row per host authority)."""

from __future__ import annotations

from sqlalchemy import Double, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shopkeeper.core.db import Base


class CrawlRobots(Base):
    """Times are epoch seconds, like the frontier's. A row whose robots.txt did not answer
    (5xx, 429, time-out) has `expires_at` at the end of the host's pause, so the next worker
    to reach the host after it asks again."""

    __tablename__ = "crawl_robots"

    host: Mapped[str] = mapped_column(String(300), primary_key=True)
    status: Mapped[int | None] = mapped_column(Integer())
    body: Mapped[str] = mapped_column(Text(), nullable=False, default="")
    fetched_at: Mapped[float] = mapped_column(Double(), nullable=False)
    expires_at: Mapped[float] = mapped_column(Double(), nullable=False)
    crawl_delay_ms: Mapped[int | None] = mapped_column(Integer())
    failures: Mapped[int] = mapped_column(Integer(), nullable=False, default=0)
    error: Mapped[str | None] = mapped_column(String(500))
