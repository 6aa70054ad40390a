"""A job's log lines (the runner's own and its spider's output) carry `service="crawl"` and
`job_id`, and the process's log shipping files them under service `crawl`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from shopkeeper.core.observability import add_log_tap, remove_log_tap
from shopkeeper.logs.shipping import OwnLogBuffer
from tests.crawl.domain.support import worker_running
from tests.crawl.scheduling import crawl_settings, wait_for_job

API = "/api/v1/crawl"


@pytest.fixture
def crawl_overrides(spiders_file: Path) -> dict[str, Any]:
    return {**crawl_settings(spiders_file), "log_level": "INFO"}


@pytest.fixture
def shipped() -> Iterator[OwnLogBuffer]:
    """What the process's own-log shipping would store (its buffer, not flushed anywhere)."""
    buffer = OwnLogBuffer()
    add_log_tap(buffer.structlog_event)
    yield buffer
    remove_log_tap(buffer.structlog_event)


async def test_a_jobs_lines_are_shipped_under_service_crawl_with_its_id(
    app: FastAPI, client: httpx.AsyncClient, shipped: OwnLogBuffer
) -> None:
    job = (await client.post(f"{API}/spiders/sleeper/run", json={"args": {"seconds": 0}})).json()
    async with worker_running(app, name="w"):
        job = await wait_for_job(client, job["id"], lambda j: j["status"] == "succeeded")
    records = [r for r in shipped.take() if r.attributes.get("job_id") == job["id"]]
    assert {r.service for r in records} == {"crawl"}
    messages = [r.message for r in records]
    assert messages[0] == "crawl_job_started" and messages[-1] == "crawl_job_finished"
    output = [r.attributes["line"] for r in records if r.message == "spider_output"]
    assert output == ["attempt 1 sleeping", "done"]
