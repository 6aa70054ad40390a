"""A Scrapy scheduler on our frontier: `SCHEDULER = "shopkeeper.crawl.scrapy.Scheduler"`.

What scrapy-redis does, without its losses:

- Queue and dedup: each request goes into the frontier under its Scrapy fingerprint (exact
  dedup per crawl, shared by every process of the crawl); the request itself (method, headers,
  body, meta, callback name) is stored beside it (`crawl_scrapy_requests`) before its URL is
  queued, so a leased URL always has its request.
- Leases, not pops: a request is leased when the engine may take it and acknowledged only once
  its response went through the spider's callback (the requests the callback yielded are queued
  by then). A SIGKILLed Scrapy process loses nothing: its leases expire and come back (scrapy-redis
  pops, and a killed process loses what it had popped).
- Politeness: the crawl is kept inactive, so the native workers never take its URLs, and leased
  with `Frontier.lease(crawl_id=...)`, which reserves the same host start slots and in-flight
  counts as every other lease: one per-host delay across Scrapy processes and native workers.
  A request is handed to the engine no earlier than its slot (reservation + `START_SLACK_S`),
  as the native worker starts its fetches.

The crawl is the one named `SHOPKEEPER_CRAWL` (Scrapy setting; default `scrapy:<spider name>`)
that has not finished: several processes of the same spider share it, and a run after a crash
resumes it. A run that ends with reason `finished` finishes it. The database, frontier and
Redis are those of the `SHOPKEEPER_*` environment, as for `shopkeeper crawl worker`.

Scrapy calls a scheduler synchronously from its (asyncio) reactor; the frontier is async. A pump
task on the same loop adds, leases, acknowledges and renews in the background, and
`next_request` hands out what the pump leased.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import secrets
import socket
import time
import uuid
from collections import deque
from typing import TYPE_CHECKING, Any, Self

import structlog
from scrapy import Request, signals
from scrapy.utils.defer import deferred_from_coro
from scrapy.utils.request import request_from_dict
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from shopkeeper.core.db import Database, utcnow
from shopkeeper.core.settings import Settings
from shopkeeper.crawl.canonical import authority
from shopkeeper.crawl.frontier import Frontier, Lease, NewURL
from shopkeeper.crawl.frontier.factory import build_frontier
from shopkeeper.crawl.models import Crawl, CrawlStatus
from shopkeeper.crawl.scrapy.models import ScrapyRequest
from shopkeeper.crawl.service import host_policy

if TYPE_CHECKING:
    from scrapy.crawler import Crawler as ScrapyCrawler
    from scrapy.http import Response
    from scrapy.spiders import Spider
    from twisted.internet.defer import Deferred

log = structlog.get_logger(__name__)

LEASE_KEY = "shopkeeper_lease"
"""`request.meta` key of the lease token a handed-out request carries."""
START_SLACK_S = 0.1
"""A request is handed out this long after its slot's reservation (as the native worker)."""
LATE_TOLERANCE_S = 0.01
"""Handed out later than this after its start time, a request goes back to the frontier: a late
start would bring it closer to the host's next request than the delay."""
PUMP_IDLE_S = 0.05
HOUSEKEEPING_S = 1.0


def request_fingerprint(crawler: ScrapyCrawler, request: Request) -> int:
    """Scrapy's own fingerprint (method, canonical URL, body) as our signed 64-bit key; a
    `dont_filter` request gets a random one, so the frontier's dedup lets it through."""
    if request.dont_filter:
        return int.from_bytes(secrets.token_bytes(8), "big", signed=True)
    digest = crawler.request_fingerprinter.fingerprint(request)
    return int.from_bytes(digest[:8], "big", signed=True)


