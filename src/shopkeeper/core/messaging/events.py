"""Transactional outbox: events are rows written in the same transaction as the state change.

An event is a frozen dataclass named in the past tense (`OrderPaid`), holding ids and plain
values. A service calls `record_event(session, OrderPaid(...))` before it commits; the event
exists if and only if the change does. The relay (`messaging.relay`) later hands committed
events to the broker, and the dispatcher (`messaging.dispatch`) runs each handler at most once
per event (`processed_events`), giving it the event rebuilt as its dataclass.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Uuid
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from shopkeeper.core.db import Base, JSONDocument, UTCDateTime, new_id, table_of, utcnow
from shopkeeper.core.messaging.codec import encode
from shopkeeper.core.writes import WriteBatch


class OutboxEvent(Base):
    __tablename__ = "outbox_events"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    attempts: Mapped[int] = mapped_column(default=0)

    __table_args__ = (Index("ix_outbox_events_unpublished", "published_at", "created_at"),)


class ProcessedEvent(Base):
    """One row per (event, handler) that ran to completion: the consumer's idempotency key."""

    __tablename__ = "processed_events"

    event_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("outbox_events.id", ondelete="CASCADE"), primary_key=True
    )
    handler: Mapped[str] = mapped_column(String(200), primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def event_name(event_type: type) -> str:
    """The name an event is stored and routed under: its class name, unique among events
    (`messaging.handlers` refuses a second class of the same name)."""
    return event_type.__name__


def record_event(session: AsyncSession, event: object) -> OutboxEvent:
    """Add `event` (a frozen dataclass) to the session's transaction; the caller commits."""
    row = OutboxEvent(**_event_values(event))
    session.add(row)
    return row


def queue_events(writes: WriteBatch, events: Sequence[object]) -> None:
    """Add `events` to a batch of writes (bypassing the unit of work): for hot paths
    (checkout) that write several events and no other ORM objects. They commit with the
    transaction the batch is flushed in, like `record_event`'s."""
    now = utcnow()
    writes.insert(
        table_of(OutboxEvent),
        [{**_event_values(event), "created_at": now, "attempts": 0} for event in events],
    )


def _event_values(event: object) -> dict[str, Any]:
    return {"id": new_id(), "name": event_name(type(event)), "payload": encode(event)}
