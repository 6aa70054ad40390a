"""Loki's live tail over a real WebSocket (uvicorn on a loopback port, the `websockets`
client): the history since `start`, then new lines as they are stored; keys as everywhere."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import urlencode

import pytest
import websockets

from shopkeeper.core.settings import Settings
from shopkeeper.logs.records import LogRecord
from shopkeeper.logs.store import LogStore, records_batch
from tests.logs.conftest import LiveServer, make_key

NS = 1_000_000_000


def tail_url(server: LiveServer, **params: str) -> str:
    base = server.url.replace("http://", "ws://") + "/api/v1/logs/loki/api/v1/tail"
    return f"{base}?{urlencode(params)}"


async def store(log_store: LogStore, tenant: str, *lines: tuple[int, str]) -> None:
    records = [LogRecord(message=m, timestamp_ns=ts, service="tailed") for ts, m in lines]
    await log_store.insert(records_batch(records, tenant=tenant, source="ndjson"))


async def frame(socket: Any) -> list[str]:
    body = json.loads(await asyncio.wait_for(socket.recv(), timeout=15))
    assert set(body) == {"streams", "dropped_entries"}
    return [value[1] for stream in body["streams"] for value in stream["values"]]


async def test_tail_sends_the_history_then_new_matching_lines(
    live_server: LiveServer, log_store: LogStore, logs_settings: Settings, tenant: str
) -> None:
    key = await make_key(logs_settings, scopes=["logs:read"], tenant=tenant)
    now = time.time_ns()
    await store(log_store, tenant, (now - 90 * NS, "too old"), (now - 30 * NS, "history one"))
    url = tail_url(
        live_server, query='{service="tailed"} != "skip"', start=str(now - 60 * NS), token=key
    )
    async with websockets.connect(url) as socket:
        assert await frame(socket) == ["history one"]
        await store(log_store, tenant, (time.time_ns(), "live two"), (time.time_ns(), "skip me"))
        assert await frame(socket) == ["live two"]
        # Another tenant's line never shows.
        await store(log_store, "someone_else", (time.time_ns(), "not yours"))
        await store(log_store, tenant, (time.time_ns(), "live three"))
        assert await frame(socket) == ["live three"]


async def test_tail_with_the_authorization_header(
    live_server: LiveServer, log_store: LogStore, logs_settings: Settings, tenant: str
) -> None:
    key = await make_key(logs_settings, scopes=["logs:read"], tenant=tenant)
    await store(log_store, tenant, (time.time_ns() - NS, "by header"))
    url = tail_url(live_server, query='{service="tailed"}')
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {key}"}) as s:
        assert await frame(s) == ["by header"]


@pytest.mark.parametrize("scopes", [None, ["logs:write"]])
async def test_tail_refuses_without_logs_read(
    live_server: LiveServer, logs_settings: Settings, tenant: str, scopes: list[str] | None
) -> None:
    params = {"query": '{service="tailed"}'}
    if scopes:
        params["token"] = await make_key(logs_settings, scopes=scopes, tenant=tenant)
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        async with websockets.connect(tail_url(live_server, **params)):
            pass
    assert refused.value.response.status_code == 403
