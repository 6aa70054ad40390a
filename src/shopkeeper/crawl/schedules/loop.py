"""The schedule loop of `shopkeeper scheduler` (and of `serve` when embedded): fires due
schedules every `crawl_schedule_tick_seconds` and reconciles jobs whose worker was lost. Run as
many as you like (see `firing.py`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog

from shopkeeper.core.db import Database
from shopkeeper.core.settings import Settings
from shopkeeper.crawl.jobs import service as jobs
from shopkeeper.crawl.schedules.firing import fire_due

log = structlog.get_logger(__name__)

RECONCILE_EVERY_S = 1.0


async def run_schedules(settings: Settings, db: Database, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    next_reconcile = 0.0
    while not stop.is_set():
        try:
            await fire_due(db)
            if loop.time() >= next_reconcile:
                next_reconcile = loop.time() + RECONCILE_EVERY_S
                retried, dead = await jobs.reconcile(db)
                if retried or dead:
                    log.info("crawl_jobs_reconciled", retried=retried, dead=dead)
        except Exception as exc:  # the database may be restarting: try again next tick
            log.warning("crawl_schedule_tick_failed", error=repr(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.crawl_schedule_tick_seconds)


@contextlib.asynccontextmanager
async def schedules_running(settings: Settings, db: Database) -> AsyncIterator[None]:
    """The schedule loop as a task while in the block (nothing when crawl is disabled)."""
    if not settings.crawl_enabled:
        yield
        return
    stop = asyncio.Event()
    task = asyncio.create_task(run_schedules(settings, db, stop), name="crawl-schedules")
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
