"""Loki's live tail over a real WebSocket (uvicorn on a loopback port, the `websockets`
client): the history since `start` from storage, then the lines ingested over HTTP as they are
stored, in order and filtered by the session's query; keys as everywhere; a client that does
not read holds up neither ingest nor the other sessions."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
import pytest
import websockets

from shopkeeper.core.settings import Settings
from shopkeeper.logs.records import LogRecord
from shopkeeper.logs.store import LogStore, records_batch
from tests.logs.conftest import LiveIngest, LiveServer, make_key

NS = 1_000_000_000


def tail_url(server: LiveServer, **params: str) -> str:
    base = server.url.replace("http://", "ws://") + "/api/v1/logs/loki/api/v1/tail"
    return f"{base}?{urlencode(params)}"


async def store(log_store: LogStore, tenant: str, *lines: tuple[int, str]) -> None:
    records = [LogRecord(message=m, timestamp_ns=ts, service="tailed") for ts, m in lines]
    await log_store.insert(records_batch(records, tenant=tenant, source="ndjson"))


async def ingest(target: LiveIngest, *documents: dict[str, Any]) -> None:
    body = b"".join(orjson.dumps(d, option=orjson.OPT_APPEND_NEWLINE) for d in documents)
    async with httpx.AsyncClient(base_url=target.url, timeout=60) as http:
        answer = await http.post(
            "/api/v1/logs/ingest",
            content=body,
            headers={
                "Authorization": f"Bearer {target.key}",
                "Content-Type": "application/x-ndjson",
            },
        )
    assert answer.status_code == 200, answer.text


async def next_frame(socket: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), timeout=15))
    assert set(body) == {"streams", "dropped_entries"}
    return body


def lines_of(body: dict[str, Any]) -> list[str]:
    values = [value for stream in body["streams"] for value in stream["values"]]
    return [value[1] for value in sorted(values, key=lambda value: int(value[0]))]


async def frame(socket: Any) -> list[str]:
    return lines_of(await next_frame(socket))


async def test_tail_sends_the_history_then_new_matching_lines(
    live_server: LiveServer,
    live_ingest: LiveIngest,
    log_store: LogStore,
    logs_settings: Settings,
    tenant: str,
) -> None:
    key = await make_key(logs_settings, scopes=["logs:read"], tenant=tenant)
    now = time.time_ns()
    await store(log_store, tenant, (now - 90 * NS, "too old"), (now - 30 * NS, "history one"))
    url = tail_url(
        live_server, query='{service="tailed"} != "skip"', start=str(now - 60 * NS), token=key
    )
    async with websockets.connect(url) as socket:
        assert await frame(socket) == ["history one"]
        await ingest(
            live_ingest,
            {"service": "tailed", "message": "live two"},
            {"service": "tailed", "message": "skip me"},
            {"service": "other", "message": "another service"},
        )
        assert await frame(socket) == ["live two"]
        # Another tenant's line never shows.
        other = LiveIngest(
            live_ingest.url,
            await make_key(logs_settings, scopes=["logs:write"], tenant=tenant + "_other"),
        )
        await ingest(other, {"service": "tailed", "message": "not yours"})
        await ingest(live_ingest, {"service": "tailed", "message": "live three"})
        assert await frame(socket) == ["live three"]


async def test_tail_keeps_the_order_and_runs_the_whole_pipeline(
    live_server: LiveServer, live_ingest: LiveIngest, logs_settings: Settings, tenant: str
) -> None:
    key = await make_key(logs_settings, scopes=["logs:read"], tenant=tenant)
    query = '{service="api", level=~"warn|error"} |= "GET" | json | status >= 500'
    url = tail_url(live_server, query=query, start=str(time.time_ns()), token=key)
    async with websockets.connect(url) as socket:
        base = time.time_ns()
        documents = [
            {
                "service": "api",
                "level": "error" if n % 2 else "info",
                "ts": base + n * 1000,
                "message": json.dumps({"verb": "GET", "status": 400 + n % 4 * 100, "n": n}),
            }
            for n in range(40)
        ]
        # Three requests, the second with the oldest timestamps: each frame is in time order.
        await ingest(live_ingest, *documents[10:20])
        await ingest(live_ingest, *documents[:10])
        await ingest(live_ingest, *documents[20:])
        expected = [
            d["message"]
            for d in documents
            if d["level"] == "error" and json.loads(d["message"])["status"] >= 500
        ]
        received: list[str] = []
        frames: list[list[str]] = []
        while len(received) < len(expected):
            lines = await frame(socket)
            frames.append(lines)
            received += lines
        assert sorted(received) == sorted(expected)
        for lines in frames:  # each frame in time order
            numbers = [json.loads(line)["n"] for line in lines]
            assert numbers == sorted(numbers)


async def catch_up(socket: Any, target: LiveIngest, tag: str) -> tuple[list[str], int]:
    """Reads `socket` until a line sent after the flood arrives (one is sent after each frame
    read, until one does): the lines it got and how many it was told were dropped."""
    got: list[str] = []
    dropped = 0
    while not any(line.startswith(tag) for line in got):
        body = await next_frame(socket)
        got += lines_of(body)
        for entry in body["dropped_entries"] or []:
            assert entry["labels"].get("service", "flood") == "flood"
            dropped += 1
        await ingest(target, {"service": "flood", "message": f"{tag} {len(got)}"})
    return [line for line in got if not line.startswith(tag)], dropped


async def test_a_client_that_does_not_read_holds_up_neither_ingest_nor_other_sessions(
    live_server: LiveServer, live_ingest: LiveIngest, logs_settings: Settings, tenant: str
) -> None:
    key = await make_key(logs_settings, scopes=["logs:read"], tenant=tenant)
    url = tail_url(live_server, query='{service="flood"}', start=str(time.time_ns()), token=key)
    # Random text: the WebSocket's compression must not shrink the flood into its buffers.
    padding = [secrets.token_hex(500) for _ in range(100)]
    requests, per_request = 30, 1000
    async with (
        websockets.connect(url, max_queue=1, max_size=None, ping_interval=None) as stalled,
        websockets.connect(url, max_size=None) as reader,
    ):
        frames: list[dict[str, Any]] = []

        async def read_flood() -> None:
            while True:
                frames.append(await next_frame(reader))

        reading = asyncio.create_task(read_flood())
        # The stalled client reads nothing while every ingest request is answered.
        for r in range(requests):
            await ingest(
                live_ingest,
                *(
                    {"service": "flood", "message": f"{r:03} {n:04} {padding[n % 100]}"}
                    for n in range(per_request)
                ),
            )
        reading.cancel()  # cancelling recv loses no message (websockets keeps it queued)
        with contextlib.suppress(asyncio.CancelledError):
            await reading
        # The stalled client now reads: some lines, others reported as dropped (Loki's
        # `dropped_entries`), none twice; then it is live again.
        flood, dropped = await catch_up(stalled, live_ingest, "stalled")
        assert dropped > 0
        assert len(flood) < requests * per_request
        assert len(set(flood)) == len(flood)
        assert flood == sorted(flood)
        # The reading client got the flood in order, none twice (what the feed could not
        # examine in time reported dropped), and is live too.
        received = [line for body in frames for line in lines_of(body)]
        later, _ = await catch_up(reader, live_ingest, "after")
        received += [line for line in later if not line.startswith("stalled")]
        assert received
        assert received == sorted(received)
        assert len(set(received)) == len(received)


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
