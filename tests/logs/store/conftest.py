"""Store tests run on every adapter: chDB directly, clickhouse-connect (the production
adapter) on chDB, and a real ClickHouse server when SHOPKEEPER_TEST_CLICKHOUSE_URL is set."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator

import pytest

from shopkeeper.core.settings import Settings
from shopkeeper.logs.store import LogStore
from shopkeeper.logs.store.server import ServerStore

SERVER_URL = os.environ.get("SHOPKEEPER_TEST_CLICKHOUSE_URL")


@pytest.fixture(params=["chdb", "clickhouse-connect-on-chdb", "clickhouse-server"])
async def store(
    request: pytest.FixtureRequest, log_store: LogStore, logs_settings: Settings
) -> AsyncIterator[LogStore]:
    if request.param == "chdb":
        yield log_store
        return
    if request.param == "clickhouse-server":
        if not SERVER_URL:
            pytest.skip("SHOPKEEPER_TEST_CLICKHOUSE_URL is not set (no ClickHouse server here)")
        url, database = SERVER_URL, f"shopkeeper_logs_test_{secrets.token_hex(3)}"
    else:
        # Same directory as `log_store`: chDB runs one engine per process, shared.
        url, database = f"chdb://{logs_settings.logs_path.resolve()}", logs_settings.logs_database
    server = ServerStore(url, database=database, retention_days=logs_settings.logs_retention_days)
    await server.open()
    try:
        yield server
    finally:
        if request.param == "clickhouse-server":
            await server.command(f"DROP DATABASE IF EXISTS {database}")
        await server.close()
