"""WriteBatch: a unit of work's writes sent together (one statement on PostgreSQL), with the
same outcome on both databases: every row, every counted change, or nothing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Integer, String, bindparam, select, text

from shopkeeper.core.db import new_id, table_of, utcnow
from shopkeeper.core.messaging.events import OutboxEvent
from shopkeeper.core.runtime import Runtime
from shopkeeper.core.writes import WriteBatch

OUTBOX = table_of(OutboxEvent)
_BUMP = text("UPDATE outbox_events SET attempts = attempts + :bump_by WHERE name = :bump_name")
_BUMP = _BUMP.bindparams(
    bindparam("bump_by", type_=Integer()), bindparam("bump_name", type_=String())
)


class TooFew(Exception):
    pass


def event_row(name: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": new_id(),
        "name": name,
        "payload": payload,
        "created_at": utcnow(),
        "published_at": None,
        "attempts": 0,
    }


async def stored(runtime: Runtime) -> dict[str, tuple[dict[str, Any], int]]:
    async with runtime.db.session() as session:
        rows = await session.execute(select(OUTBOX.c.name, OUTBOX.c.payload, OUTBOX.c.attempts))
        return {name: (payload, attempts) for name, payload, attempts in rows}


async def test_a_batch_writes_every_row_and_counted_change(runtime: Runtime) -> None:
    async with runtime.db.session() as session:
        session.add(OutboxEvent(name="Existing", payload={"n": 0}))
        await session.commit()

        writes = WriteBatch()
        writes.insert(OUTBOX, [event_row("First", {"skus": ["A", "B"], "nested": {"x": 1}})])
        writes.change(
            _BUMP, {"bump_by": 2, "bump_name": "Existing"}, expected_rows=1, mismatch=TooFew
        )
        # Rows for the same table and columns later in the unit of work join the first insert.
        writes.insert(OUTBOX, [event_row("Second", {"text": "é ü"}), event_row("Third", {})])
        await writes.flush(session)
        await session.commit()

    assert await stored(runtime) == {
        "Existing": ({"n": 0}, 2),
        "First": ({"skus": ["A", "B"], "nested": {"x": 1}}, 0),
        "Second": ({"text": "é ü"}, 0),
        "Third": ({}, 0),
    }


async def test_a_short_count_raises_and_the_rollback_leaves_nothing(runtime: Runtime) -> None:
    async with runtime.db.session() as session:
        session.add(OutboxEvent(name="Existing", payload={}))
        await session.commit()

        writes = WriteBatch()
        writes.insert(OUTBOX, [event_row("Written", {})])
        writes.change(
            _BUMP, {"bump_by": 1, "bump_name": "Existing"}, expected_rows=1, mismatch=TooFew
        )
        writes.change(
            _BUMP, {"bump_by": 1, "bump_name": "Missing"}, expected_rows=1, mismatch=TooFew
        )
        with pytest.raises(ValueError, match="bump_by"):
            # The same prebuilt change twice would bind one parameter to two values.
            await writes.flush(session)
        await session.rollback()

        writes = WriteBatch()
        writes.insert(OUTBOX, [event_row("Written", {})])
        writes.change(
            _BUMP, {"bump_by": 1, "bump_name": "Missing"}, expected_rows=1, mismatch=TooFew
        )
        with pytest.raises(TooFew):
            await writes.flush(session)
        await session.rollback()

    assert await stored(runtime) == {"Existing": ({}, 0)}


async def test_rows_must_name_the_columns_that_have_defaults(runtime: Runtime) -> None:
    row = event_row("Partial", {})
    del row["attempts"]
    async with runtime.db.session() as session:
        writes = WriteBatch()
        writes.insert(OUTBOX, [row])
        with pytest.raises(ValueError, match="attempts"):
            await writes.flush(session)
        await session.rollback()
    assert await stored(runtime) == {}


def test_a_counted_change_names_its_error() -> None:
    with pytest.raises(ValueError, match="error"):
        WriteBatch().change(_BUMP, {"bump_by": 1, "bump_name": "x"}, expected_rows=1)
