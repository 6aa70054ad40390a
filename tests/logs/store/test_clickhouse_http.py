"""The ClickHouse HTTP endpoint the server-store tests run on speaks ClickHouse's protocol as
clickhouse-connect uses it (these tests hold for a real server at
SHOPKEEPER_TEST_CLICKHOUSE_URL as much as for the chDB stand-in)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import clickhouse_connect
import httpx
import pytest


@pytest.fixture
def client(clickhouse_url: str) -> Iterator[Any]:
    database = f"shopkeeper_http_test_{secrets.token_hex(3)}"
    admin = clickhouse_connect.get_client(dsn=clickhouse_url, autogenerate_session_id=False)
    admin.command(f"CREATE DATABASE {database}")
    client = clickhouse_connect.get_client(dsn=clickhouse_url, database=database)
    try:
        yield client
    finally:
        client.close()
        admin.command(f"DROP DATABASE {database}")
        admin.close()


def test_ping_answers_ok(clickhouse_url: str) -> None:
    response = httpx.get(f"{clickhouse_url}/ping")
    assert (response.status_code, response.text) == (200, "Ok.\n")


def test_errors_carry_clickhouse_code_text_and_status(clickhouse_url: str) -> None:
    response = httpx.post(clickhouse_url, content=b"SELEC 1")
    assert response.status_code == 400
    assert response.headers["X-ClickHouse-Exception-Code"] == "62"
    assert response.text.startswith("Code: 62. DB::Exception: Syntax error")
    missing = httpx.get(clickhouse_url, params={"query": "SELECT 1 FROM no_such_db.t"})
    assert missing.status_code == 404
    assert missing.headers["X-ClickHouse-Exception-Code"] == "81"


def test_responses_are_compressed_when_the_client_asks(clickhouse_url: str) -> None:
    response = httpx.get(
        clickhouse_url,
        params={"query": "SELECT number FROM numbers(3) FORMAT CSV", "enable_http_compression": 1},
        headers={"Accept-Encoding": "gzip"},
    )
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.headers["X-ClickHouse-Format"] == "CSV"
    assert response.text == "0\n1\n2\n"  # httpx undoes the gzip
    plain = httpx.get(clickhouse_url, params={"query": "SELECT 1"})
    assert "Content-Encoding" not in plain.headers
    assert plain.text == "1\n"


def test_settings_set_in_a_session_stay_in_that_session(clickhouse_url: str) -> None:
    def max_threads(session: str) -> str:
        query = "SELECT getSetting('max_threads')"
        return httpx.get(clickhouse_url, params={"query": query, "session_id": session}).text

    before = max_threads("other")
    assert httpx.post(clickhouse_url, params={"session_id": "one"}, content=b"SET max_threads = 7")
    assert max_threads("one") == "7\n"
    assert max_threads("other") == before
    per_query = {"query": "SELECT getSetting('max_threads')", "max_threads": "3"}
    assert httpx.get(clickhouse_url, params=per_query).text == "3\n"
    assert max_threads("other") == before


def test_native_inserts_and_queries_round_trip_through_clickhouse_connect(client: Any) -> None:
    client.command(
        "CREATE TABLE t (ts DateTime64(9, 'UTC'), m Map(String, String), a Array(String), "
        "s String, n UInt64) ENGINE = MergeTree ORDER BY ts"
    )
    when = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    rows = [[when, {"k": "v'\\"}, ["x", "y"], "tab\there", 2**63], [when, {}, [], "", 0]]
    summary = client.insert("t", rows, column_names=["ts", "m", "a", "s", "n"])
    assert summary.written_rows == 2
    result = client.query("SELECT ts, m, a, s, n FROM t ORDER BY n DESC")
    assert [list(row) for row in result.result_rows] == [
        [when.replace(tzinfo=None), {"k": "v'\\"}, ["x", "y"], "tab\there", 2**63],
        [when.replace(tzinfo=None), {}, [], "", 0],
    ]
    found = client.query(
        "SELECT count() FROM t WHERE s = {s:String}", parameters={"s": "tab\there"}
    )
    assert found.result_rows == [(1,)]
    client.command(
        "INSERT INTO t (s, n) SELECT s, n FROM input('s String, n UInt64') FORMAT JSONEachRow",
        data=b'{"s": "from input", "n": 5}\n',
    )
    assert client.query("SELECT s FROM t WHERE n = 5").result_rows == [("from input",)]
