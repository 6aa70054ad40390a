"""The dispatcher hands a handler its typed event, rebuilt from the row in the database."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from shopkeeper.core.mail import OutboundMail
from shopkeeper.core.messaging.dispatch import UnknownHandler, dispatch_event
from shopkeeper.core.messaging.events import OutboxEvent, record_event
from shopkeeper.core.messaging.handlers import DuplicateEventName, handles
from shopkeeper.core.runtime import HandlerContext, Runtime
from tests.support.events import drain_events


@dataclass(frozen=True)
class Amount:
    value: int
    currency: str


@dataclass(frozen=True)
class ProbeShipped:
    parcel_id: uuid.UUID
    at: datetime
    items: tuple[str, ...]
    price: Amount
    carrier: str | None = None


received: list[tuple[HandlerContext, ProbeShipped]] = []


@handles(ProbeShipped)
async def note_probe(ctx: HandlerContext, event: ProbeShipped) -> None:
    received.append((ctx, event))
    await ctx.mailer.send(
        ctx.session,
        to="probe@example.com",
        template="welcome",
        context={"email": "x", "full_name": None},
    )


@pytest.fixture(autouse=True)
def _clear() -> None:
    received.clear()


async def test_a_handler_gets_the_frozen_event_it_subscribed_to(runtime: Runtime) -> None:
    sent = ProbeShipped(
        parcel_id=uuid.uuid4(),
        at=datetime(2026, 12, 4, 12, 30, tzinfo=UTC),
        items=("A-1", "B-2"),
        price=Amount(value=1250, currency="EUR"),
        carrier="post",
    )
    async with runtime.db.session() as session:
        record_event(session, sent)
        await session.commit()

    await drain_events(runtime)

    [(ctx, event)] = received
    assert event == sent
    assert isinstance(event.parcel_id, uuid.UUID)
    assert isinstance(event.items, tuple)
    assert isinstance(event.price, Amount)
    assert ctx.runtime is runtime
    async with runtime.db.session() as session:
        # The handler's mail committed with its marker, in the dispatcher's session.
        assert await session.scalar(select(func.count()).select_from(OutboundMail)) == 1


async def test_a_payload_from_another_version_still_decodes(runtime: Runtime) -> None:
    """An older producer without `carrier`, a newer one with a field this build lacks."""
    parcel_id = uuid.uuid4()
    async with runtime.db.session() as session:
        row = OutboxEvent(
            name="ProbeShipped",
            payload={
                "parcel_id": str(parcel_id),
                "at": "2026-12-04T12:30:00+00:00",
                "items": ["A-1"],
                "price": {"value": 5, "currency": "EUR", "tax": 1},
                "insured": True,
            },
        )
        session.add(row)
        await session.commit()
        event_id = row.id

    key = f"{note_probe.__module__}.{note_probe.__qualname__}"
    assert await dispatch_event(runtime, event_id, key) is True
    assert await dispatch_event(runtime, event_id, key) is False  # the marker holds

    [(_, event)] = received
    assert event == ProbeShipped(
        parcel_id=parcel_id,
        at=datetime(2026, 12, 4, 12, 30, tzinfo=UTC),
        items=("A-1",),
        price=Amount(value=5, currency="EUR"),
    )


async def test_a_handler_this_process_lacks_is_refused(runtime: Runtime) -> None:
    with pytest.raises(UnknownHandler):
        await dispatch_event(runtime, uuid.uuid4(), "somewhere.removed_handler")


def test_two_event_classes_may_not_share_a_name() -> None:
    @dataclass(frozen=True)
    class ProbeShipped:  # same name as the module's, another class
        parcel_id: uuid.UUID

    async def other(ctx: HandlerContext, event: ProbeShipped) -> None: ...

    with pytest.raises(DuplicateEventName):
        handles(ProbeShipped)(other)
