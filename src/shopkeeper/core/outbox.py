"""Outbox relay and event dispatcher.

The relay reads committed, unpublished `outbox_events`, publishes one job per (event, handler)
and marks the events published, all in one transaction: a crash before the commit publishes the
batch again (at-least-once), never loses it. On PostgreSQL `FOR UPDATE SKIP LOCKED` lets every
`serve` and `worker` process run a relay at once without publishing the same batch twice.

The dispatcher job runs one handler for one event exactly once in database terms: the handler's
changes and the `processed_events` marker commit in one transaction, and a second delivery finds
the marker (or collides with it on the primary key and rolls back).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import pkgutil
import uuid
from collections.abc import AsyncIterator
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import ColumnElement, ScalarSelect, case, delete, func, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shopkeeper.core.db import is_postgres, utcnow
from shopkeeper.core.events import (
    EventHandler,
    HandlerContext,
    OutboxEvent,
    ProcessedEvent,
    handler_named,
    handlers_for,
    registered_event_names,
)
from shopkeeper.core.jobs import periodic
from shopkeeper.core.observability import EVENTS_PUBLISHED

if TYPE_CHECKING:
    from shopkeeper.core.runtime import Runtime

log = structlog.get_logger(__name__)

DISPATCH_TASK = "shopkeeper.dispatch_event"
RELAY_BATCH_SIZE = 100

current_handler_session: ContextVar[AsyncSession | None] = ContextVar(
    "current_handler_session", default=None
)
"""The dispatcher's session while a handler runs, so that work a handler queues (e-mail) commits
together with the handler's `processed_events` marker."""


class UnknownHandler(LookupError):
    """A job names a handler this process does not have (a deploy with mismatched versions)."""


def load_handlers() -> None:
    """Import every domain's `handlers` and `jobs` module so their registrations exist. `core`
    knows no domain by name: it finds them by walking the package tree (systems hold domains:
    `shopkeeper.shop.orders.handlers`, `shopkeeper.accounts.handlers`, ...)."""
    import shopkeeper

    importlib.import_module("shopkeeper.core.mail")
    for module in pkgutil.walk_packages(shopkeeper.__path__, "shopkeeper."):
        if module.name.split(".")[-1] not in {"handlers", "jobs"}:
            continue
        if module.name.startswith(("shopkeeper.core.", "shopkeeper.migrations.")):
            continue
        importlib.import_module(module.name)


async def _unpublished_batch(session: AsyncSession, limit: int) -> list[OutboxEvent]:
    query = (
        select(OutboxEvent)
        .where(OutboxEvent.published_at.is_(None))
        .order_by(OutboxEvent.created_at, OutboxEvent.id)
        .limit(limit)
    )
    if is_postgres(session):
        query = query.with_for_update(skip_locked=True)
    return list((await session.scalars(query)).all())


async def relay_once(runtime: Runtime, limit: int = RELAY_BATCH_SIZE) -> int:
    """Publish one batch of committed events to the job broker; returns how many."""
    if not runtime.jobs.started:
        await runtime.jobs.start()
    async with runtime.db.session() as session:
        events = await _unpublished_batch(session, limit)
        for event in events:
            for handler in sorted(handlers_for(event.name)):
                await runtime.jobs.dispatch_task.kiq(str(event.id), handler)
        if events:
            await session.execute(
                update(OutboxEvent)
                .where(OutboxEvent.id.in_([event.id for event in events]))
                .values(published_at=utcnow(), attempts=OutboxEvent.attempts + 1)
            )
            await session.commit()
            EVENTS_PUBLISHED.inc(len(events))
        return len(events)


@periodic("outbox.redeliver_stalled", every_seconds=60)
async def redeliver_stalled(runtime: Runtime) -> int:
    """Publish again the jobs of events published long ago whose handlers never finished: a
    dead-lettered job after the cause was fixed, or jobs a crashed process took with it."""
    age = timedelta(seconds=runtime.settings.outbox_redeliver_after_seconds)
    return await redeliver_unfinished(runtime, published_before=utcnow() - age)


async def redeliver_unfinished(runtime: Runtime, *, published_before: datetime) -> int:
    """Publish again the jobs of events published before `published_before` that have a handler
    without its `processed_events` marker. Handlers skip work they already did, so this is
    always safe; the `attempts` column bounds how often one event is tried."""
    if not runtime.jobs.started:
        await runtime.jobs.start()
    async with runtime.db.session() as session:
        query = (
            select(OutboxEvent)
            .where(
                OutboxEvent.published_at < published_before,
                OutboxEvent.attempts < runtime.settings.outbox_max_attempts,
                _markers_of_event() < _handler_count(),
            )
            .order_by(OutboxEvent.published_at)
            .limit(RELAY_BATCH_SIZE)
        )
        if is_postgres(session):
            query = query.with_for_update(skip_locked=True)
        events = list((await session.scalars(query)).all())
        done = {
            (marker.event_id, marker.handler)
            for marker in await session.scalars(
                select(ProcessedEvent).where(ProcessedEvent.event_id.in_([e.id for e in events]))
            )
        }
        unfinished = [
            (
                event,
                [key for key in sorted(handlers_for(event.name)) if (event.id, key) not in done],
            )
            for event in events
        ]
        unfinished = [(event, keys) for event, keys in unfinished if keys]
        for event, keys in unfinished:
            for key in keys:
                await runtime.jobs.dispatch_task.kiq(str(event.id), key)
            log.warning("outbox_redelivered", event_id=str(event.id), handlers=keys)
        if unfinished:
            await session.execute(
                update(OutboxEvent)
                .where(OutboxEvent.id.in_([event.id for event, _ in unfinished]))
                .values(published_at=utcnow(), attempts=OutboxEvent.attempts + 1)
            )
        await session.commit()
        return len(unfinished)


