"""Gateways publish to the stream and answer after the broker confirms; the writer stores."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from asgi_lifespan import LifespanManager

from shopkeeper.app import create_app
from shopkeeper.core.settings import Settings
from shopkeeper.logs.buffer.publisher import BufferPublisher
from shopkeeper.logs.ingest.errors import IngestOverloaded
from shopkeeper.logs.records import LogRecord
from shopkeeper.logs.store import LogStore, records_batch
from shopkeeper.logs.writer import BufferWriter
from tests.logs.buffer.conftest import AMQP_URL
from tests.logs.conftest import make_key, stored_rows


def publisher(stream: str, url: str = AMQP_URL, **options: object) -> BufferPublisher:
    settings: dict[str, object] = {
        "stream": stream,
        "max_bytes": 1024**3,
        "max_in_flight_lines": 100_000,
        "confirm_timeout": 5.0,
    } | options
    return BufferPublisher(url, **settings)  # type: ignore[arg-type]


async def drain(store: LogStore, stream: str) -> int:
    writer = BufferWriter(store, AMQP_URL, stream, 1024**3, idle_exit_seconds=1.0)
    await writer.run()
    return writer.stored_lines


async def test_published_batches_are_stored_once_even_when_read_twice(
    log_store: LogStore, tenant: str, stream_name: str
) -> None:
    sender = publisher(stream_name)
    await sender.start()
    try:
        for number in range(5):
            records = [LogRecord(message=f"b{number} l{i}", service="api") for i in range(100)]
            await sender.write([records_batch(records, tenant=tenant, source="ndjson")])
    finally:
        await sender.stop()

    assert await drain(log_store, stream_name) == 500
    rows = await stored_rows(log_store, tenant)
    assert sorted(row["message"] for row in rows) == sorted(
        f"b{n} l{i}" for n in range(5) for i in range(100)
    )
    # A second writer reading the same stream resumes after the recorded group, then replays
    # it under the same deduplication tokens: nothing is stored twice.
    await drain(log_store, stream_name)
    assert len(await stored_rows(log_store, tenant)) == 500


async def test_an_unreachable_buffer_is_429_and_a_full_one_too(tenant: str) -> None:
    batch = records_batch([LogRecord(message="x")], tenant=tenant, source="ndjson")
    down = publisher("any", url="amqp://guest:guest@127.0.0.1:1/", confirm_timeout=1.0)
    await down.start()
    with pytest.raises(IngestOverloaded) as raised:
        await down.write([batch])
    assert raised.value.headers["Retry-After"]

    full = publisher("any", max_in_flight_lines=1)
    full.in_flight_lines = 1  # another request is waiting for its confirm
    with pytest.raises(IngestOverloaded):
        await full.write([batch])


async def test_http_ingest_through_the_buffer_answers_after_the_confirm(
    logs_settings: Settings, log_store: LogStore, tenant: str, stream_name: str
) -> None:
    settings = logs_settings.model_copy(
        update={"logs_buffer_url": AMQP_URL, "logs_buffer_stream": stream_name}
    )
    key = await make_key(settings, scopes=["logs:write"], tenant=tenant)
    app = create_app(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http,
    ):
        response = await http.post(
            "/api/v1/logs/ingest",
            content=b'{"message": "via buffer", "level": "warning", "service": "gw"}\n' * 3,
            headers={"Content-Type": "application/x-ndjson", "Authorization": f"Bearer {key}"},
        )
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 3}
    # Confirmed by the broker, not yet stored: the writer stores it.
    assert await stored_rows(log_store, tenant) == []
    await asyncio.wait_for(drain(log_store, stream_name), 30)
    rows = await stored_rows(log_store, tenant)
    assert [(row["message"], row["level"], row["service"]) for row in rows] == [
        ("via buffer", "warn", "gw")
    ] * 3


async def test_http_ingest_with_the_buffer_down_is_429_with_retry_after(
    logs_settings: Settings, log_store: LogStore, tenant: str
) -> None:
    settings = logs_settings.model_copy(
        update={
            "logs_buffer_url": "amqp://guest:guest@127.0.0.1:1/",
            "logs_buffer_confirm_timeout": 1.0,
        }
    )
    key = await make_key(settings, scopes=["logs:write"], tenant=tenant)
    app = create_app(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http,
    ):
        ndjson = await http.post(
            "/api/v1/logs/ingest",
            content=b'{"message": "lost?"}\n',
            headers={"Content-Type": "application/x-ndjson", "Authorization": f"Bearer {key}"},
        )
        loki = await http.post(
            "/api/v1/logs/loki/api/v1/push",
            json={"streams": [{"stream": {"job": "x"}, "values": [["1", "lost?"]]}]},
            headers={"Authorization": f"Bearer {key}"},
        )
    for response in (ndjson, loki):
        assert response.status_code == 429, response.text
        assert int(response.headers["Retry-After"]) >= 1
    assert await stored_rows(log_store, tenant) == []
