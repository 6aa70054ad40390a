"""What a schedule's jobs do when a worker runs them: a scheduled crawl is created and followed
to its end; a scheduled spider runs with the schedule's args."""

from __future__ import annotations

from datetime import datetime

import httpx
from fastapi import FastAPI

from shopkeeper.core.runtime import Runtime
from shopkeeper.crawl.schedules.firing import fire_due
from tests.crawl.domain.support import worker_running
from tests.crawl.scheduling import all_jobs, wait_for_job
from tests.support.crawl_site import CrawlSite

API = "/api/v1/crawl"


def ended(job: dict[str, object]) -> bool:
    return job["status"] not in {"queued", "running"}


async def test_a_scheduled_crawl_runs_as_a_job_to_the_crawls_end(
    app: FastAPI, client: httpx.AsyncClient, runtime: Runtime, crawl_site: CrawlSite
) -> None:
    body = {
        "name": "products",
        "seeds": [crawl_site.url("shop", "/products")],
        "scope": {"allow": [crawl_site.authority("shop")], "max_pages": 5},
        "politeness": {"delay_ms": 0, "max_inflight_per_host": 2},
    }
    schedule = (
        await client.post(
            f"{API}/schedules", json={"name": "s", "cron": "0 * * * *", "crawl": body}
        )
    ).json()
    await fire_due(runtime.db, now=datetime.fromisoformat(schedule["next_fire_at"]))
    [job] = await all_jobs(client, schedule=schedule["id"])
    async with worker_running(app, name="w"):
        job = await wait_for_job(client, job["id"], ended)
    assert job["status"] == "succeeded", job
    crawl = (await client.get(f"{API}/crawls/{job['crawl_id']}")).json()
    assert crawl["status"] == "finished" and crawl["name"] == "products"
    assert job["stats"]["crawl"]["fetched"] == crawl["stats"]["fetched"] == 5


async def test_a_scheduled_spider_gets_the_schedules_args(
    app: FastAPI, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    schedule = (
        await client.post(
            f"{API}/schedules",
            json={"name": "s", "cron": "0 * * * *", "spider": "failing", "args": {"x": 1}},
        )
    ).json()
    await fire_due(runtime.db, now=datetime.fromisoformat(schedule["next_fire_at"]))
    [job] = await all_jobs(client, schedule=schedule["id"])
    async with worker_running(app, name="w"):
        job = await wait_for_job(client, job["id"], ended)
    assert job["spider"] == "failing" and job["status"] == "failed"
    assert job["fire_at"] == schedule["next_fire_at"]
