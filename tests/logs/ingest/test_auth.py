"""Ingest needs a `logs:write` key; its tenant is the tenant of what it writes. Refusals come
in each protocol's own error format."""

from __future__ import annotations

import asyncio

import httpx
import orjson
import pytest
from elasticsearch import AuthenticationException, AuthorizationException, Elasticsearch
from sqlalchemy import text

from shopkeeper.core.db import Database
from shopkeeper.core.settings import Settings
from shopkeeper.logs.store import LogStore
from tests.logs.conftest import LiveServer, make_key, stored_rows

NDJSON = "/api/v1/logs/ingest"
LOKI = "/api/v1/logs/loki/api/v1/push"
ES = "/api/v1/logs/es/_bulk"
OTLP = "/api/v1/logs/otlp/v1/logs"
BODIES = {
    NDJSON: (b'{"message": "x"}\n', "application/x-ndjson"),
    LOKI: (orjson.dumps({"streams": [{"stream": {"a": "b"}, "values": [["1", "x"]]}]}),
           "application/json"),
    ES: (b'{"index": {"_index": "i"}}\n{"message": "x"}\n', "application/x-ndjson"),
    OTLP: (orjson.dumps({"resourceLogs": []}), "application/json"),
}  # fmt: skip


def _in_protocol_format(path: str, response: httpx.Response) -> bool:
    if path == NDJSON:
        return response.headers["content-type"] == "application/problem+json"
    if path == LOKI:
        return response.headers["content-type"].startswith("text/plain")
    if path == ES:
        error = response.json()
        return bool(error["status"] == response.status_code and error["error"]["root_cause"])
    return "code" in response.json()


@pytest.mark.parametrize("path", [NDJSON, LOKI, ES, OTLP])
async def test_without_credentials_ingest_is_401_in_the_protocols_format(
    logs_client: httpx.AsyncClient, path: str
) -> None:
    body, content_type = BODIES[path]
    response = await logs_client.post(path, content=body, headers={"Content-Type": content_type})
    assert response.status_code == 401
    assert _in_protocol_format(path, response)


@pytest.mark.parametrize("path", [NDJSON, LOKI, ES, OTLP])
async def test_a_key_without_logs_write_is_403_in_the_protocols_format(
    logs_client: httpx.AsyncClient, logs_settings: Settings, tenant: str, path: str
) -> None:
    reader = await make_key(logs_settings, scopes=["logs:read"], tenant=tenant)
    body, content_type = BODIES[path]
    response = await logs_client.post(
        path,
        content=body,
        headers={"Content-Type": content_type, "Authorization": f"Bearer {reader}"},
    )
    assert response.status_code == 403
    assert _in_protocol_format(path, response)


async def test_each_key_writes_into_its_own_tenant(
    logs_client: httpx.AsyncClient, logs_settings: Settings, log_store: LogStore, tenant: str
) -> None:
    other = tenant + "_b"
    for name in (tenant, other):
        key = await make_key(logs_settings, scopes=["logs:write"], tenant=name)
        response = await logs_client.post(
            NDJSON,
            content=orjson.dumps({"message": f"from {name}"}),
            headers={"Authorization": f"ApiKey {key}"},
        )
        assert response.status_code == 200
    assert [row["message"] for row in await stored_rows(log_store, tenant)] == [f"from {tenant}"]
    assert [row["message"] for row in await stored_rows(log_store, other)] == [f"from {other}"]


async def test_a_key_is_read_while_another_connection_holds_the_write_lock(
    logs_client: httpx.AsyncClient, logs_settings: Settings, tenant: str
) -> None:
    """The key lookup is a lone read, outside a transaction: on SQLite a writer holding the
    database's write lock (a background job claiming work) does not hold up ingest. Taking
    the write lock for the lookup, as a session does, waited for the writer to finish."""
    key = await make_key(logs_settings, scopes=["logs:write"], tenant=tenant)
    database = Database(logs_settings)
    try:
        async with database.session() as writer:
            await writer.execute(text("DELETE FROM api_keys WHERE 1 = 0"))  # holds the lock
            response = await asyncio.wait_for(
                logs_client.post(
                    NDJSON,
                    content=b'{"message": "while a writer works"}\n',
                    headers={"Authorization": f"Bearer {key}"},
                ),
                timeout=10,
            )
            assert response.status_code == 200
            assert response.json() == {"accepted": 1}
    finally:
        await database.dispose()


def test_the_elasticsearch_client_reports_bad_keys_as_auth_errors(
    live_server: LiveServer,
) -> None:
    with (
        Elasticsearch(live_server.url + "/api/v1/logs/es", api_key="sk_nope") as client,
        pytest.raises(AuthenticationException),
    ):
        client.bulk(operations=[{"index": {"_index": "i"}}, {"message": "x"}])
    with (
        Elasticsearch(live_server.url + "/api/v1/logs/es") as client,
        pytest.raises((AuthenticationException, AuthorizationException)),
    ):
        client.info()
