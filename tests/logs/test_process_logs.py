"""The standalone processes (`shopkeeper worker`, `shopkeeper scheduler`) ship their own logs
into the logs system under a service of their own, as `serve` does: here to a ClickHouse
server (chDB behind ClickHouse's HTTP interface), found there by a query."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shopkeeper.core.settings import Settings
from shopkeeper.logs.store.chdb_http import ChdbHttpServer
from tests.conftest import BROKER_URL, IN_CI, require_service, settings_env
from tests.support.platform import eventually


@pytest.fixture
def chdb_server(tmp_path: Path) -> Iterator[str]:
    server = ChdbHttpServer(tmp_path / "chdb")
    try:
        url = server.start()
    except Exception as exc:
        if IN_CI:
            pytest.fail(f"the chDB ClickHouse HTTP server did not start: {exc}")
        pytest.skip(f"the chDB ClickHouse HTTP server did not start: {exc}")
    try:
        yield url
    finally:
        server.stop()


async def stored_messages(url: str, service: str) -> list[str]:
    query = (
        "SELECT message FROM shopkeeper_logs.logs "
        f"WHERE service = '{service}' ORDER BY timestamp FORMAT JSONEachRow"
    )
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.post(url, content=query)
    if answer.status_code != 200:  # the table appears with the process's first write
        return []
    return [line.split('"message":"', 1)[1].rstrip('"}') for line in answer.text.splitlines()]


@pytest.mark.services
async def test_worker_and_scheduler_ship_their_own_logs(
    settings: Settings, chdb_server: str, process_factory: Callable[..., Any]
) -> None:
    require_service("RabbitMQ", "127.0.0.1", 5672)
    env = settings_env(
        settings,
        SHOPKEEPER_LOGS_ENABLED="true",
        SHOPKEEPER_LOGS_CLICKHOUSE_URL=chdb_server,
        SHOPKEEPER_BROKER_URL=BROKER_URL,
        SHOPKEEPER_LOG_JSON="true",
        SHOPKEEPER_LOG_LEVEL="INFO",
    )
    worker = process_factory(["worker"], env)
    scheduler = process_factory(["scheduler"], env)

    async def started() -> bool:
        return "worker_started" in await stored_messages(
            chdb_server, "shopkeeper-worker"
        ) and "scheduler_started" in await stored_messages(chdb_server, "shopkeeper-scheduler")

    try:
        await eventually(started, timeout=60, what="both processes' start lines in the store")
    except AssertionError as exc:
        raise AssertionError(worker.output()[-3000:] + scheduler.output()[-3000:]) from exc
    scheduler.stop()
    # What a process logs while it stops is flushed before it exits.
    assert "scheduler_stopped" in await stored_messages(chdb_server, "shopkeeper-scheduler")
