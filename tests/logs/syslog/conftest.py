"""A syslog receiver on a free port writing into the shared store under the test's tenant."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from shopkeeper.core.settings import Settings
from shopkeeper.logs.ingest.syslog_server import SyslogServers, start_syslog
from shopkeeper.logs.ingest.writer import GroupCommitWriter
from shopkeeper.logs.store import LogStore
from tests.logs.conftest import make_key


@pytest.fixture
async def syslog(log_store: LogStore, tenant: str) -> AsyncIterator[SyslogServers]:
    writer = GroupCommitWriter(log_store, max_pending_lines=100_000, batch_lines=10_000)
    await writer.start()
    servers = await start_syslog(writer, port=0, tenant=tenant, flush_seconds=0.05)
    try:
        yield servers
    finally:
        await servers.stop()
        await writer.stop()


async def wait_for_lines(store: LogStore, tenant: str, count: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        rows = await store.query(
            f"SELECT count() AS n FROM {store.table} WHERE tenant = {{tenant:String}}",
            {"tenant": tenant},
        )
        if rows[0]["n"] >= count or time.monotonic() > deadline:
            return
        await asyncio.sleep(0.05)


async def loki_streams(
    logs_client: httpx.AsyncClient, settings: Settings, tenant: str, query: str, since_ns: int
) -> list[dict[str, Any]]:
    """The streams a Loki client reading as `tenant` gets for `query` since `since_ns`."""
    key = await make_key(settings, scopes=["logs:read"], tenant=tenant)
    response = await logs_client.get(
        "/api/v1/logs/loki/api/v1/query_range",
        params={
            "query": query,
            "start": str(since_ns),
            "end": str(time.time_ns() + 5_000_000_000),
            "limit": "1000",
            "direction": "forward",
        },
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result
