"""The dispatcher: run one handler for one stored event, exactly once in database terms.

The handler's changes and the `processed_events` marker commit in one transaction, and a
second delivery finds the marker (or collides with it on the primary key and rolls back). The
handler receives the event rebuilt as its dataclass (`messaging.codec`), and a context the host
makes around the dispatcher's session: work the handler does in that session (a queued e-mail,
an update) commits with the marker.
"""

from __future__ import annotations

import uuid

import structlog
from sqlalchemy.exc import IntegrityError

from shopkeeper.core.messaging.codec import decode
from shopkeeper.core.messaging.events import OutboxEvent, ProcessedEvent
from shopkeeper.core.messaging.handlers import event_type_named, handler_named, handlers_for
from shopkeeper.core.messaging.host import DispatchHost

log = structlog.get_logger(__name__)


class UnknownHandler(LookupError):
    """A job names a handler this process does not have (a deploy with mismatched versions)."""


async def dispatch_event(host: DispatchHost, event_id: uuid.UUID, handler_key: str) -> bool:
    """Run one handler for one event unless it already ran. Returns whether it ran now."""
    if handler_named(handler_key) is None:
        raise UnknownHandler(handler_key)
    async with host.db.session() as session:
        if await session.get(ProcessedEvent, (event_id, handler_key)) is not None:
            return False
        row = await session.get(OutboxEvent, event_id)
        if row is None:
            log.warning("dispatch_event_missing", event_id=str(event_id), handler=handler_key)
            return False
        payload, name = row.payload, row.name
        handler = handlers_for(name).get(handler_key)
        event_type = event_type_named(name)
        if handler is None or event_type is None:
            raise UnknownHandler(f"{handler_key} does not handle {name}")
        event: object = decode(event_type, payload)
        # End the read transaction: on SQLite it holds the write lock, and a handler may need
        # its own short transactions (the mail sender does) before it touches this session.
        await session.rollback()
        await handler(host.handler_context(session), event)
        session.add(ProcessedEvent(event_id=event_id, handler=handler_key))
        try:
            await session.commit()
        except IntegrityError:
            # A duplicate delivery ran concurrently and committed first; ours rolls back whole.
            await session.rollback()
            log.info("dispatch_event_duplicate", event_name=name, handler=handler_key)
            return False
        return True
