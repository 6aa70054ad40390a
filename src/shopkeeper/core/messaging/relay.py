"""Outbox relay: committed events become broker jobs, one per (event, handler).

The relay reads committed, unpublished `outbox_events`, publishes one job per (event, handler)
and marks the events published, all in one transaction: a crash before the commit publishes the
batch again (at-least-once), never loses it. On PostgreSQL `FOR UPDATE SKIP LOCKED` lets every
`serve` and `worker` process run a relay at once without publishing the same batch twice.
Published jobs whose handlers never finished are published again (`outbox.redeliver_stalled`),
and old finished events are pruned (`outbox.prune`).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

import structlog
from sqlalchemy import ColumnElement, ScalarSelect, case, delete, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shopkeeper.core.db import is_postgres, utcnow
from shopkeeper.core.messaging.dispatch import dispatch_event
from shopkeeper.core.messaging.events import OutboxEvent, ProcessedEvent
from shopkeeper.core.messaging.handlers import handlers_for, registered_event_names
from shopkeeper.core.messaging.host import DispatchHost, RelayHost
from shopkeeper.core.messaging.periodic import periodic
from shopkeeper.core.observability import EVENTS_PUBLISHED

log = structlog.get_logger(__name__)

RELAY_BATCH_SIZE = 100


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


async def relay_once(host: RelayHost, limit: int = RELAY_BATCH_SIZE) -> int:
    """Publish one batch of committed events to the job broker; returns how many."""
    await host.jobs.start()  # connect before locking rows, not while holding them
    async with host.db.session() as session:
        events = await _unpublished_batch(session, limit)
        for event in events:
            for handler in sorted(handlers_for(event.name)):
                await host.jobs.publish_dispatch(event.id, handler)
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
async def redeliver_stalled(host: RelayHost) -> int:
    """Publish again the jobs of events published long ago whose handlers never finished: a
    dead-lettered job after the cause was fixed, or jobs a crashed process took with it."""
    age = timedelta(seconds=host.settings.outbox_redeliver_after_seconds)
    return await redeliver_unfinished(host, published_before=utcnow() - age)


async def redeliver_unfinished(host: RelayHost, *, published_before: datetime) -> int:
    """Publish again the jobs of events published before `published_before` that have a handler
    without its `processed_events` marker. Handlers skip work they already did, so this is
    always safe; the `attempts` column bounds how often one event is tried."""
    await host.jobs.start()
    async with host.db.session() as session:
        query = (
            select(OutboxEvent)
            .where(
                OutboxEvent.published_at < published_before,
                OutboxEvent.attempts < host.settings.outbox_max_attempts,
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
                await host.jobs.publish_dispatch(event.id, key)
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
async def prune_finished_events(host: RelayHost) -> int:
    """Delete events older than `outbox_retention_days` whose handlers all finished (their
    markers go with them); the table would otherwise grow with every state change."""
    cutoff = utcnow() - timedelta(days=host.settings.outbox_retention_days)
    async with host.db.session() as session:
        finished = select(OutboxEvent.id).where(
            OutboxEvent.published_at < cutoff, _markers_of_event() >= _handler_count()
        )
        ids = list((await session.scalars(finished.limit(10_000))).all())
        if ids:
            await session.execute(delete(ProcessedEvent).where(ProcessedEvent.event_id.in_(ids)))
            await session.execute(delete(OutboxEvent).where(OutboxEvent.id.in_(ids)))
        await session.commit()
        return len(ids)


async def run_relay(host: RelayHost, stop: asyncio.Event) -> None:
    """Relay until `stop` is set: at once while there is a backlog, otherwise every poll."""
    if host.jobs.in_process:
        # The in-process broker's jobs died with the previous process; run them again now
        # rather than after `outbox_redeliver_after_seconds`.
        try:
            await redeliver_unfinished(host, published_before=utcnow())
        except Exception as exc:
            log.warning("outbox_redeliver_failed", error=str(exc))
    while not stop.is_set():
        published = 0
        try:
            published = await relay_once(host)
        except Exception as exc:  # broker or database down: the events wait in the table
            log.warning("outbox_relay_failed", error=str(exc))
        if published < RELAY_BATCH_SIZE:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), host.settings.outbox_poll_seconds)


async def drain(host: DispatchHost, max_rounds: int = 100) -> int:
    """Relay and run every pending event in this process, including the events handlers record,
    until none is left. For tests and one-off scripts: deterministic, no broker, no polling."""
    total = 0
    for _ in range(max_rounds):
        async with host.db.session() as session:
            events = [(event.id, event.name) for event in await _unpublished_batch(session, 1000)]
        if not events:
            return total
        for event_id, name in events:
            for handler in sorted(handlers_for(name)):
                await dispatch_event(host, event_id, handler)
            async with host.db.session() as session:
                await session.execute(
                    update(OutboxEvent)
                    .where(OutboxEvent.id == event_id)
                    .values(published_at=utcnow(), attempts=OutboxEvent.attempts + 1)
                )
                await session.commit()
            total += 1
    raise RuntimeError(f"events still pending after {max_rounds} rounds: a handler loop?")
