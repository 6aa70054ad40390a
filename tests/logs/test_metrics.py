"""The logs system's Prometheus metrics move with what a user does: accepted and stored lines
by protocol after an ingest, INSERT timings, and query timings by type after a query."""

from __future__ import annotations

import re

import httpx
import orjson

from shopkeeper.core.settings import Settings
from tests.logs.conftest import make_key
from tests.support.platform import eventually


def sample(text: str, name: str, labels: str = "") -> float:
    """The value of one sample in Prometheus' text format (0 when absent)."""
    pattern = re.escape(name) + (r"\{" + re.escape(labels) + r"\}" if labels else "") + r" (\S+)"
    found = re.search("^" + pattern + "$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def test_ingest_and_query_move_the_logs_metrics(
    ingest_client: httpx.AsyncClient,
    logs_client: httpx.AsyncClient,
    logs_settings: Settings,
    tenant: str,
) -> None:
    before = (await logs_client.get("/metrics")).text
    lines = b"".join(
        orjson.dumps({"service": "metered", "message": f"line {n}"}) + b"\n" for n in range(7)
    )
    answer = await ingest_client.post(
        "/api/v1/logs/ingest", content=lines, headers={"Content-Type": "application/x-ndjson"}
    )
    assert answer.status_code // 100 == 2, answer.text

    accepted = 'shopkeeper_logs_lines_accepted_total{source="ndjson"}'
    name, labels = accepted.split("{")

    async def counted() -> bool:
        now = (await logs_client.get("/metrics")).text
        return sample(now, name, labels.rstrip("}")) - sample(before, name, labels.rstrip("}")) >= 7

    await eventually(counted, timeout=10, what="the accepted lines to be counted")
    after = (await logs_client.get("/metrics")).text
    assert (
        sample(after, "shopkeeper_logs_lines_stored_total")
        >= sample(before, "shopkeeper_logs_lines_stored_total") + 7
    )
    assert sample(after, "shopkeeper_logs_insert_seconds_count") > sample(
        before, "shopkeeper_logs_insert_seconds_count"
    )

    read_key = await make_key(logs_settings, scopes=["logs:read"], tenant=tenant)
    queried = await logs_client.get(
        "/api/v1/logs/loki/api/v1/query_range",
        params={"query": '{service="metered"}', "since": "5m"},
        headers={"Authorization": f"Bearer {read_key}"},
    )
    assert queried.status_code == 200, queried.text
    final = (await logs_client.get("/metrics")).text
    count = "shopkeeper_logs_query_seconds_count"
    assert (
        sample(final, count, 'type="query_range"') == sample(after, count, 'type="query_range"') + 1
    )
