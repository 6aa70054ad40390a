"""Transactional outbox: handlers run once per event, whatever the delivery count."""

from __future__ import annotations

import asyncio
import email
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import func, select, update
from taskiq import InMemoryBroker

from shopkeeper.core.db import utcnow
from shopkeeper.core.events import OutboxEvent, ProcessedEvent
from shopkeeper.core.mail import OutboundMail
from shopkeeper.core.outbox import (
    dispatch_event,
    load_handlers,
    prune_finished_events,
    redeliver_stalled,
)
from shopkeeper.core.runtime import Runtime
from tests.support.events import drain_events

WELCOME = "shopkeeper.accounts.handlers.send_welcome_mail"


async def _register(client: httpx.AsyncClient, email_address: str) -> None:
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": email_address, "password": "correct-horse-1", "full_name": "Ada"},
    )
    assert response.status_code == 201, response.text


def _eml_files(runtime: Runtime) -> list[Path]:
    return sorted((runtime.settings.var_dir / "mail").glob("*.eml"))


async def test_registration_writes_one_welcome_eml_without_smtp(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await _register(client, "ada@example.com")

    await drain_events(runtime)

    files = _eml_files(runtime)
    assert len(files) == 1
    message = email.message_from_bytes(files[0].read_bytes())
    assert message["To"] == "ada@example.com"
    assert message["Subject"] == "Welcome to shopkeeper, Ada"
    bodies = {part.get_content_type(): part.get_payload(decode=True) for part in message.walk()}
    assert b"ada@example.com" in bodies["text/plain"]
    assert b"<strong>ada@example.com</strong>" in bodies["text/html"]


async def test_redelivered_event_runs_its_handler_once(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    load_handlers()
    await _register(client, "bob@example.com")
    async with runtime.db.session() as session:
        event_id = await session.scalar(
            select(OutboxEvent.id).where(OutboxEvent.name == "UserRegistered")
        )
    assert event_id is not None

    # Three deliveries of the same job, two of them concurrent, as a broker may do.
    first, second = await asyncio.gather(
        dispatch_event(runtime, event_id, WELCOME), dispatch_event(runtime, event_id, WELCOME)
    )
    third = await dispatch_event(runtime, event_id, WELCOME)

    assert [first, second, third].count(True) == 1
    async with runtime.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(OutboundMail)) == 1
        markers = await session.scalar(
            select(func.count())
            .select_from(ProcessedEvent)
            .where(ProcessedEvent.event_id == event_id)
        )
        assert markers == 1
    await drain_events(runtime)
    assert len(_eml_files(runtime)) == 1


async def _age_published_events(runtime: Runtime, hours: float) -> None:
    async with runtime.db.session() as session:
        await session.execute(
            update(OutboxEvent).values(published_at=utcnow() - timedelta(hours=hours), attempts=1)
        )
        await session.commit()


async def test_jobs_lost_after_publishing_are_published_again(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    load_handlers()
    await _register(client, "lost@example.com")
    # The relay published the event, then its process died and took the in-memory job along.
    await _age_published_events(runtime, hours=1)

    try:
        assert await redeliver_stalled(runtime) == 1
        broker = runtime.jobs.broker
        assert isinstance(broker, InMemoryBroker)
        await broker.wait_all()
        await drain_events(runtime)
        assert await redeliver_stalled(runtime) == 0
    finally:
        await runtime.jobs.stop()

    assert len(_eml_files(runtime)) == 1


async def test_old_finished_events_are_pruned_and_unfinished_ones_kept(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    load_handlers()
    await _register(client, "finished@example.com")
    await drain_events(runtime)
    await _register(client, "unfinished@example.com")
    await _age_published_events(runtime, hours=24 * (runtime.settings.outbox_retention_days + 1))

    assert await prune_finished_events(runtime) == 2  # UserRegistered and MailQueued

    async with runtime.db.session() as session:
        [kept] = (await session.scalars(select(OutboxEvent))).all()
    assert kept.payload["email"] == "unfinished@example.com"
