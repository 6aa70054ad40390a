"""Transactional outbox: events are rows written in the same transaction as the state change.

A service calls `record_event(session, SomethingHappened(...))` before it commits; the event
exists if and only if the change does. The relay (see `core.outbox`) later hands committed
events to the job broker, and every handler runs at most once per event (`processed_events`).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import ForeignKey, Index, String, Uuid
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from shopkeeper.core.db import Base, JSONDocument, UTCDateTime, new_id, table_of, utcnow
from shopkeeper.core.writes import WriteBatch

if TYPE_CHECKING:
    from shopkeeper.core.runtime import Runtime


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


def event_name(event: object) -> str:
    return type(event).__name__


def _jsonable(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


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
    if not dataclasses.is_dataclass(event) or isinstance(event, type):
        raise TypeError("events are dataclass instances")
    return {
        "id": new_id(),
        "name": event_name(event),
        "payload": _jsonable(dataclasses.asdict(event)),
    }


@dataclasses.dataclass(frozen=True, slots=True)
class HandlerContext:
    """What a handler gets: the dispatcher's open session, whose transaction also records the
    `processed_events` row (so a database effect and its dedup key commit together), and the
    process runtime (settings, database, mailer, realtime hub)."""

    session: AsyncSession
    runtime: Runtime


EventHandler = Callable[[HandlerContext, dict[str, Any]], Awaitable[None]]

_HANDLERS: dict[str, dict[str, EventHandler]] = {}

H = TypeVar("H", bound=EventHandler)


def handles(*event_types: type) -> Callable[[H], H]:
    """Register a handler for one or more event classes. The handler's qualified name is its key."""

    def register(handler: H) -> H:
        key = f"{handler.__module__}.{handler.__qualname__}"
        for event_type in event_types:
            _HANDLERS.setdefault(event_type.__name__, {})[key] = handler
        return handler

    return register


def handlers_for(name: str) -> dict[str, EventHandler]:
    return dict(_HANDLERS.get(name, {}))


def handler_named(key: str) -> EventHandler | None:
    """The handler registered under `key` (its module-qualified name), if this process has it."""
    for handlers in _HANDLERS.values():
        if key in handlers:
            return handlers[key]
    return None


def registered_event_names() -> list[str]:
    return sorted(name for name, handlers in _HANDLERS.items() if handlers)
