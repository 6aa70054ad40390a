"""Fixtures and helpers of the schedules, jobs and spiders tests (imported by their conftests):
short leases and heartbeats, a spiders file of test spiders, a client with a crawl key."""

from __future__ import annotations

import asyncio
import secrets
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from shopkeeper.core.runtime import Runtime
from shopkeeper.core.settings import Settings

SPIDERS_DIR = Path(__file__).parent / "spiders"


def spiders_toml(**extra: str) -> str:
    """The test deploy's spiders: command spiders run this interpreter on scripts of
    tests/crawl/spiders/, a python spider names its class in the file."""
    python = sys.executable
    text = f"""
[spiders.sleeper]
kind = "command"
description = "Sleeps SLEEP_S seconds (args.seconds), then exits 0"
command = ["{python}", "{SPIDERS_DIR / "sleeper.py"}"]
max_attempts = 3

[spiders.fragile]
kind = "command"
description = "Like sleeper, one attempt only"
command = ["{python}", "{SPIDERS_DIR / "sleeper.py"}"]
max_attempts = 1

[spiders.failing]
kind = "command"
description = "Exits 3"
command = ["{python}", "-c", "import sys; print('giving up'); sys.exit(3)"]
"""
    for name, body in extra.items():
        text += f"\n[spiders.{name}]\n{body}\n"
    return text


@pytest.fixture
def spiders_file(tmp_path: Path) -> Path:
    path = tmp_path / "spiders.toml"
    path.write_text(spiders_toml())
    return path


def crawl_settings(spiders_file: Path) -> dict[str, Any]:
    """Short leases and heartbeats, the test spiders."""
    return {
        "crawl_lease_seconds": 3.0,
        "crawl_heartbeat_seconds": 0.5,
        "crawl_retry_base_seconds": 0.2,
        "crawl_retry_max_seconds": 1.0,
        "crawl_fetch_timeout_seconds": 2.0,
        "crawl_worker_concurrency": 8,
        "crawl_spiders_file": spiders_file,
        "crawl_schedule_tick_seconds": 0.1,
    }


@pytest.fixture
def crawl_overrides(spiders_file: Path) -> dict[str, Any]:
    return crawl_settings(spiders_file)


@pytest.fixture
def settings(
    settings_factory: Callable[..., Settings], crawl_overrides: dict[str, Any]
) -> Settings:
    return settings_factory(**crawl_overrides)


async def api_key(runtime: Runtime, *scopes: str) -> dict[str, str]:
    from shopkeeper.accounts.service import create_api_key

    async with runtime.db.session() as session:
        _, key = await create_api_key(
            session, name=f"test-{secrets.token_hex(3)}", scopes=[*scopes]
        )
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def client(app: FastAPI, runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    headers = await api_key(runtime, "crawl:read", "crawl:write")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test", headers=headers
    ) as http:
        yield http


async def wait_for_job(
    client: httpx.AsyncClient,
    job_id: str,
    until: Callable[[dict[str, Any]], bool],
    timeout: float = 60.0,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get(f"/api/v1/crawl/jobs/{job_id}")
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        if until(job):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job never got there: {job}")
        await asyncio.sleep(0.1)


async def all_jobs(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {"limit": 100, **params} | ({"cursor": cursor} if cursor else {})
        response = await client.get("/api/v1/crawl/jobs", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        jobs.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return jobs


CRAWL_BODY = {
    "name": "scheduled",
    "seeds": ["http://127.0.0.9:9/"],
    "scope": {"allow": ["127.0.0.9:9"]},
}
"""A crawl body for schedules whose jobs no worker runs in the test."""
