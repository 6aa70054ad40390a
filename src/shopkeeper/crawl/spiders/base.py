"""The spider kind interface (see the package docstring for how a kind plugs in)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from structlog.typing import FilteringBoundLogger

from shopkeeper.crawl.context import CrawlContext

SpiderKindName = Literal["python", "command", "scrapy"]


class SpiderFailed(Exception):
    """A spider's run ended in failure (the message becomes the job's `error`)."""


@dataclass(frozen=True, slots=True)
class SpiderSpec:
    name: str
    kind: str
    description: str = ""
    scope: Mapping[str, Any] | None = None
    """A crawl `scope` body (`allow`, `deny`, `max_depth`, `max_pages`): when given, the runner
    creates a crawl for each job and the spider's requests go to the shared frontier."""
    politeness: Mapping[str, Any] = field(default_factory=dict)
    """A crawl `politeness` body; the defaults of a crawl when empty."""
    extract: Mapping[str, Any] = field(default_factory=lambda: {"links": False})
    """A crawl `extract` body; links are not followed unless the spec asks."""
    start_urls: Sequence[str] = ()
    """Queued when the job's crawl is created."""
    max_attempts: int = 3
    """Runs of a job (a lost worker's run is retried up to this many)."""
    fetched_by_workers: bool = True
    """False: the job's crawl is kept inactive, so the crawl workers leave its URLs alone and the
    spider leases them itself (`run.context.frontier.lease(crawl_id=...)`, under the same
    per-host slots), e.g. a Scrapy downloader."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """The kind's own settings (`command`, `env`, `entry_point`, a Scrapy project ...)."""


class JobRun(Protocol):
    """One run of a job, as a spider kind sees it."""

    job_id: uuid.UUID
    attempt: int
    spider: SpiderSpec
    args: Mapping[str, Any]
    crawl_id: uuid.UUID | None
    token: str
    """Bearer token valid for this job's own endpoints (`/crawl/jobs/{id}/requests`, `items`,
    `progress`, `pages`) while the run lasts."""
    api_url: str
    """The API's base, e.g. `http://127.0.0.1:8000/api/v1`."""
    cancelled: asyncio.Event
    log: FilteringBoundLogger
    context: CrawlContext
    """The worker's database, frontier and settings, for kinds that run inside the worker."""

    async def add_requests(self, urls: Sequence[str]) -> int:
        """Queue URLs in the job's crawl (in scope, not seen before); how many were new."""
        ...

    async def add_items(self, items: Sequence[Mapping[str, Any]]) -> int: ...

    async def report(self, stats: Mapping[str, Any]) -> None:
        """Merge `stats` into the job's `stats`."""
        ...

    async def wait_idle(self, poll_s: float = 0.2) -> None:
        """Until the job's crawl has nothing queued or in flight."""
        ...


class SpiderKind(Protocol):
    name: str

    def from_config(self, name: str, entry: Mapping[str, Any]) -> SpiderSpec:
        """One `[spiders.<name>]` table of the spiders file; ValueError when it is not valid."""
        ...

    def discover(self) -> Iterable[SpiderSpec]:
        """Spiders this kind finds without the spiders file (entry points)."""
        ...

    async def run(self, run: JobRun) -> None: ...


def spec_from_config(name: str, kind: str, entry: Mapping[str, Any], **options: Any) -> SpiderSpec:
    """The common keys of a spiders-file table; the kind's own go in `options`."""
    scope = entry.get("scope")
    if scope is not None and not isinstance(scope, Mapping):
        raise ValueError(f"spider {name}: `scope` must be a table")
    start = entry.get("start_urls", [])
    if not isinstance(start, list) or not all(isinstance(url, str) for url in start):
        raise ValueError(f"spider {name}: `start_urls` must be a list of URLs")
    return SpiderSpec(
        name=name,
        kind=kind,
        description=str(entry.get("description", "")),
        scope=dict(scope) if scope is not None else None,
        politeness=dict(entry.get("politeness", {})),
        extract=dict(entry.get("extract", {"links": False})),
        start_urls=tuple(start),
        max_attempts=int(entry.get("max_attempts", 3)),
        fetched_by_workers=bool(entry.get("fetched_by_workers", True)),
        options=options,
    )