def _markers_of_event() -> ScalarSelect[int]:
    return (
        select(func.count())
        .select_from(ProcessedEvent)
        .where(ProcessedEvent.event_id == OutboxEvent.id)
        .scalar_subquery()
    )


def _handler_count() -> ColumnElement[int]:
    """How many handlers this process knows for each event's name, as an SQL expression."""
    counts = {name: len(handlers_for(name)) for name in registered_event_names()}
    if not counts:
        return literal(0)
    return case(counts, value=OutboxEvent.name, else_=0)


@periodic("outbox.prune", every_seconds=3600)
async def prune_finished_events(runtime: Runtime) -> int:
    """Delete events older than `outbox_retention_days` whose handlers all finished (their
    markers go with them); the table would otherwise grow with every state change."""
    cutoff = utcnow() - timedelta(days=runtime.settings.outbox_retention_days)
    async with runtime.db.session() as session:
        finished = select(OutboxEvent.id).where(
            OutboxEvent.published_at < cutoff, _markers_of_event() >= _handler_count()
        )
        ids = list((await session.scalars(finished.limit(10_000))).all())
        if ids:
            await session.execute(delete(ProcessedEvent).where(ProcessedEvent.event_id.in_(ids)))
            await session.execute(delete(OutboxEvent).where(OutboxEvent.id.in_(ids)))
        await session.commit()
        return len(ids)


async def run_relay(runtime: Runtime, stop: asyncio.Event) -> None:
    """Relay until `stop` is set: at once while there is a backlog, otherwise every poll."""
    if runtime.jobs.in_process:
        # The in-process broker's jobs died with the previous process; run them again now
        # rather than after `outbox_redeliver_after_seconds`.
        try:
            await redeliver_unfinished(runtime, published_before=utcnow())
        except Exception as exc:
            log.warning("outbox_redeliver_failed", error=str(exc))
    while not stop.is_set():
        published = 0
        try:
            published = await relay_once(runtime)
        except Exception as exc:  # broker or database down: the events wait in the table
            log.warning("outbox_relay_failed", error=str(exc))
        if published < RELAY_BATCH_SIZE:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), runtime.settings.outbox_poll_seconds)


async def dispatch_event(runtime: Runtime, event_id: uuid.UUID, handler_key: str) -> bool:
    """Run one handler for one event unless it already ran. Returns whether it ran now."""
    handler = handlers_for_key(handler_key)
    async with runtime.db.session() as session:
        if await session.get(ProcessedEvent, (event_id, handler_key)) is not None:
            return False
        event = await session.get(OutboxEvent, event_id)
        if event is None:
            log.warning("dispatch_event_missing", event_id=str(event_id), handler=handler_key)
            return False
        payload, name = event.payload, event.name
        # End the read transaction: on SQLite it holds the write lock, and a handler may need
        # its own short transactions (the mail sender does) before it touches this session.
        await session.rollback()
        token = current_handler_session.set(session)
        try:
            await handler(HandlerContext(session=session, runtime=runtime), payload)
        finally:
            current_handler_session.reset(token)
        session.add(ProcessedEvent(event_id=event_id, handler=handler_key))
        try:
            await session.commit()
        except IntegrityError:
            # A duplicate delivery ran concurrently and committed first; ours rolls back whole.
            await session.rollback()
            log.info("dispatch_event_duplicate", event_name=name, handler=handler_key)
            return False
        return True


def handlers_for_key(handler_key: str) -> EventHandler:
    handler = handler_named(handler_key)
    if handler is None:
        raise UnknownHandler(handler_key)
    return handler


async def drain(runtime: Runtime, max_rounds: int = 100) -> int:
    """Relay and run every pending event in this process, including the events handlers record,
    until none is left. For tests and one-off scripts: deterministic, no broker, no polling."""
    total = 0
    for _ in range(max_rounds):
        async with runtime.db.session() as session:
            events = [(event.id, event.name) for event in await _unpublished_batch(session, 1000)]
        if not events:
            return total
        for event_id, name in events:
            for handler in sorted(handlers_for(name)):
                await dispatch_event(runtime, event_id, handler)
            async with runtime.db.session() as session:
                await session.execute(
                    update(OutboxEvent)
                    .where(OutboxEvent.id == event_id)
                    .values(published_at=utcnow(), attempts=OutboxEvent.attempts + 1)
                )
                await session.commit()
            total += 1
    raise RuntimeError(f"events still pending after {max_rounds} rounds: a handler loop?")


@contextlib.asynccontextmanager
async def background(
    runtime: Runtime, *, relay: bool, periodic: bool, consume: bool
) -> AsyncIterator[None]:
    """Run the relay, the periodic scheduler and/or the broker consumers as tasks of this
    process while in the block; stop them (letting running jobs finish) on the way out."""
    from shopkeeper.core.jobs import run_scheduler

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
