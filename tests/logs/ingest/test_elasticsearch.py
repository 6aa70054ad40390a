"""Elasticsearch `_bulk` with the official client's bulk helper against a live server."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx
import orjson
import pytest
from elasticsearch import Elasticsearch, helpers
from fastapi import FastAPI

from shopkeeper.logs.ingest.writer import GroupCommitWriter
from shopkeeper.logs.store import Batch, LogStore, StoreUnavailable
from tests.logs.conftest import LiveIngest, stored_rows


def _client(server: LiveIngest) -> Elasticsearch:
    return Elasticsearch(server.url + "/api/v1/logs/es", api_key=server.key, request_timeout=30)


async def test_the_official_client_bulk_helper_stores_documents(
    live_ingest: LiveIngest, log_store: LogStore, tenant: str
) -> None:
    now = datetime.now(UTC)
    documents = [
        {
            "_index": "web-logs",
            "_source": {
                "@timestamp": now.isoformat(),
                "message": f"GET /products {i}",
                "log": {"level": "WARN"},
                "service": {"name": "storefront"},
                "host": {"name": "web-7"},
                "trace": {"id": f"trace-{i}"},
                "span": {"id": f"span-{i}"},
                "http": {"response": {"status_code": 404}},
            },
        }
        for i in range(50)
    ]
    client = _client(live_ingest)
    assert client.info()["version"]["number"].startswith("8.")
    succeeded, errors = helpers.bulk(client, documents)
    client.close()
    assert (succeeded, errors) == (50, [])
    rows = await stored_rows(log_store, tenant)
    assert len(rows) == 50
    row = next(row for row in rows if row["message"] == "GET /products 7")
    assert (row["service"], row["host"], row["level"], row["source"]) == (
        "storefront",
        "web-7",
        "warn",
        "elasticsearch",
    )
    assert (row["trace_id"], row["span_id"]) == ("trace-7", "span-7")
    assert row["attributes"] == {"index": "web-logs", "http.response.status_code": "404"}
    assert abs(row["ns"] - int(now.timestamp() * 1e9)) < 1_000


async def test_bulk_answers_per_item_and_takes_the_url_index(
    live_ingest: LiveIngest, log_store: LogStore, tenant: str
) -> None:
    lines = [
        {"create": {}},
        {"message": "made", "ts": int(time.time())},
        {"delete": {"_id": "x"}},
        {"index": {"_index": "other", "_id": "given"}},
        {"message": "indexed"},
    ]
    body = b"".join(orjson.dumps(line) + b"\n" for line in lines)
    async with httpx.AsyncClient() as http:
        response = await http.post(
            live_ingest.url + "/api/v1/logs/es/fallback/_bulk",
            content=body,
            headers={
                "Content-Type": "application/x-ndjson",
                "Authorization": f"ApiKey {live_ingest.key}",
            },
        )
    assert response.status_code == 200
    assert response.headers["x-elastic-product"] == "Elasticsearch"
    answer = response.json()
    assert answer["errors"] is True
    create, delete, index = answer["items"]
    assert create["create"]["status"] == 201
    assert create["create"]["_index"] == "fallback"
    assert delete["delete"]["status"] == 400
    assert index["index"]["_id"] == "given"
    rows = await stored_rows(log_store, tenant)
    assert {row["message"]: row["attributes"]["index"] for row in rows} == {
        "made": "fallback",
        "indexed": "other",
    }


async def test_errors_have_the_elasticsearch_shape(live_ingest: LiveIngest) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            live_ingest.url + "/api/v1/logs/es/_bulk",
            content=b"{not json\n{}\n",
            headers={"Authorization": f"ApiKey {live_ingest.key}"},
        )
    assert response.status_code == 400
    assert response.headers["x-elastic-product"] == "Elasticsearch"
    error = response.json()
    assert error["status"] == 400
    assert error["error"]["type"] == "parse_exception"
    assert error["error"]["root_cause"][0]["reason"]


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/vnd.elasticsearch+x-ndjson; compatible-with=8"],
)
async def test_bulk_accepts_the_content_types_shippers_send(
    live_ingest: LiveIngest, log_store: LogStore, tenant: str, content_type: str
) -> None:
    body = b'{"index": {"_index": "i"}}\n{"message": "typed"}\n'
    async with httpx.AsyncClient() as http:
        response = await http.put(
            live_ingest.url + "/api/v1/logs/es/_bulk",
            content=body,
            headers={"Content-Type": content_type},
            auth=("elastic", live_ingest.key),
        )
    assert response.json()["errors"] is False
    assert [row["message"] for row in await stored_rows(log_store, tenant)] == ["typed"]


async def test_shippers_start_up_checks_are_answered(live_ingest: LiveIngest) -> None:
    async with httpx.AsyncClient(
        base_url=live_ingest.url + "/api/v1/logs/es",
        headers={"Authorization": f"ApiKey {live_ingest.key}"},
    ) as http:
        health = await http.get("/_cluster/health")
        license_ = await http.get("/_license")
        head = await http.head("/")
    assert health.json()["status"] == "green"
    assert license_.json()["license"]["status"] == "active"
    assert head.status_code == 200
    assert all(r.headers["x-elastic-product"] == "Elasticsearch" for r in (health, license_, head))


async def test_a_storage_failure_after_the_first_index_is_reported_per_item(
    logs_app: FastAPI, ingest_client: httpx.AsyncClient, log_store: LogStore, tenant: str
) -> None:
    class FailingForOneIndex:
        """ClickHouse refusing the INSERT of one index's documents (the real store otherwise)."""

        async def insert_many(self, batches: list[Batch]) -> None:
            if any(batch.extra_attributes.get("index") == "broken" for batch in batches):
                raise StoreUnavailable("too many parts")
            await log_store.insert_many(batches)

        def stage(self, batches: list[Batch]) -> None:
            log_store.stage(batches)

    writer = GroupCommitWriter(FailingForOneIndex(), max_pending_lines=100, batch_lines=100)  # type: ignore[arg-type]
    await writer.start()
    sink, logs_app.state.logs.sink = logs_app.state.logs.sink, writer
    body = (
        b'{"index": {"_index": "fine"}}\n{"message": "kept"}\n'
        b'{"index": {"_index": "broken"}}\n{"message": "refused"}\n'
    )
    try:
        response = await ingest_client.post("/api/v1/logs/es/_bulk", content=body)
    finally:
        logs_app.state.logs.sink = sink
        await writer.stop()
    answer = response.json()
    assert answer["errors"] is True
    kept, refused = (item["index"] for item in answer["items"])
    assert kept["status"] == 201
    assert refused["status"] == 503
    assert refused["error"]["type"] == "unavailable_shards_exception"
    assert [row["message"] for row in await stored_rows(log_store, tenant)] == ["kept"]
