"""The crawl worker: leases URLs from the frontier, fetches them politely, stores what it finds.

One process runs `concurrency` fetches at once. Leases come in batches; each URL's outcome goes
to a buffer that one flusher writes in groups (pages upserted, in-scope links queued, then the
leases acknowledged), so a page's links are always in the frontier before the page is done —
the crawl cannot look finished while a page's links are on their way. A worker that dies loses
nothing: its leases expire and any worker's reaper returns them; a URL stored but not
acknowledged is fetched again and overwrites its own row.

Politeness lives in the frontier (start slots, in-flight counts, pauses); the worker adds one
thing: a request starts no earlier than its lease's reservation time plus a fixed slack, so the
gaps between request starts on a host are the gaps between reservations, whatever each lease's
own lag between the frontier and the socket.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import structlog

from shopkeeper.crawl import metrics, service
from shopkeeper.crawl.aio import Wakeup
from shopkeeper.crawl.auth import authenticate_worker
from shopkeeper.crawl.context import CrawlContext
from shopkeeper.crawl.fetch import Fetcher
from shopkeeper.crawl.frontier import HostPolicy, Lease, NewURL
from shopkeeper.crawl.jobs.pages import spider_job, spider_parse, store_items
from shopkeeper.crawl.jobs.runner import JobRunner
from shopkeeper.crawl.models import Crawl, CrawlStatus, PageState
from shopkeeper.crawl.outcomes import CrawlConfig, Outcome, completed, dead_page, page_row
from shopkeeper.crawl.politeness import (
    Complete,
    PauseHost,
    RobotsAllow,
    RobotsDeny,
    RobotsEntry,
    RobotsSkipHost,
    RobotsUnavailable,
    backoff_s,
    decide,
    robots_entry,
    robots_verdict,
)
from shopkeeper.crawl.presence import WorkerPresence
from shopkeeper.crawl.results import store_pages

log = structlog.get_logger(__name__)

START_SLACK_S = 0.1
"""How long after its reservation a request starts (see the module's docstring)."""
LATE_TOLERANCE_S = 0.002
CONFIG_TTL_S = 1.0
"""How stale a worker's copy of a crawl (status, rules) may be: a cancel reaches it this late."""
HOUSEKEEPING_S = 1.0
FLUSH_GATHER_S = 0.02
"""How long the flusher waits for more outcomes while fetches are still deciding theirs."""
IDLE_MIN_S = 0.01
IDLE_MAX_S = 0.2
"""Bounds of the lease loop's wait after an empty lease (it backs off while idle)."""
SLOT_WAIT_S = 0.1
CAP_SLACK = 1000
"""URLs below a crawl's max_pages under which every add counts the crawl afresh."""
QUEUED_MEMORY = 200_000
"""Fingerprints a worker remembers having queued (about 15 MB), over all crawls."""


class CrawlWorker:
    def __init__(
        self,
        context: CrawlContext,
        *,
        name: str | None = None,
        concurrency: int | None = None,
        fetcher: Fetcher | None = None,
        key: str | None = None,
    ) -> None:
        """`key`: a `crawl:worker` API key, checked at start and at every heartbeat (a revoked
        key stops the worker as SIGTERM would)."""
        settings = context.settings
        self.key = key
        self.context = context
        self.frontier = context.frontier
        self.id = uuid.uuid4()
        self.hostname = socket.gethostname()
        self.name = name or f"{self.hostname}-{os.getpid()}"
        self.concurrency = concurrency or settings.crawl_worker_concurrency
        self.lease_seconds = settings.crawl_lease_seconds
        self.user_agent = settings.crawl_user_agent
        self.fetcher = fetcher or Fetcher.from_settings(settings)
        self._owns_fetcher = fetcher is None
        self._token = f"{self.name}/{self.id}"
        self._held: dict[str, Lease] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._outcomes: list[Outcome] = []
        self._deciding = 0
        """Leases whose outcome is not decided yet (more outcomes are coming while > 0)."""
        self._batch = max(1, self.concurrency // 4)
        # Wake-ups: the flusher when outcomes are worth writing, the lease loop when enough
        # slots are free or a flush may have made work (links queued, retries, slots freed).
        self._outcome_ready = Wakeup()
        self._slots = Wakeup()
        self._work = Wakeup()
        self._acked_crawls: set[uuid.UUID] = set()
        """Crawls this worker acknowledged URLs of since it last looked for finished crawls."""
        self._configs: dict[uuid.UUID, CrawlConfig] = {}
        self._policies: dict[tuple[uuid.UUID, str], HostPolicy] = {}
        self._clock_offset = 0.0
        """frontier clock - local clock, so local waits line up with the frontier's times."""
        self._robots_pending: dict[str, asyncio.Future[RobotsEntry]] = {}
        self._locks: dict[tuple[str, Any], asyncio.Lock] = {}
        self._flush_lock = asyncio.Lock()
        self._seen: dict[uuid.UUID, tuple[int, float]] = {}
        self._queued: dict[uuid.UUID, set[int]] = {}
        """Per crawl, fingerprints this worker has queued: the frontier would refuse them again
        (its seen set only grows), so they are not sent again."""
        self._queued_count = 0
        self._stop = asyncio.Event()

    # --- lifecycle -------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, *, drain_seconds: float | None = None) -> None:
        """Work until `stop` is set, then drain: in-flight fetches get `drain_seconds` (default
        the lease time) to finish, the rest go back to the frontier unspent."""
        if self.key is not None:
            await authenticate_worker(self.context.db, self.key)
        self._stop = stop
        presence = WorkerPresence(
            self.context, id=self.id, name=self.name, capacity=self.concurrency, key=self.key
        )
        await presence.register()
        await self._sync_clock()
        loops = [
            asyncio.create_task(self._flush_loop()),
            asyncio.create_task(presence.heartbeat(stop, in_flight=lambda: len(self._held))),
            asyncio.create_task(self._renew_loop()),
            asyncio.create_task(self._housekeeping_loop()),
        ]
        jobs: asyncio.Task[None] | None = None
        slots = self.context.settings.crawl_job_slots
        if slots:
            runner = JobRunner(self.context, name=self._token, slots=slots)
            jobs = asyncio.create_task(runner.run(stop))
        log.info("crawl_worker_started", worker=self.name, concurrency=self.concurrency)
        waking = [
            asyncio.create_task(self._wake_on(stop)),
            # Another worker's links or a new crawl: an idle worker hears of it at once.
            asyncio.create_task(self.frontier.watch_work(self._work.fire)),
        ]
        try:
            await self._lease_loop(stop)
        finally:
            for task in waking:
                task.cancel()
            await asyncio.gather(*waking, return_exceptions=True)
            if jobs is not None:
                stop.set()
                await asyncio.gather(jobs, return_exceptions=True)
            await self._drain(self.lease_seconds if drain_seconds is None else drain_seconds)
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            await self._flush()
            await presence.unregister()
            if self._owns_fetcher:
                await self.fetcher.aclose()
            log.info("crawl_worker_stopped", worker=self.name)

    async def _drain(self, seconds: float) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=seconds)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._flush()
        unfinished = list(self._held.values())
        if unfinished:
            now = await self.frontier.now()
            for lease in unfinished:
                await self.frontier.retry(lease, not_before=now, spend_attempt=False)
                self._held.pop(lease.token, None)
            log.info("crawl_worker_returned_leases", worker=self.name, count=len(unfinished))

    async def _wake_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._slots.fire()
        self._work.fire()

    async def _sync_clock(self) -> None:
        before = time.time()
        frontier_now = await self.frontier.now()
        self._clock_offset = frontier_now - (before + time.time()) / 2

    def _now(self) -> float:
        """The frontier's clock, estimated locally."""
        return time.time() + self._clock_offset

    # --- leasing --------------------------------------------------------------------------------

    async def _lease_loop(self, stop: asyncio.Event) -> None:
        idle = IDLE_MIN_S
        while not stop.is_set():
            free = self.concurrency - len(self._tasks)
            # Lease in batches: waiting a moment for more free slots beats a round trip per URL.
            if free <= 0 or (self._tasks and free < self._batch):
                await self._slots.wait(SLOT_WAIT_S)
                continue
            try:
                leases = await self.frontier.lease(
                    worker=self._token, limit=free, lease_seconds=self.lease_seconds
                )
            except Exception:
                log.exception("crawl_lease_failed", worker=self.name)
                leases = []
                idle = 1.0
            for lease in leases:
                self._held[lease.token] = lease
                self._deciding += 1
                task = asyncio.create_task(self._process(lease))
                self._tasks.add(task)
                task.add_done_callback(self._task_done)
            if leases:
                idle = IDLE_MIN_S
                continue
            if not self._held and self._acked_crawls:
                # Nothing to lease and nothing in hand: the crawls whose URLs this worker
                # acknowledged may be finished now (their last links are queued before the
                # acks). Looking here, at once, instead of at the next housekeeping tick.
                await self._finish_idle()
            # A flush of this worker wakes the loop at once; other workers' links and, on
            # PostgreSQL, a host row another worker was updating (skipped, not waited for) are
            # found by asking again: soon while fetches are in flight, backing off when idle.
            await self._work.wait(idle)
            idle = IDLE_MIN_S if self._held else min(idle * 2, IDLE_MAX_S)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not self._tasks or self.concurrency - len(self._tasks) >= self._batch:
            self._slots.fire()

    async def _finish_idle(self) -> None:
        crawls, self._acked_crawls = self._acked_crawls, set()
        try:
            await service.finish_idle_crawls(self.context, crawl_ids=crawls)
        except Exception:
            log.exception("crawl_finish_check_failed", worker=self.name)

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            leases = list(self._held.values())
            if not leases:
                continue
            try:
                alive = await self.frontier.renew(leases, self.lease_seconds)
            except Exception:
                log.exception("crawl_renew_failed", worker=self.name)
                continue
            for lease, ok in zip(leases, alive, strict=True):
                if not ok:
                    # Reaped (this worker stalled past its lease): another worker owns it now.
                    self._held.pop(lease.token, None)

    async def _housekeeping_loop(self) -> None:
        """Reaping runs in every worker: any live worker returns a dead one's URLs."""
        ticks = 0
        while True:
            await asyncio.sleep(min(HOUSEKEEPING_S, self.lease_seconds / 3))
            ticks += 1
            try:
                reaped = await self.frontier.reap()
                if reaped:
                    metrics.EXPIRED_LEASES.inc(reaped)
                    log.info("crawl_leases_reaped", count=reaped)
                await service.finish_idle_crawls(self.context)
                if ticks % 10 == 0:
                    await self._sync_clock()
                if ticks % 5 == 0:
                    await metrics.refresh_frontier_gauges(self.context)
            except Exception:
                log.exception("crawl_housekeeping_failed", worker=self.name)

    # --- one URL --------------------------------------------------------------------------------

    async def _config(self, crawl_id: uuid.UUID) -> CrawlConfig | None:
        config = self._configs.get(crawl_id)
        if config is not None and time.monotonic() - config.loaded_at < CONFIG_TTL_S:
            return config
        # One load per crawl at a time: a batch of leases of a new crawl would otherwise open
        # a database connection each for the same row.
        async with self._lock(("config", crawl_id)):
            config = self._configs.get(crawl_id)
            if config is not None and time.monotonic() - config.loaded_at < CONFIG_TTL_S:
                return config
            return await self._load_config(crawl_id)

    async def _robots_entry(self, host: str) -> RobotsEntry | None:
        entry = await self.context.robots.get(host, now=self._now())
        if entry is not None:
            return entry
        async with self._lock(("robots", host)):
            pending = self._robots_pending.get(host)
            if pending is not None:
                return await asyncio.shield(pending)
            return await self.context.robots.get(host, now=self._now())

    def _lock(self, key: tuple[str, Any]) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    async def _load_config(self, crawl_id: uuid.UUID) -> CrawlConfig | None:
        async with self.context.db.session() as session:
            crawl = await session.get(Crawl, crawl_id)
            job = (
                await spider_job(session, crawl_id, self.context.settings.crawl_spiders_file)
                if crawl is not None
                else None
            )
        if crawl is None:
            self._configs.pop(crawl_id, None)
            return None
        if crawl.status == CrawlStatus.QUEUED:
            await service.mark_running(self.context, crawl_id=crawl_id)
        config = CrawlConfig(
            id=crawl.id,
            status=crawl.status,
            scope=service.compile_scope(crawl.scope),
            politeness=crawl.politeness,
            extract=crawl.extract,
            max_attempts=crawl.max_attempts,
            max_pages=crawl.scope.get("max_pages"),
            loaded_at=time.monotonic(),
            spider=job.spider if job is not None else None,
            job_id=job.job_id if job is not None else None,
            args=job.args if job is not None else {},
        )
        self._configs[crawl_id] = config
        return config

    async def _process(self, lease: Lease) -> None:
        try:
            outcome = await self._decide(lease)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("crawl_url_failed", url=lease.url)
            outcome = Outcome(lease, retry_at=self._now() + backoff_s(lease.attempts))
            outcome.spend_attempt = True
            config = self._configs.get(lease.crawl_id)
            if config is not None and lease.attempts + 1 >= config.max_attempts:
                outcome = Outcome(lease, page=page_row(lease, PageState.DEAD, error=repr(exc)))
        finally:
            self._deciding -= 1
        outcomes = self._outcomes
        outcomes.append(outcome)
        # The flusher wakes for the first outcome (it then gathers), when a batch is complete,
        # and when no other outcome is on its way.
        if len(outcomes) == 1 or len(outcomes) >= self._batch or not self._deciding:
            self._outcome_ready.fire()

    async def _decide(self, lease: Lease) -> Outcome:
        config = await self._config(lease.crawl_id)
        if config is None or config.status == CrawlStatus.CANCELLED:
            return Outcome(lease)
        settings = self.context.settings
        obey = bool(config.politeness.get("obey_robots", True))
        entry = await self._robots_entry(lease.host) if obey else None
        pending = self._robots_pending.get(lease.host)
        if obey and entry is None and pending is not None:
            # Another fetch of this worker is reading the host's robots.txt right now.
            entry = await asyncio.shield(pending)
        elif obey and entry is None:
            # This lease's start slot goes to robots.txt; the URL comes back after the delay.
            if not await self._start_on_time(lease, config, None):
                return Outcome(lease, retry_at=self._now())
            entry = await self._fetch_robots(lease)
            if not entry.usable:
                await self.frontier.pause_host(
                    lease.host, entry.expires_at, entry.error or "robots.txt unavailable"
                )
                return Outcome(lease, retry_at=entry.expires_at)
            await self._apply_policy(config, lease.host, entry.crawl_delay_ms)
            delay_s = service.host_policy(config.politeness, entry.crawl_delay_ms).delay_ms / 1000
            return Outcome(lease, retry_at=self._now() + delay_s)
        if entry is not None:
            match robots_verdict(entry, lease.url, self.user_agent, now=self._now()):
                case RobotsAllow(delay_ms=delay_ms):
                    await self._apply_policy(config, lease.host, delay_ms)
                case RobotsDeny():
                    metrics.ROBOTS_DENIED.inc()
                    return Outcome(lease, page=page_row(lease, PageState.ROBOTS_DENIED))
                case RobotsSkipHost(reason=reason):
                    dropped = await self.frontier.discard_host(lease.crawl_id, lease.host)
                    # Those URLs are done in the frontier already; their pages are stored with
                    # this lease's outcome.
                    await store_pages(
                        self.context.db,
                        [dead_page(url, lease.crawl_id, reason) for url in dropped],
                    )
                    return Outcome(lease, page=page_row(lease, PageState.DEAD, error=reason))
                case RobotsUnavailable(until=until, reason=reason):
                    await self.frontier.pause_host(lease.host, until, reason)
                    return Outcome(lease, retry_at=until)
        if not await self._start_on_time(lease, config, entry.crawl_delay_ms if entry else None):
            return Outcome(lease, retry_at=self._now())
        started = time.monotonic()
        result = await self.fetcher.fetch(lease.url, scope=config.scope, follow_redirects=False)
        metrics.FETCH_SECONDS.observe(time.monotonic() - started)
        metrics.FETCHES.labels(metrics.status_class(result.status)).inc()
        decision = decide(
            result,
            lease.attempts,
            config.max_attempts,
            now=self._now(),
            retry_base_s=settings.crawl_retry_base_seconds,
            retry_max_s=settings.crawl_retry_max_seconds,
        )
        match decision:
            case PauseHost(until=until, reason=reason):
                if result.status == 429:
                    metrics.THROTTLED.inc()
                # Paused now, not at the flush: the host's slot is still held by this lease, so
                # nothing else starts on the host before the pause is in place.
                await self.frontier.pause_host(lease.host, until, reason)
                return Outcome(lease, retry_at=until)
            case Complete(state=state, error=error):
                outcome = completed(lease, config, result, PageState(state), error)
                if config.spider is not None and outcome.page is not None:
                    await spider_parse(config, lease, result, outcome)
                return outcome
            case _:
                metrics.RETRIES.inc()
                return Outcome(lease, retry_at=decision.not_before, spend_attempt=True)

    async def _start_on_time(
        self, lease: Lease, config: CrawlConfig, robots_delay_ms: int | None
    ) -> bool:
        """Wait for the lease's start time (reservation + slack); False when it has passed
        already (this worker was slow to get here), and the URL must go back unfetched: starting
        late could bring this request closer to the host's next one than its delay."""
        if not (config.politeness.get("delay_ms") or robots_delay_ms):
            return True
        start_at = lease.expires_at - self.lease_seconds + START_SLACK_S
        wait = start_at - self._now()
        if wait > 0:
            await asyncio.sleep(wait)
        # A busy event loop (or a descheduled process) can also wake the sleep up late.
        if self._now() - start_at > LATE_TOLERANCE_S:
            metrics.LATE_STARTS.inc()
            return False
        return True

    async def _fetch_robots(self, lease: Lease) -> RobotsEntry:
        future: asyncio.Future[RobotsEntry] = asyncio.get_running_loop().create_future()
        self._robots_pending[lease.host] = future
        try:
            result = await self.fetcher.fetch_robots(lease.host, scheme=urlsplit(lease.url).scheme)
            metrics.FETCHES.labels(metrics.status_class(result.status)).inc()
            robots = self.context.robots
            entry = robots_entry(
                lease.host,
                result,
                user_agent=self.user_agent,
                now=self._now(),
                previous=await robots.latest(lease.host),
                ttl_s=self.context.settings.crawl_robots_ttl_seconds,
            )
            await robots.put(entry)
            future.set_result(entry)
            return entry
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters, if any, see it; none is not an error
            raise
        finally:
            self._robots_pending.pop(lease.host, None)

    async def _apply_policy(
        self, config: CrawlConfig, host: str, robots_delay_ms: int | None
    ) -> None:
        policy = service.host_policy(config.politeness, robots_delay_ms)
        if self._policies.get((config.id, host)) != policy:
            await self.frontier.set_host_policy(config.id, host, policy)
            self._policies[(config.id, host)] = policy

    # --- flushing -------------------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        while True:
            await self._outcome_ready.wait(1.0)
            if not self._outcomes:
                continue
            if self._deciding and len(self._outcomes) < self._batch:
                # The same few writes per flush whatever its size: gathering more outcomes for
                # a moment costs the pages that long, and saves writes at every busy moment.
                # Nothing is gained waiting when no other outcome is on its way.
                await self._outcome_ready.wait(FLUSH_GATHER_S)
            try:
                await self._flush()
            except Exception:
                log.exception("crawl_flush_failed", worker=self.name)
                await asyncio.sleep(0.5)

    async def _flush(self) -> None:
        """Group commit: pages, then links, then acknowledgements. A failure before the acks
        leaves the leases to expire and come back (stored pages are upserted again). One flush
        at a time: a drain must not take a lease that a running flush is acknowledging for an
        unfinished one."""
        async with self._flush_lock:
            await self._flush_now()

    async def _flush_now(self) -> None:
        outcomes, self._outcomes = self._outcomes, []
        if not outcomes:
            return
        try:
            await store_pages(self.context.db, [o.page for o in outcomes if o.page is not None])
            await store_items(self.context.db, [o for o in outcomes if o.items])
            await self._enqueue([o for o in outcomes if o.links])
        except Exception:
            for outcome in outcomes:
                self._held.pop(outcome.lease.token, None)
            raise
        done = [o.lease for o in outcomes if o.retry_at is None]
        if done:
            await self.frontier.complete(done)
            self._acked_crawls.update(lease.crawl_id for lease in done)
        for outcome in outcomes:
            if outcome.retry_at is not None:
                await self.frontier.retry(
                    outcome.lease, not_before=outcome.retry_at, spend_attempt=outcome.spend_attempt
                )
            elif outcome.page is not None:
                metrics.PAGES.labels(outcome.page["state"]).inc()
            self._held.pop(outcome.lease.token, None)
        # Links queued, URLs back in the queue, host slots freed: there may be work to lease.
        self._work.fire()

    async def _enqueue(self, outcomes: Sequence[Outcome]) -> None:
        by_crawl: dict[uuid.UUID, dict[int, NewURL]] = {}
        for outcome in outcomes:
            urls = by_crawl.setdefault(outcome.lease.crawl_id, {})
            for url in outcome.links:
                urls.setdefault(url.fingerprint, url)
        for crawl_id, urls in by_crawl.items():
            config = self._configs.get(crawl_id)
            if config is None or config.status == CrawlStatus.CANCELLED:
                continue
            known = self._queued.setdefault(crawl_id, set())
            fresh = [url for fingerprint, url in urls.items() if fingerprint not in known]
            if not fresh:
                continue
            policy = service.host_policy(config.politeness)
            for host in {url.host for url in fresh}:
                if (crawl_id, host) not in self._policies:
                    await self.frontier.set_host_policy(crawl_id, host, policy)
                    self._policies[(crawl_id, host)] = policy
            await self._add_capped(config, fresh)
            # Remembered once added (a URL the max_pages cap refused stays refused: the count
            # of seen URLs only grows). Forgetting everything now and then bounds the memory.
            if self._queued_count + len(fresh) > QUEUED_MEMORY:
                self._queued.clear()
                self._queued_count = 0
                known = self._queued.setdefault(crawl_id, set())
            known.update(url.fingerprint for url in fresh)
            self._queued_count += len(fresh)

    async def _add_capped(self, config: CrawlConfig, urls: list[NewURL]) -> None:
        """Queue the URLs, no more than `max_pages` seen in all. Between workers adding at the
        same moment the cap can be passed by at most what they add in that moment. Counting a
        large crawl costs a scan, so far below the cap a recent count (this worker's adds
        included) stands in for a fresh one."""
        if config.max_pages is None:
            await self.frontier.add(config.id, urls)
            return
        seen, counted_at = self._seen.get(config.id, (0, 0.0))
        far = config.max_pages - seen > CAP_SLACK and time.monotonic() - counted_at < CONFIG_TTL_S
        if not far:
            seen, counted_at = (await self.frontier.counts(config.id)).seen, time.monotonic()
        remaining = config.max_pages - seen
        while remaining > 0 and urls:
            batch, urls = urls[:remaining], urls[remaining:]
            added = await self.frontier.add(config.id, batch)
            remaining -= added
            seen += added
        self._seen[config.id] = (seen, counted_at)
