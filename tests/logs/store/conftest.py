"""Store tests run on every adapter: chDB directly, clickhouse-connect (the production
adapter) on chDB, and clickhouse-connect over HTTP to a ClickHouse server: the one at
SHOPKEEPER_TEST_CLICKHOUSE_URL when set, else ClickHouse's HTTP interface served by chDB in a
child process (`shopkeeper.logs.store.chdb_http`). Under CI=true a server that cannot be had
fails these tests instead of skipping them."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator

import pytest

from shopkeeper.core.settings import Settings
from shopkeeper.logs.store import LogStore
from shopkeeper.logs.store.chdb_http import ChdbHttpServer
from shopkeeper.logs.store.server import ServerStore
from tests.conftest import IN_CI

SERVER_URL = os.environ.get("SHOPKEEPER_TEST_CLICKHOUSE_URL")


@pytest.fixture(scope="session")
def clickhouse_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A ClickHouse HTTP endpoint: the configured server, or chDB's in a child process."""
    if SERVER_URL:
        yield SERVER_URL
        return
    server = ChdbHttpServer(tmp_path_factory.mktemp("chdb-http"))
    try:
        url = server.start()
    except Exception as exc:
        message = f"the chDB ClickHouse HTTP server did not start: {exc}"
        if IN_CI:
            pytest.fail(message + " (CI=true: the ClickHouse server tests must run)")
        pytest.skip(message)
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture(params=["chdb", "clickhouse-connect-on-chdb", "clickhouse-server"])
async def store(
    request: pytest.FixtureRequest, log_store: LogStore, logs_settings: Settings
) -> AsyncIterator[LogStore]:
    if request.param == "chdb":
        yield log_store
        return
    if request.param == "clickhouse-server":
        url = request.getfixturevalue("clickhouse_url")
        database = f"shopkeeper_logs_test_{secrets.token_hex(3)}"
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
