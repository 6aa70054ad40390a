"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from shopkeeper.core.db import Database
from shopkeeper.core.migrate import all_metadata


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, all_metadata()))


async def test_migrations_match_models(shared_database: Database, backend: str) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite reflection cannot tell JSON from JSONB or see server-side types")
    async with shared_database.engine.connect() as connection:
        differences = await connection.run_sync(_differences)
    assert differences == []