class Scheduler:
    """The Scrapy scheduler interface (`scrapy.core.scheduler.BaseScheduler`) on our frontier."""

    def __init__(self, crawler: ScrapyCrawler, settings: Settings) -> None:
        self.crawler = crawler
        self.settings = settings
        scrapy_settings = crawler.settings
        self.crawl_name: str | None = scrapy_settings.get("SHOPKEEPER_CRAWL")
        self.delay_ms = scrapy_settings.getint("SHOPKEEPER_DELAY_MS", 1000)
        self.max_inflight = scrapy_settings.getint("SHOPKEEPER_MAX_INFLIGHT_PER_HOST", 1)
        self.capacity = scrapy_settings.getint("CONCURRENT_REQUESTS", 16)
        self.lease_seconds = settings.crawl_lease_seconds
        self.worker = f"scrapy:{socket.gethostname()}-{os.getpid()}/{uuid.uuid4().hex[:8]}"
        self.db: Database | None = None
        self.frontier: Frontier | None = None
        self.crawl_id: uuid.UUID | None = None
        self.spider: Spider | None = None
        self._adds: list[tuple[NewURL, bytes]] = []
        self._acks: list[Lease] = []
        self._returns: list[Lease] = []
        self._ready: deque[tuple[float, Request]] = deque()
        self._held: dict[str, Lease] = {}
        self._policies: set[str] = set()
        self._remote_pending = True
        self._clock_offset = 0.0
        self._wake = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None
        self._closing = False

    @classmethod
    def from_crawler(cls, crawler: ScrapyCrawler) -> Self:
        scheduler = cls(crawler, Settings())
        crawler.signals.connect(scheduler._spider_opened, signal=signals.spider_opened)
        return scheduler

    # --- lifecycle ---------------------------------------------------------------------------

    def open(self, spider: Spider) -> Deferred[None]:
        self.spider = spider
        return deferred_from_coro(self._open(spider))

    async def _open(self, spider: Spider) -> None:
        self.db = Database(self.settings)
        self.frontier = build_frontier(self.settings, self.db)
        name = self.crawl_name or f"scrapy:{spider.name}"
        async with self.db.session() as session:
            crawl = await session.scalar(
                select(Crawl)
                .where(Crawl.name == name, Crawl.status == CrawlStatus.QUEUED)
                .order_by(Crawl.created_at.desc())
                .limit(1)
            )
            if crawl is None:
                allowed = list(getattr(spider, "allowed_domains", None) or []) or ["*"]
                crawl = Crawl(
                    name=name,
                    status=CrawlStatus.QUEUED,
                    seeds=[],
                    scope={"allow": allowed, "deny": [], "max_depth": None, "max_pages": None},
                    politeness={
                        "delay_ms": self.delay_ms,
                        "max_inflight_per_host": self.max_inflight,
                        "obey_robots": False,
                    },
                    extract={"links": False, "product": False, "fields": None},
                    max_attempts=3,
                )
                session.add(crawl)
                await session.commit()
            self.crawl_id = crawl.id
        before = time.time()
        frontier_now = await self.frontier.now()
        self._clock_offset = frontier_now - (before + time.time()) / 2
        self._pump = asyncio.get_running_loop().create_task(self._run_pump())
        log.info("scrapy_scheduler_opened", crawl_id=str(self.crawl_id), worker=self.worker)

    def close(self, reason: str) -> Deferred[None]:
        return deferred_from_coro(self._close(reason))

    async def _close(self, reason: str) -> None:
        self._closing = True
        self._wake.set()
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        assert self.frontier is not None and self.db is not None
        await self._flush()
        # Leased but never handed out or never processed: back to the frontier, unspent.
        unfinished = list(self._held.values())
        if unfinished:
            now = await self.frontier.now()
            for lease in unfinished:
                await self.frontier.retry(lease, not_before=now, spend_attempt=False)
        if reason == "finished":
            async with self.db.session() as session:
                await session.execute(
                    update(Crawl)
                    .where(Crawl.id == self.crawl_id, Crawl.status == CrawlStatus.QUEUED)
                    .values(status=CrawlStatus.FINISHED, finished_at=utcnow(), updated_at=utcnow())
                )
                await session.commit()
        await self.frontier.close()
        await self.db.dispose()

    def _spider_opened(self, spider: Spider) -> None:
        """Acknowledge a lease once its response (or failure) went through the spider: the
        scraper's slot lets go of a request only after its callback's output was handled."""
        engine = self.crawler.engine
        slot = getattr(getattr(engine, "scraper", None), "slot", None)
        finish = getattr(slot, "finish_response", None)
        if finish is None:  # another Scrapy: acknowledge on arrival instead
            self.crawler.signals.connect(self._response_received, signal=signals.response_received)
            return

        def finish_response(result: Any, request: Request) -> None:
            finish(result, request)
            self._ack(request)

        slot.finish_response = finish_response  # type: ignore[union-attr]

    def _response_received(self, response: Response, request: Request, spider: Spider) -> None:
        self._ack(request)

    def _ack(self, request: Request) -> None:
        token = request.meta.get(LEASE_KEY)
        lease = self._held.pop(token, None) if isinstance(token, str) else None
        if lease is not None:
            self._acks.append(lease)
            self._wake.set()

    # --- the interface the engine calls ------------------------------------------------------

    def has_pending_requests(self) -> bool:
        return bool(self._ready or self._adds or self._held or self._acks or self._remote_pending)

    def enqueue_request(self, request: Request) -> bool:
        assert self.spider is not None
        key = request_fingerprint(self.crawler, request)
        request.meta.pop(LEASE_KEY, None)
        payload = pickle.dumps(request.to_dict(spider=self.spider), protocol=4)
        host = authority(request.url)
        self._adds.append(
            (NewURL(request.url, key, host, int(request.meta.get("depth", 0))), payload)
        )
        self._remote_pending = True
        self._wake.set()
        stats = self.crawler.stats
        if stats is not None:
            stats.inc_value("scheduler/enqueued/shopkeeper")
            stats.inc_value("scheduler/enqueued")
        return True

    def next_request(self) -> Request | None:
        if not self._ready:
            return None
        start_at, request = self._ready[0]
        now = self._now()
        if now < start_at:
            return None
        self._ready.popleft()
        if now - start_at > LATE_TOLERANCE_S:
            # Too late to start within its slot: back to the frontier, leased again later.
            token = request.meta.get(LEASE_KEY)
            lease = self._held.pop(token, None) if isinstance(token, str) else None
            if lease is not None:
                self._returns.append(lease)
                self._wake.set()
            return self.next_request()
        stats = self.crawler.stats
        if stats is not None:
            stats.inc_value("scheduler/dequeued/shopkeeper")
            stats.inc_value("scheduler/dequeued")
        return request

    # --- the pump ----------------------------------------------------------------------------

    def _now(self) -> float:
        return time.time() + self._clock_offset

    async def _run_pump(self) -> None:
        last_housekeeping = 0.0
        while not self._closing:
            try:
                await self._flush()
                await self._lease()
                if time.monotonic() - last_housekeeping > HOUSEKEEPING_S:
                    last_housekeeping = time.monotonic()
                    await self._housekeeping()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scrapy_scheduler_pump_failed", worker=self.worker)
                await asyncio.sleep(0.5)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), PUMP_IDLE_S)

    async def _flush(self) -> None:
        assert self.frontier is not None and self.crawl_id is not None
        adds, self._adds = self._adds, []
        if adds:
            await self._store_payloads(adds)
            for host in sorted({new.host for new, _ in adds} - self._policies):
                policy = host_policy(
                    {"delay_ms": self.delay_ms, "max_inflight_per_host": self.max_inflight}
                )
                await self.frontier.set_host_policy(self.crawl_id, host, policy)
                self._policies.add(host)
            await self.frontier.add(self.crawl_id, [new for new, _ in adds])
        acks, self._acks = self._acks, []
        if acks:
            await self.frontier.complete(acks)
        returns, self._returns = self._returns, []
        if returns:
            now = await self.frontier.now()
            for lease in returns:
                await self.frontier.retry(lease, not_before=now, spend_attempt=False)

    async def _store_payloads(self, adds: list[tuple[NewURL, bytes]]) -> None:
        assert self.db is not None
        rows = {new.fingerprint: payload for new, payload in adds}
        insert = sqlite.insert if self.db.is_sqlite else postgresql.insert
        statement = insert(ScrapyRequest).on_conflict_do_nothing()
        async with self.db.session() as session:
            await session.execute(
                statement,
                [
                    {"crawl_id": self.crawl_id, "fingerprint": key, "payload": payload}
                    for key, payload in sorted(rows.items())
                ],
            )
            await session.commit()

    async def _lease(self) -> None:
        assert self.frontier is not None and self.db is not None
        free = self.capacity - len(self._held)
        if free <= 0:
            return
        leases = await self.frontier.lease(
            worker=self.worker, limit=free, lease_seconds=self.lease_seconds, crawl_id=self.crawl_id
        )
        if not leases:
            return
        async with self.db.session() as session:
            payloads = dict(
                (
                    await session.execute(
                        select(ScrapyRequest.fingerprint, ScrapyRequest.payload).where(
                            ScrapyRequest.crawl_id == self.crawl_id,
                            ScrapyRequest.fingerprint.in_([lease.fingerprint for lease in leases]),
                        )
                    )
                )
                .tuples()
                .all()
            )
        loop = asyncio.get_running_loop()
        for lease in sorted(leases, key=lambda item: item.expires_at):
            payload = payloads.get(lease.fingerprint)
            request = (
                request_from_dict(pickle.loads(payload), spider=self.spider)  # noqa: S301
                if payload is not None
                else Request(lease.url)
            )
            request.meta[LEASE_KEY] = lease.token
            self._held[lease.token] = lease
            start_at = lease.expires_at - self.lease_seconds + START_SLACK_S
            self._ready.append((start_at, request))
            loop.call_later(max(0.0, start_at - self._now()), self._nudge)

    def _nudge(self) -> None:
        """Ask the engine for requests now (it would otherwise look on its next heartbeat)."""
        engine = self.crawler.engine
        slot = getattr(engine, "_slot", None)
        nextcall = getattr(slot, "nextcall", None)
        if nextcall is not None:
            nextcall.schedule()

    async def _housekeeping(self) -> None:
        assert self.frontier is not None and self.crawl_id is not None
        held = list(self._held.values())
        if held:
            alive = await self.frontier.renew(held, self.lease_seconds)
            for lease, ok in zip(held, alive, strict=True):
                if not ok:
                    self._held.pop(lease.token, None)
        # A dead process's leases come back to the queue (native workers reap too).
        await self.frontier.reap()
        counts = await self.frontier.counts(self.crawl_id)
        self._remote_pending = bool(counts.queued or counts.in_flight or self._adds)
