"""A worker's leases: renewed while a fetch outlasts the lease time, and on a stop either
finished or handed back, so that nothing is fetched twice or lost."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import httpx
import pytest
from fastapi import FastAPI

from shopkeeper.accounts.permissions import PermissionDenied
from shopkeeper.accounts.service import InvalidApiKey
from shopkeeper.core.runtime import Runtime
from shopkeeper.crawl.worker import CrawlWorker
from tests.crawl.domain.support import all_pages, wait_for_status, worker_running
from tests.support.crawl_site import CrawlSite


def slow_crawl(site: CrawlSite, max_pages: int) -> dict[str, object]:
    return {
        "name": "slow",
        "seeds": [site.url("slow", "/")],
        "scope": {"allow": [site.authority("slow")], "max_pages": max_pages},
        "politeness": {"delay_ms": 0, "max_inflight_per_host": 4},
    }


async def test_a_fetch_longer_than_the_lease_is_renewed_not_fetched_again(
    client: httpx.AsyncClient, app: FastAPI, crawl_site: CrawlSite
) -> None:
    settings = app.state.crawl.settings
    crawl_site.slow_delay_s = settings.crawl_lease_seconds * 1.5
    settings.crawl_fetch_timeout_seconds = settings.crawl_lease_seconds * 3  # slow, not dead
    crawl = (await client.post("/api/v1/crawl/crawls", json=slow_crawl(crawl_site, 3))).json()
    async with worker_running(app):
        await wait_for_status(client, crawl["id"], {"finished"}, timeout=60)
    pages = [r.path for r in crawl_site.requests("slow") if r.path != "/robots.txt"]
    assert sorted(pages) == ["/", "/c/1", "/c/2"]
    assert {page["state"] for page in await all_pages(client, crawl["id"])} == {"fetched"}


async def test_a_stopped_worker_finishes_what_it_holds_and_a_later_one_does_the_rest(
    client: httpx.AsyncClient, app: FastAPI, crawl_site: CrawlSite
) -> None:
    crawl_site.slow_delay_s = 0.5
    crawl = (await client.post("/api/v1/crawl/crawls", json=slow_crawl(crawl_site, 10))).json()
    stop = asyncio.Event()
    first = asyncio.create_task(CrawlWorker(app.state.crawl, name="first").run(stop))
    deadline = time.monotonic() + 20
    while not [r for r in crawl_site.requests("slow") if r.path.startswith("/c/")]:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    stop.set()  # as on SIGTERM: the fetches in flight finish and are stored
    await first
    stored = {page["url"] for page in await all_pages(client, crawl["id"])}
    requested = {crawl_site.url("slow", r.path) for r in crawl_site.requests("slow")}
    assert stored == requested - {crawl_site.url("slow", "/robots.txt")}
    status = (await client.get(f"/api/v1/crawl/crawls/{crawl['id']}")).json()
    assert status["stats"]["in_flight"] == 0 and status["stats"]["queued"] > 0

    async with worker_running(app, name="second"):
        await wait_for_status(client, crawl["id"], {"finished"}, timeout=60)
    counts = Counter(r.path for r in crawl_site.requests("slow") if r.path != "/robots.txt")
    assert len(counts) == 10 and set(counts.values()) == {1}


async def test_a_worker_key_needs_the_worker_scope_and_its_revocation_stops_the_worker(
    app: FastAPI, runtime: Runtime
) -> None:
    from shopkeeper.accounts.service import create_api_key, revoke_api_key

    async with runtime.db.session() as session:
        _, reader = await create_api_key(session, name="reader", scopes=["crawl:read"])
        row, worker_key = await create_api_key(session, name="w", scopes=["crawl:worker"])
    with pytest.raises(PermissionDenied):
        await CrawlWorker(app.state.crawl, key=reader).run(asyncio.Event())
    with pytest.raises(InvalidApiKey):
        await CrawlWorker(app.state.crawl, key="sk_not-a-key").run(asyncio.Event())

    stop = asyncio.Event()
    worker = asyncio.create_task(CrawlWorker(app.state.crawl, key=worker_key).run(stop))
    await asyncio.sleep(0.3)
    assert not worker.done()
    async with runtime.db.session() as session:
        await revoke_api_key(session, key_id=row.id)
    await asyncio.wait_for(worker, timeout=10)  # stopped at its next heartbeat
    assert stop.is_set()
