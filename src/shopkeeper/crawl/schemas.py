"""Request and response bodies of the crawl API (API.md, "crawl")."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shopkeeper.core.money import Money

PageStateName = Literal["fetched", "failed", "dead", "robots_denied"]
CrawlStatusName = Literal["queued", "running", "paused", "finished", "cancelled"]


class ScopeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allow: list[str] = Field(min_length=1, max_length=1000)
    """Hosts (`host[:port]`) or URL prefixes a URL must match one of."""
    deny: list[str] = Field(default_factory=list, max_length=1000)
    """URL prefixes (or path prefixes starting with "/"), or regexes when they start with `^`."""
    max_depth: int | None = Field(default=None, ge=0, le=10_000)
    max_pages: int | None = Field(default=None, ge=1, le=1_000_000_000)


class PolitenessIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delay_ms: int = Field(default=1000, ge=0, le=3_600_000)
    max_inflight_per_host: int = Field(default=1, ge=1, le=1000)
    obey_robots: bool = True


class ExtractIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    links: bool = True
    product: bool = False
    fields: dict[str, str] | None = Field(default=None, max_length=100)
    """name -> CSS selector (`css` for the text, `css@attr` for an attribute)."""


class CrawlCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    seeds: list[str] = Field(min_length=1, max_length=10_000)
    scope: ScopeIn
    politeness: PolitenessIn = Field(default_factory=PolitenessIn)
    extract: ExtractIn = Field(default_factory=ExtractIn)
    max_attempts: int = Field(default=3, ge=1, le=100)


class CrawlStats(BaseModel):
    seen: int
    queued: int
    in_flight: int
    fetched: int
    failed: int
    dead: int
    robots_denied: int
    by_status: dict[str, int]
    """Pages per last HTTP status ("200": n); pages without an answer are not counted here."""


class CrawlOut(BaseModel):
    id: uuid.UUID
    name: str
    status: CrawlStatusName
    stats: CrawlStats
    seeds: list[str]
    scope: ScopeIn
    politeness: PolitenessIn
    extract: ExtractIn
    max_attempts: int
    created_at: datetime
    finished_at: datetime | None


class CrawlPage(BaseModel):
    items: list[CrawlOut]
    next_cursor: str | None


class ProductOut(BaseModel):
    name: str | None
    sku: str | None
    price: Money | None
    availability: str | None


class PageOut(BaseModel):
    url: str
    final_url: str | None
    state: PageStateName
    status: int | None
    fetched_at: datetime
    depth: int
    attempts: int
    title: str | None
    product: ProductOut | None = None
    fields: dict[str, str | None] | None = None
    error: str | None = None


class PagePage(BaseModel):
    items: list[PageOut]
    next_cursor: str | None


class RobotsOut(BaseModel):
    status: int | None
    fetched_at: datetime | None
    crawl_delay_ms: int | None


class HostOut(BaseModel):
    host: str
    delay_ms: int
    """The delay in force: the largest among the active crawls having the host (robots.txt
    Crawl-delay included)."""
    max_inflight: int
    in_flight: int
    backoff_until: datetime | None
    """No request starts before this (Retry-After, robots.txt unavailable)."""
    reason: str | None
    """Why the host is paused or skipped."""
    robots: RobotsOut | None
    queued: int
    fetched: int
    errors: int
    """Pages of this crawl on the host that ended failed or dead."""


class WorkerOut(BaseModel):
    id: uuid.UUID
    name: str
    hostname: str
    pid: int
    capacity: int
    in_flight: int
    last_seen_at: datetime
    state: Literal["alive", "lost"]
