"""NDJSON ingest over HTTP: plain and gzip bodies, the body limit, unparseable lines."""

from __future__ import annotations

import gzip
import time

import httpx
import orjson
from fastapi import FastAPI

from shopkeeper.logs.store import LogStore
from tests.logs.conftest import stored_rows

URL = "/api/v1/logs/ingest"


async def test_lines_are_stored_before_the_answer(
    ingest_client: httpx.AsyncClient, log_store: LogStore, tenant: str
) -> None:
    now_ms = int(time.time() * 1000)
    body = b"".join(
        orjson.dumps({"ts": now_ms + i, "message": f"line {i}", "level": "info", "service": "api"})
        + b"\n"
        for i in range(100)
    )
    response = await ingest_client.post(
        URL, content=body, headers={"Content-Type": "application/x-ndjson"}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 100}
    rows = await stored_rows(log_store, tenant)
    assert [row["message"] for row in rows] == [f"line {i}" for i in range(100)]
    assert {row["source"] for row in rows} == {"ndjson"}
    assert rows[0]["ns"] == now_ms * 1_000_000


async def test_gzip_bodies_are_decoded_and_bad_lines_kept_raw(
    ingest_client: httpx.AsyncClient, log_store: LogStore, tenant: str
) -> None:
    body = gzip.compress(b'{"msg": "zipped", "host": "h1"}\nnot json\n')
    response = await ingest_client.post(URL, content=body, headers={"Content-Encoding": "gzip"})
    assert response.json() == {"accepted": 2}
    rows = {row["message"]: row for row in await stored_rows(log_store, tenant)}
    assert rows["zipped"]["host"] == "h1"
    assert rows["not json"]["attributes"] == {"_parse_error": "not a JSON object"}


async def test_bodies_over_the_limit_store_nothing(
    ingest_client: httpx.AsyncClient, logs_app: FastAPI, log_store: LogStore, tenant: str
) -> None:
    limit = logs_app.state.settings.logs_max_body_bytes
    line = b'{"message": "' + b"x" * 1000 + b'"}\n'
    big = line * (limit // len(line) + 1)
    response = await ingest_client.post(URL, content=big)
    assert response.status_code == 413
    # A gzip bomb: tiny on the wire, over the limit inflated.
    response = await ingest_client.post(
        URL, content=gzip.compress(big), headers={"Content-Encoding": "gzip"}
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert await stored_rows(log_store, tenant) == []


async def test_a_broken_gzip_body_is_a_bad_request(ingest_client: httpx.AsyncClient) -> None:
    response = await ingest_client.post(
        URL, content=b"\x1f\x8b not really", headers={"Content-Encoding": "gzip"}
    )
    assert response.status_code == 400


def test_lines_are_counted_as_the_store_keeps_them() -> None:
    from shopkeeper.logs.ingest.body import count_lines

    assert count_lines(b'{"a": 1}\n{"a": 2}\n') == 2
    assert count_lines(b'{"a": 1}\n{"a": 2}') == 2
    assert count_lines(b'{"a": 1}\r\n\r\n{"a": 2}\n  \n') == 2
    assert count_lines(b"\n\n") == 0
    assert count_lines(b"") == 0
