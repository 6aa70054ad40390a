"""The crawl system inside `serve`: its frontier for the API, and one worker when embedded."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from fastapi import FastAPI

from shopkeeper.core.runtime import Runtime
from shopkeeper.crawl.context import CrawlContext
from shopkeeper.crawl.schedules.loop import schedules_running
from shopkeeper.crawl.worker import CrawlWorker

log = structlog.get_logger(__name__)


@contextlib.asynccontextmanager
async def crawl_lifespan(app: FastAPI, runtime: Runtime) -> AsyncIterator[None]:
    settings = runtime.settings
    if not settings.crawl_enabled:
        yield
        return
    context = CrawlContext.build(settings, runtime.db)
    app.state.crawl = context
    stop = asyncio.Event()
    worker: asyncio.Task[None] | None = None
    if settings.crawl_inprocess_worker:
        worker = asyncio.create_task(
            CrawlWorker(context, name="serve").run(stop, drain_seconds=5.0)
        )
    try:
        async with contextlib.AsyncExitStack() as stack:
            if settings.run_background_in_process:
                # Embedded: this process is the scheduler too.
                await stack.enter_async_context(schedules_running(settings, runtime.db))
            yield
    finally:
        stop.set()
        if worker is not None:
            try:
                await worker
            except Exception:
                log.exception("crawl_inprocess_worker_failed")
        await context.close()
