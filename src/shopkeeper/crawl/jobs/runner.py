"""The job runner inside each crawl worker: claims queued jobs (up to `crawl_job_slots`), runs
each as a task, renews their leases (its heartbeat), and reconciles: any runner puts back (or
marks `dead`) a job whose lease expired because its runner was lost.

A run is either a scheduled crawl (the job holds a crawl body: the run creates the crawl and
follows it to its end) or a spider (its kind's `run`, see `crawl/spiders`). The worker's fetch
loop does the fetching for both: politeness is one, shared by all.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import update
from structlog.typing import FilteringBoundLogger

from shopkeeper.crawl import service as crawl_service
from shopkeeper.crawl.context import CrawlContext
from shopkeeper.crawl.jobs import crawls, service
from shopkeeper.crawl.jobs.models import Job, JobStatus
from shopkeeper.crawl.models import CrawlStatus
from shopkeeper.crawl.schemas import CrawlCreate
from shopkeeper.crawl.spiders import registry
from shopkeeper.crawl.spiders.base import SpiderSpec

log = structlog.get_logger("shopkeeper.crawl.jobs")

TICK_S = 0.25
LOG_SERVICE = "crawl"
"""A job's log lines carry `service="crawl"` and `job_id`: the logs system files them under
service `crawl` (see docs/crawl.md, "A job's logs")."""
CRAWL_POLL_S = 0.5


@dataclass
class Run:
    """A `JobRun` (crawl/spiders/base.py) for one attempt of a job."""

    context: CrawlContext
    job_id: uuid.UUID
    attempt: int
    spider: SpiderSpec
    args: Mapping[str, Any]
    crawl_id: uuid.UUID | None
    token: str
    api_url: str
    log: FilteringBoundLogger
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)

    async def add_requests(self, urls: Sequence[str]) -> int:
        if self.crawl_id is None:
            raise RuntimeError(f"spider {self.spider.name} has no scope: it has no crawl")
        return await crawls.add_requests(self.context, crawl_id=self.crawl_id, urls=urls)

    async def add_items(self, items: Sequence[Mapping[str, Any]]) -> int:
        return await service.add_items(self.context.db, job_id=self.job_id, items=items)

    async def report(self, stats: Mapping[str, Any]) -> None:
        await service.merge_stats(self.context.db, job_id=self.job_id, stats=stats)

    async def wait_idle(self, poll_s: float = 0.2) -> None:
        if self.crawl_id is None:
            return
        while True:  # the frontier has no "idle" notification: poll it
            if await crawls.is_idle(self.context, self.crawl_id):
                return
            await asyncio.sleep(poll_s)


class JobRunner:
    def __init__(self, context: CrawlContext, *, name: str, slots: int) -> None:
        self.context = context
        self.name = name
        self.slots = slots
        self.lease_seconds = context.settings.crawl_lease_seconds
        self._tasks: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._attempts: dict[uuid.UUID, int] = {}
        self._why: dict[uuid.UUID, str] = {}

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        next_renew = next_reconcile = 0.0
        try:
            while not stop.is_set():
                now = loop.time()
                try:
                    if now >= next_reconcile:
                        next_reconcile = now + min(1.0, self.lease_seconds / 3)
                        retried, dead = await service.reconcile(self.context.db)
                        if retried or dead:
                            log.info("crawl_jobs_reconciled", retried=retried, dead=dead)
                    if now >= next_renew:
                        next_renew = now + self.lease_seconds / 3
                        await self._renew()
                    await self._claim()
                except Exception:
                    log.exception("crawl_job_runner_tick_failed", worker=self.name)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), TICK_S)
        finally:
            await self._release_all()

    async def _claim(self) -> None:
        free = self.slots - len(self._tasks)
        if free <= 0:
            return
        for claimed in await service.claim(
            self.context.db, worker=self.name, limit=free, lease_seconds=self.lease_seconds
        ):
            job = claimed.job
            self._attempts[job.id] = job.attempts
            task = asyncio.create_task(self._execute(job, claimed.token), name=f"job-{job.id}")
            self._tasks[job.id] = task
            task.add_done_callback(self._forgetter(job.id))

    def _forgetter(self, job_id: uuid.UUID) -> Callable[[asyncio.Task[None]], None]:
        def forget(_task: asyncio.Task[None]) -> None:
            self._tasks.pop(job_id, None)
            self._attempts.pop(job_id, None)
            self._why.pop(job_id, None)

        return forget

    async def _renew(self) -> None:
        held_now = dict(self._attempts)
        if not held_now:
            return
        held, cancels = await service.renew(
            self.context.db, worker=self.name, held=held_now, lease_seconds=self.lease_seconds
        )
        for job_id in held_now:
            task = self._tasks.get(job_id)
            if task is None or task.done():
                continue
            if job_id not in held:
                self._why[job_id] = "lost"
                task.cancel()
            elif job_id in cancels and job_id not in self._why:
                self._why[job_id] = "cancelled"
                task.cancel()

    async def _release_all(self) -> None:
        """Stopping (SIGTERM): the runs in hand stop and their jobs go back to `queued` with the
        attempt unspent, for another worker."""
        for job_id, task in list(self._tasks.items()):
            self._why.setdefault(job_id, "stopping")
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def _execute(self, job: Job, token: str) -> None:
        # A fresh logger per job: it follows the process's logging configuration as it is now.
        job_log = structlog.get_logger("shopkeeper.crawl.jobs").bind(
            service=LOG_SERVICE, job_id=str(job.id), attempt=job.attempts, spider=job.spider
        )
        job_log.info(
            "crawl_job_started", worker=self.name, crawl_id=job.crawl_id and str(job.crawl_id)
        )
        status, error, stats = JobStatus.SUCCEEDED, None, {}
        try:
            if job.crawl is not None:
                stats = await self._run_crawl(job, job_log)
            else:
                stats = await self._run_spider(job, token, job_log)
        except asyncio.CancelledError:
            why = self._why.get(job.id, "stopping")
            job_log.info("crawl_job_interrupted", reason=why)
            if why == "cancelled":
                await asyncio.shield(self._end(job, JobStatus.CANCELLED, None, {}, job_log))
            elif why == "stopping":
                await asyncio.shield(self._put_back(job))
            raise
        except Exception as exc:
            job_log.exception("crawl_job_failed")
            status, error = JobStatus.FAILED, str(exc) or type(exc).__name__
        await self._end(job, status, error, stats, job_log)

    async def _end(
        self,
        job: Job,
        status: JobStatus,
        error: str | None,
        stats: Mapping[str, Any],
        job_log: FilteringBoundLogger,
    ) -> None:
        crawl_id = await self._crawl_of(job.id)
        if crawl_id is not None and job.spider is not None:
            await crawls.close_job_crawl(self.context, crawl_id=crawl_id)
        if crawl_id is not None:
            view = await crawl_service.get_crawl(self.context, crawl_id=crawl_id)
            stats = {"crawl": view.stats, **stats}
        if job.spider is not None:
            stats = {"items": await service.count_items(self.context.db, job_id=job.id), **stats}
        recorded = await service.finish(
            self.context.db,
            job_id=job.id,
            worker=self.name,
            attempt=job.attempts,
            status=status,
            error=error,
            stats=stats,
        )
        job_log.info("crawl_job_finished", status=status, error=error, recorded=recorded)

    async def _put_back(self, job: Job) -> None:
        async with self.context.db.session() as session:
            await session.execute(
                update(Job)
                .where(
                    Job.id == job.id,
                    Job.worker == self.name,
                    Job.attempts == job.attempts,
                    Job.status == JobStatus.RUNNING,
                )
                .values(
                    status=JobStatus.QUEUED,
                    worker=None,
                    attempts=Job.attempts - 1,
                    token_hash=None,
                    lease_expires_at=None,
                )
            )
            await session.commit()

    async def _crawl_of(self, job_id: uuid.UUID) -> uuid.UUID | None:
        async with self.context.db.session() as session:
            job = await session.get(Job, job_id, populate_existing=True)
            return job.crawl_id if job is not None else None

    async def _run_crawl(self, job: Job, job_log: FilteringBoundLogger) -> dict[str, Any]:
        """A scheduled crawl: created on the first attempt, followed to its end."""
        crawl_id = job.crawl_id
        if crawl_id is None:
            body = CrawlCreate.model_validate(job.crawl)
            view = await crawl_service.create_crawl(self.context, body=body)
            crawl_id = view.crawl.id
            await service.set_crawl(self.context.db, job_id=job.id, crawl_id=crawl_id)
            job_log.info("crawl_job_crawl_created", crawl_id=str(crawl_id))
        try:
            while True:
                view = await crawl_service.get_crawl(self.context, crawl_id=crawl_id)
                if view.crawl.status in (CrawlStatus.FINISHED, CrawlStatus.CANCELLED):
                    if view.crawl.status == CrawlStatus.CANCELLED:
                        raise RuntimeError("the crawl was cancelled")
                    return {}
                await asyncio.sleep(CRAWL_POLL_S)
        except asyncio.CancelledError:
            if self._why.get(job.id) == "cancelled":
                with contextlib.suppress(Exception):
                    await asyncio.shield(
                        crawl_service.cancel_crawl(self.context, crawl_id=crawl_id)
                    )
            raise

    async def _run_spider(
        self, job: Job, token: str, job_log: FilteringBoundLogger
    ) -> dict[str, Any]:
        assert job.spider is not None
        try:
            spec = registry.spider(self.context.settings.crawl_spiders_file, job.spider)
        except registry.UnknownSpider as exc:
            raise RuntimeError(f"no spider {job.spider} on worker {self.name}") from exc
        kind = registry.kind(spec.kind)
        if kind is None:
            raise RuntimeError(f"spider kind {spec.kind} is not installed on {self.name}")
        crawl_id = job.crawl_id
        if crawl_id is None and spec.scope is not None:
            crawl_id = await crawls.open_job_crawl(self.context, job_id=job.id, spec=spec)
            await service.set_crawl(self.context.db, job_id=job.id, crawl_id=crawl_id)
        run = Run(
            context=self.context,
            job_id=job.id,
            attempt=job.attempts,
            spider=spec,
            args=job.args,
            crawl_id=crawl_id,
            token=token,
            api_url=self.context.settings.crawl_api_url.rstrip("/"),
            log=job_log,
        )
        try:
            await kind.run(run)
        except asyncio.CancelledError:
            run.cancelled.set()
            raise
        return {}
