"""Loki push: a real Loki client library, and Loki's protobuf + snappy and JSON bodies."""

from __future__ import annotations

import logging
import time

import cramjam
import httpx
import logging_loki
import orjson

from shopkeeper.logs.ingest.loki_proto import PushRequest
from shopkeeper.logs.store import LogStore
from tests.logs.conftest import LiveIngest, stored_rows

PATH = "/api/v1/logs/loki/api/v1/push"


async def test_the_python_logging_loki_handler_pushes_lines(
    live_ingest: LiveIngest, log_store: LogStore, tenant: str
) -> None:
    handler = logging_loki.LokiHandler(
        url=live_ingest.url + PATH,
        tags={"job": "checkout", "env": "test"},
        auth=("shipper", live_ingest.key),
        version="1",
    )
    logger = logging.getLogger(f"loki-test-{tenant}")
    logger.propagate = False
    logger.addHandler(handler)
    before = time.time_ns()
    logger.warning("payment declined", extra={"tags": {"order": "o-1"}})
    logger.error("payment failed")
    handler.close()
    rows = await stored_rows(log_store, tenant)
    assert [row["message"] for row in rows] == ["payment declined", "payment failed"]
    first = rows[0]
    assert first["service"] == "checkout"
    assert first["level"] == "warn"
    assert rows[1]["level"] == "error"
    assert first["source"] == "loki"
    assert first["attributes"]["env"] == "test"
    assert first["attributes"]["order"] == "o-1"
    assert first["attributes"]["job"] == "checkout"
    assert set(first["label_keys"]) == {"job", "env", "order", "logger", "severity"}
    assert before <= first["ns"] <= time.time_ns()


async def test_protobuf_snappy_pushes_keep_labels_and_structured_metadata(
    live_ingest: LiveIngest, log_store: LogStore, tenant: str
) -> None:
    request = PushRequest()
    stream = request.streams.add(labels='{service_name="api", instance="web-2", region="eu"}')
    now = time.time_ns()
    for i in range(3):
        entry = stream.entries.add(line=f"GET /orders {i}")
        entry.timestamp.seconds, entry.timestamp.nanos = divmod(now + i, 1_000_000_000)
        entry.structuredMetadata.add(name="trace_id", value=f"trace-{i}")
        entry.structuredMetadata.add(name="http.status", value="200")
    body = bytes(cramjam.snappy.compress_raw(request.SerializeToString()))
    async with httpx.AsyncClient() as http:
        response = await http.post(
            live_ingest.url + PATH,
            content=body,
            headers={
                "Content-Type": "application/x-protobuf",
                "Authorization": f"Bearer {live_ingest.key}",
            },
        )
    assert response.status_code == 204, response.text
    rows = await stored_rows(log_store, tenant)
    assert [row["ns"] for row in rows] == [now, now + 1, now + 2]
    assert rows[0]["service"] == "api"
    assert rows[0]["host"] == "web-2"
    assert rows[0]["level"] == "unknown"
    assert rows[2]["trace_id"] == "trace-2"
    assert rows[0]["attributes"] == {
        "service_name": "api",
        "instance": "web-2",
        "region": "eu",
        "http.status": "200",
    }
    assert set(rows[0]["label_keys"]) == {"service_name", "instance", "region"}


async def test_json_pushes_with_structured_metadata(
    ingest_client: httpx.AsyncClient, log_store: LogStore, tenant: str
) -> None:
    now = time.time_ns()
    body = {
        "streams": [
            {
                "stream": {"app": "cart", "level": "ERROR"},
                "values": [[str(now), "cart lost", {"user": "u1"}], [str(now + 5), "again"]],
            }
        ]
    }
    response = await ingest_client.post(
        PATH, content=orjson.dumps(body), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 204
    rows = await stored_rows(log_store, tenant)
    assert [(row["message"], row["level"], row["service"]) for row in rows] == [
        ("cart lost", "error", "cart"),
        ("again", "error", "cart"),
    ]
    assert rows[0]["attributes"] == {"app": "cart", "user": "u1"}
    assert rows[1]["attributes"] == {"app": "cart"}
    assert rows[0]["label_keys"] == ["app"]


async def test_loki_errors_are_plain_text(ingest_client: httpx.AsyncClient) -> None:
    response = await ingest_client.post(
        PATH, content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain")
    response = await ingest_client.post(
        PATH,
        content=orjson.dumps({"streams": [{"labels": "{a=b}", "entries": []}]}),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert "labels" in response.text
    response = await ingest_client.post(
        PATH, content=b"not snappy", headers={"Content-Type": "application/x-protobuf"}
    )
    assert response.status_code == 400


async def test_gzip_encoded_json_pushes_are_decoded(
    ingest_client: httpx.AsyncClient, log_store: LogStore, tenant: str
) -> None:
    import gzip

    body = {"streams": [{"stream": {"job": "zipped"}, "values": [[str(time.time_ns()), "hi"]]}]}
    response = await ingest_client.post(
        PATH,
        content=gzip.compress(orjson.dumps(body)),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 204
    assert [(row["service"], row["message"]) for row in await stored_rows(log_store, tenant)] == [
        ("zipped", "hi")
    ]
