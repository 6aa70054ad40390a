"""The Loki HTTP API's contract: response shapes, parameters as Loki parses them, and errors as
Loki answers them (400, plain text, naming what is wrong)."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest

from shopkeeper.core.settings import Settings
from tests.logs.conftest import make_key
from tests.logs.query.conftest import NS, Dataset

SUMMARY_KEYS = {
    "bytesProcessedPerSecond",
    "linesProcessedPerSecond",
    "totalBytesProcessed",
    "totalLinesProcessed",
    "execTime",
    "queueTime",
    "subqueries",
    "totalEntriesReturned",
}


def check_loki_shape(body: dict[str, Any], result_type: str) -> list[Any]:
    assert body["status"] == "success"
    data = body["data"]
    assert data["resultType"] == result_type
    if result_type == "streams":
        assert data["encodingFlags"] == ["categorize-labels"]
    assert data["stats"]["summary"].keys() >= SUMMARY_KEYS
    result = data["result"]
    assert isinstance(result, list)
    for item in result:
        if result_type == "streams":
            assert set(item) == {"stream", "values"}
            assert all(isinstance(k, str) and isinstance(v, str) for k, v in item["stream"].items())
            for value in item["values"]:
                assert isinstance(value[0], str) and value[0].isdigit()
                assert isinstance(value[1], str)
                if len(value) == 3:
                    assert value[2] and set(value[2]) <= {"structuredMetadata", "parsed"}
                    assert all(isinstance(v, dict) and v for v in value[2].values())
                else:
                    assert len(value) == 2
        elif result_type == "matrix":
            assert set(item) == {"metric", "values"}
            for t, v in item["values"]:
                assert isinstance(t, int | float) and isinstance(v, str)
                float(v)
        else:
            assert set(item) == {"metric", "value"}
            assert isinstance(item["value"][0], int | float) and isinstance(item["value"][1], str)
    return result


async def test_response_shapes(loki: httpx.AsyncClient, dataset: Dataset) -> None:
    response = await loki.get("/query_range", params={"query": '{service="shop"} | logfmt'})
    assert response.headers["content-type"] == "application/json"
    streams = check_loki_shape(response.json(), "streams")
    assert any(len(v) == 3 and "parsed" in v[2] for s in streams for v in s["values"])
    assert sum(len(s["values"]) for s in streams) == 100  # Loki's default limit
    response = await loki.get(
        "/query_range", params={"query": 'rate({service="shop"}[5m])', "step": "60"}
    )
    assert check_loki_shape(response.json(), "matrix")
    response = await loki.post(
        "/query",
        data={"query": 'sum(count_over_time({service="shop"}[1h]))'},
    )
    assert check_loki_shape(response.json(), "vector")


async def test_missing_range_is_the_last_hour_and_since_shortens_it(
    loki: httpx.AsyncClient, dataset: Dataset
) -> None:
    response = await loki.get("/query_range", params={"query": '{service=~".+"}', "limit": "5000"})
    assert sum(len(s["values"]) for s in response.json()["data"]["result"]) == len(dataset.lines)
    response = await loki.get(
        "/query_range", params={"query": '{service=~".+"}', "limit": "5000", "since": "10m"}
    )
    got = [int(v[0]) for s in response.json()["data"]["result"] for v in s["values"]]
    assert got and min(got) >= dataset.now - 11 * 60 * NS
    assert len(got) < len(dataset.lines) / 3


async def test_timestamps_in_seconds_float_and_rfc3339(
    loki: httpx.AsyncClient, dataset: Dataset
) -> None:
    from datetime import UTC, datetime

    end = dataset.now + NS
    start = dataset.now - 30 * 60 * NS
    reference = await loki.get(
        "/query_range",
        params={"query": '{service="api"}', "start": str(start), "end": str(end), "limit": "5000"},
    )
    as_seconds = await loki.get(
        "/query_range",
        params={
            "query": '{service="api"}',
            "start": f"{start / 1e9:.3f}",
            "end": datetime.fromtimestamp(end // NS + 1, UTC).isoformat().replace("+00:00", "Z"),
            "limit": "5000",
        },
    )
    count = sum(len(s["values"]) for s in reference.json()["data"]["result"])
    assert count > 0
    # Float seconds keep milliseconds: the two windows differ by at most a line or so.
    assert abs(sum(len(s["values"]) for s in as_seconds.json()["data"]["result"]) - count) <= 1


@pytest.mark.parametrize(
    ("params", "status", "says"),
    [
        ({"query": '{service="shop"} |= "x" or "y"'}, 400, "'or' between line filter values"),
        ({"query": 'stddev_over_time({service="shop"} | unwrap x [1m])'}, 400, "stddev_over_time"),
        ({"query": 'rate({service="shop"}[1m]) / rate({service="api"}[1m])'}, 400,
         "binary operations between two vectors"),
        ({"query": 'sum(rate({service="shop"}[1m])) and on(host) vector(1)'}, 400, "'and'"),
        ({"query": '{service="shop"} | unpack'}, 400, "'unpack'"),
        ({"query": 'rate({service="shop"}[1m] offset 1h)'}, 400, "'offset'"),
        ({"query": '{service="shop"} | line_format "{{ if .x }}y{{ end }}"'}, 400, "'if'"),
        ({"query": '{service="shop"'}, 400, "parse error at line 1, col 16"),
        ({"query": '{service=""}'}, 400, "empty-compatible value"),
        ({"query": '{service="shop"} |~ "(?=a)"'}, 400, "invalid or unsupported Perl syntax"),
        # Python's re takes a possessive quantifier, RE2 does not: ClickHouse's refusal is a 400.
        ({"query": '{service="shop"} |~ "a*+"'}, 400, "bad repetition operator"),
        ({"query": '{service="shop"}', "limit": "5001"}, 400, "max entries limit"),
        ({"query": '{service="shop"}', "limit": "0"}, 400, "limit must be a positive value"),
        ({"query": '{service="shop"}', "direction": "sideways"}, 400, "invalid direction"),
        ({"query": '{service="shop"}', "start": "yesterday"}, 400, "cannot parse"),
        ({"query": '{service="shop"}', "start": "0", "end": str(40 * 86400 * NS)}, 400,
         "the query time range exceeds the limit"),
        ({"query": 'rate({service="shop"}[1m])', "step": "0.1", "since": "24h"}, 400,
         "exceeded maximum resolution of 11,000 points"),
        ({"query": 'rate({service="shop"}[1m])', "step": "-1"}, 400, "zero or negative"),
    ],
)  # fmt: skip
async def test_errors_are_plain_text_400s_naming_the_problem(
    loki: httpx.AsyncClient, params: dict[str, str], status: int, says: str
) -> None:
    response = await loki.get("/query_range", params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert says in response.text


async def test_log_queries_are_not_instant_queries(loki: httpx.AsyncClient) -> None:
    response = await loki.get("/query", params={"query": '{service="shop"}'})
    assert response.status_code == 400
    assert "log queries are not supported as an instant query type" in response.text


async def test_scalar_instant_query(loki: httpx.AsyncClient) -> None:
    response = await loki.get("/query", params={"query": "1 + 2 * 3", "time": "1700000000"})
    data = response.json()["data"]
    assert data["resultType"] == "scalar"
    assert data["result"] == [1700000000, "7"]


async def test_buildinfo(loki: httpx.AsyncClient) -> None:
    body = (await loki.get("/status/buildinfo")).json()
    assert body["version"].startswith("3.")


def client(app: Any, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://test/api/v1/logs/loki/api/v1",
        headers=headers or {},
    )


@pytest.mark.parametrize(
    "path", ["/query_range", "/query", "/labels", "/label/level/values", "/series"]
)
async def test_reads_need_credentials_and_the_logs_read_permission(
    logs_app: Any, logs_settings: Settings, dataset: Dataset, path: str
) -> None:
    params = {"query": 'count_over_time({service="shop"}[5m])'}
    async with client(logs_app) as anonymous:
        response = await anonymous.get(path, params=params)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    writer = await make_key(logs_settings, scopes=["logs:write"], tenant=dataset.tenant)
    async with client(logs_app, {"Authorization": f"Bearer {writer}"}) as http:
        response = await http.get(path, params=params)
    assert response.status_code == 403
    assert response.json()["type"].endswith("/permission-denied")


async def test_a_key_reads_only_its_own_tenant(
    logs_app: Any, logs_settings: Settings, dataset: Dataset, read_key: str
) -> None:
    other = await make_key(logs_settings, scopes=["logs:read"], tenant="someone_else")
    query = {"query": '{service=~".+"}', "limit": "5000", "since": "2h"}
    async with client(logs_app, {"Authorization": f"Bearer {other}"}) as http:
        theirs = (await http.get("/query_range", params=query)).json()["data"]["result"]
        labels = (await http.get("/label/env/values", params={"since": "2h"})).json()["data"]
    assert theirs == [] and labels == []
    # Loki clients that send the password as Basic auth read the same as with Bearer.
    async with client(logs_app) as http:
        response = await http.get("/query_range", params=query, auth=("grafana", read_key))
    got = sum(len(s["values"]) for s in response.json()["data"]["result"])
    assert got == len(dataset.lines)


async def test_a_staff_user_with_log_reader_reads_the_default_tenant(
    logs_app: Any, logs_settings: Settings, log_store: Any
) -> None:
    from shopkeeper.accounts.service import register_user
    from shopkeeper.core.db import Database
    from shopkeeper.logs.records import LogRecord
    from shopkeeper.logs.store import records_batch

    email = f"reader-{secrets.token_hex(4)}@example.com"
    database = Database(logs_settings)
    try:
        async with database.session() as session:
            await register_user(
                session, email=email, password="a long password 1", roles=("log_reader",)
            )
    finally:
        await database.dispose()
    marker = f"staffmarker{secrets.token_hex(4)}"
    await log_store.insert(
        records_batch(
            [LogRecord(message=f"hello {marker}", service="staffcheck")],
            tenant="default",
            source="ndjson",
        )
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=logs_app), base_url="http://test"
    ) as http:
        token = (
            await http.post(
                "/api/v1/auth/token", data={"username": email, "password": "a long password 1"}
            )
        ).json()["access_token"]
        response = await http.get(
            "/api/v1/logs/loki/api/v1/query_range",
            params={"query": f'{{service="staffcheck"}} |= "{marker}"'},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 200, response.text
    assert [v[1] for s in response.json()["data"]["result"] for v in s["values"]] == [
        f"hello {marker}"
    ]
