"""Prometheus metrics of the crawl system, counted by the workers that do the work.

Frontier sizes and ready hosts are gauges a worker refreshes in its housekeeping, so every
worker process reports the (shared) frontier as it last saw it: read them with `max`, not `sum`.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import select

from shopkeeper.crawl.context import CrawlContext
from shopkeeper.crawl.models import Crawl, CrawlStatus

PAGES = Counter("shopkeeper_crawl_pages_total", "Pages decided, by final state", ["state"])
FETCH_SECONDS = Histogram(
    "shopkeeper_crawl_fetch_seconds",
    "Time from request to complete body",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
FETCHES = Counter(
    "shopkeeper_crawl_fetches_total", "HTTP requests made, by status class", ["status"]
)
FRONTIER_URLS = Gauge(
    "shopkeeper_crawl_frontier_urls", "URLs of active crawls in the frontier", ["state"]
)
READY_HOSTS = Gauge(
    "shopkeeper_crawl_ready_hosts", "Hosts of active crawls with due URLs and a free start slot"
)
EXPIRED_LEASES = Counter(
    "shopkeeper_crawl_expired_leases_total",
    "Leases of dead or stuck workers returned by the reaper",
)
ROBOTS_DENIED = Counter("shopkeeper_crawl_robots_denied_total", "URLs robots.txt disallowed")
THROTTLED = Counter(
    "shopkeeper_crawl_throttled_total", "429 answers (the host paused for its Retry-After)"
)
LATE_STARTS = Counter(
    "shopkeeper_crawl_late_starts_total",
    "Leased URLs handed back unfetched because the worker reached them after their start time",
)
RETRIES = Counter("shopkeeper_crawl_retries_total", "URLs put back for another attempt")


def status_class(status: int | None) -> str:
    return "none" if status is None else f"{status // 100}xx"


async def refresh_frontier_gauges(context: CrawlContext) -> None:
    """Queued and in-flight URLs of the running crawls, and hosts ready for a request."""
    async with context.db.session() as session:
        running = list(
            await session.scalars(select(Crawl.id).where(Crawl.status == CrawlStatus.RUNNING))
        )
    queued = in_flight = ready = 0
    now = await context.frontier.now()
    for crawl_id in running:
        counts = await context.frontier.counts(crawl_id)
        queued += counts.queued
        in_flight += counts.in_flight
        for host in await context.frontier.hosts(crawl_id):
            if host.queued and host.paused_until is None and host.next_start_at <= now:
                ready += host.in_flight < host.max_inflight
    FRONTIER_URLS.labels("queued").set(queued)
    FRONTIER_URLS.labels("in_flight").set(in_flight)
    READY_HOSTS.set(ready)
