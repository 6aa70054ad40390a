"""Helpers of the crawl domain's tests: run workers, wait for crawls."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import FastAPI

from shopkeeper.crawl.worker import CrawlWorker


@contextlib.asynccontextmanager
async def worker_running(app: FastAPI, **options: Any) -> AsyncIterator[CrawlWorker]:
    """A crawl worker in this process, on the app's frontier, drained at the end."""
    worker = CrawlWorker(app.state.crawl, **options)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop, drain_seconds=2.0))
    try:
        yield worker
    finally:
        stop.set()
        await task


async def wait_for_status(
    client: httpx.AsyncClient, crawl_id: str, statuses: set[str], timeout: float = 30.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get(f"/api/v1/crawl/crawls/{crawl_id}")
        assert response.status_code == 200, response.text
        crawl: dict[str, Any] = response.json()
        if crawl["status"] in statuses:
            return crawl
        if time.monotonic() > deadline:
            raise AssertionError(f"crawl still {crawl['status']}: {crawl['stats']}")
        await asyncio.sleep(0.1)


async def all_pages(
    client: httpx.AsyncClient, crawl_id: str, **params: Any
) -> list[dict[str, Any]]:
    pages: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {"limit": 100, **params} | ({"cursor": cursor} if cursor else {})
        response = await client.get(f"/api/v1/crawl/crawls/{crawl_id}/pages", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


def gaps_by_host(requests: list[Any]) -> dict[str, list[float]]:
    """Seconds between consecutive request arrivals, per host, as the site saw them."""
    arrivals: dict[str, list[float]] = {}
    for request in requests:
        arrivals.setdefault(request.host, []).append(request.at)
    return {
        host: [later - earlier for earlier, later in zip(sorted(times), sorted(times)[1:])]
        for host, times in arrivals.items()
    }
