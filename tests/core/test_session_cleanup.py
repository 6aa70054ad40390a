"""Issue 18 item 11: when the database connection dies under a request, closing its session
does not fail too, so the client gets the 503 the error handler chose, not a protocol error."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from shopkeeper.core.db import Database
from shopkeeper.core.settings import Settings


async def test_a_session_on_a_killed_connection_closes_quietly(
    backend: str, settings: Settings
) -> None:
    if backend != "postgresql":
        pytest.skip("a SQLite connection cannot be cut from outside")
    database = Database(settings)
    killer = Database(settings)
    try:
        async with database.session() as session:
            pid = await session.scalar(text("SELECT pg_backend_pid()"))
            async with killer.session() as other:
                await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            with pytest.raises(Exception):  # the driver's own disconnect error
                await session.execute(text("SELECT 1"))
            # Leaving the block rolls back and closes on the dead connection: must not raise.
        async with database.session() as session:
            assert await session.scalar(text("SELECT 1")) == 1  # the pool recovered
    finally:
        await database.dispose()
        await killer.dispose()


async def test_an_open_transaction_on_a_killed_connection_closes_quietly(
    backend: str, settings: Settings
) -> None:
    if backend != "postgresql":
        pytest.skip("a SQLite connection cannot be cut from outside")
    database = Database(settings)
    killer = Database(settings)
    try:
        async with database.session() as session:
            pid = await session.scalar(text("SELECT pg_backend_pid()"))
            async with killer.session() as other:
                await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        async with database.session() as session:
            assert await session.scalar(text("SELECT 1")) == 1
    finally:
        await database.dispose()
        await killer.dispose()
