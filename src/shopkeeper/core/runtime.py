"""The long-lived objects of one process, built once at start-up and shared by requests, the
outbox relay and job consumers alike.

This is the one place that wires `core.messaging` together: the broker's dispatch task runs
`dispatch_event` with this runtime, handlers get a `HandlerContext` made here, and
`background` runs the relay, the scheduler and the consumers. Nothing in `core.messaging`
imports this module; the runtime satisfies the Protocols of `core.messaging.host`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated

import structlog
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from shopkeeper.core.cache import Cache, cache_namespace
from shopkeeper.core.db import Database
from shopkeeper.core.mail import Mailer
from shopkeeper.core.messaging.broker import JobQueue, check_broker
from shopkeeper.core.messaging.dispatch import dispatch_event
from shopkeeper.core.messaging.handlers import load_handlers
from shopkeeper.core.messaging.periodic import run_scheduler
from shopkeeper.core.messaging.relay import run_relay
from shopkeeper.core.ratelimit import RateLimiter
from shopkeeper.core.realtime import RealtimeHub
from shopkeeper.core.settings import Settings

log = structlog.get_logger(__name__)


@dataclass
class Runtime:
    settings: Settings
    db: Database
    ratelimiter: RateLimiter
    readiness_checks: dict[str, Callable[[], Awaitable[None]]] = field(default_factory=dict)
    realtime: RealtimeHub = field(init=False)
    mailer: Mailer = field(init=False)
    jobs: JobQueue = field(init=False)
    """The taskiq broker (`jobs.broker`) and the outbox dispatcher task bound to this runtime."""
    cache: Cache = field(init=False)
    """Two-level response cache (L1 here, L2 in Redis when configured); see core.cache."""

    def __post_init__(self) -> None:
        self.realtime = RealtimeHub(self.settings)
        self.mailer = Mailer(self.settings, self.db)
        self.jobs = JobQueue(self.settings, dispatch=self._dispatch)
        self.cache = Cache(
            redis_url=self.settings.redis_url,
            ttl_seconds=self.settings.cache_ttl_seconds,
            max_bytes=self.settings.cache_max_bytes,
            namespace=cache_namespace(self.db.url),
        )
        if self.settings.redis_url is not None:
            self.readiness_checks.setdefault("redis", self.realtime.check_redis)
        if self.settings.broker_url is not None:
            settings = self.settings
            self.readiness_checks.setdefault("broker", lambda: check_broker(settings))

    async def _dispatch(self, event_id: uuid.UUID, handler: str) -> None:
        await dispatch_event(self, event_id, handler)

    def handler_context(self, session: AsyncSession) -> HandlerContext:
        return HandlerContext(session=session, runtime=self)

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        return cls(settings=settings, db=Database(settings), ratelimiter=RateLimiter(settings))

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """What a `serve` process runs besides requests: the realtime listener, a broker
        client and the outbox relay; in embedded mode (`run_background_in_process`) also the
        consumers and periodic jobs, so that one process is a complete shop."""
        settings = self.settings
        embedded = bool(settings.run_background_in_process)
        load_handlers()
        await self.realtime.start()
        if embedded or self.jobs.in_process:
            await self.jobs.start(worker=embedded)
        # Otherwise the relay connects to RabbitMQ when it first publishes: a broker that is
        # down at start-up must not keep the API from serving (readiness reports it).
        try:
            async with background(
                self,
                relay=embedded or settings.broker_url is not None,
                periodic=embedded,
                consume=embedded and not self.jobs.in_process,
            ):
                yield
        finally:
            await self.jobs.stop()
            await self.realtime.stop()

    async def close(self) -> None:
        await self.jobs.stop()
        await self.realtime.stop()
        await self.cache.close()
        await self.db.dispose()


@dataclass(frozen=True, slots=True)
class HandlerContext:
    """What an event handler gets besides its event: the dispatcher's open session, whose
    transaction also records the `processed_events` row (so a database effect and its dedup key
    commit together; never commit it yourself), and the process runtime."""

    session: AsyncSession
    runtime: Runtime

    @property
    def mailer(self) -> Mailer:
        """Queue mail with `await ctx.mailer.send(ctx.session, ...)`."""
        return self.runtime.mailer


@asynccontextmanager
async def background(
    runtime: Runtime, *, relay: bool, periodic: bool, consume: bool
) -> AsyncIterator[None]:
    """Run the relay, the periodic scheduler and/or the broker consumers as tasks of this
    process while in the block; stop them (letting running jobs finish) on the way out."""
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    if relay:
        tasks.append(asyncio.create_task(run_relay(runtime, stop), name="outbox-relay"))
    if periodic:
        tasks.append(asyncio.create_task(run_scheduler(runtime, stop), name="scheduler"))
    if consume:
        tasks.append(asyncio.create_task(runtime.jobs.consume(stop), name="consumers"))
    try:
        yield
    finally:
        stop.set()
        for task in tasks:
            try:
                await asyncio.wait_for(task, timeout=25)
            except Exception as exc:
                log.warning("background_task_failed", task=task.get_name(), error=repr(exc))


# Dependencies are `async def` even when they never await: FastAPI runs a plain `def`
# dependency in its thread pool, a thread hop per request for a one-line lookup.
async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def client_address(request: Request) -> str:
    """The caller's address; behind nginx uvicorn's proxy-headers support has already put the
    forwarded address here."""
    return request.client.host if request.client else "unknown"


AppRuntime = Annotated[Runtime, Depends(get_runtime)]
ClientAddress = Annotated[str, Depends(client_address)]
