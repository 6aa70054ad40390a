"""Firing, in this process with the clock given: one job per fire time however many firings
race, misfire grace, overlap policies. (tests/crawl/schedules/test_scheduler_processes.py does
it with real `shopkeeper scheduler` processes.)"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import httpx

from shopkeeper.core.runtime import Runtime
from shopkeeper.crawl.schedules.firing import fire_due
from tests.crawl.scheduling import CRAWL_BODY, all_jobs

API = "/api/v1/crawl/schedules"


async def create(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post(API, json={"name": "s", "crawl": CRAWL_BODY, **body})
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def fire_times(jobs: list[dict[str, Any]]) -> list[datetime]:
    return sorted(datetime.fromisoformat(job["fire_at"]) for job in jobs)


async def test_concurrent_firings_make_one_job_per_fire_time(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    schedule = await create(client, cron="* * * * * *", overlap="queue")
    first = datetime.fromisoformat(schedule["next_fire_at"])
    # Twelve schedulers at once, at each of five moments 0.5 s apart.
    for step in range(5):
        now = first + timedelta(seconds=step * 0.5)
        await asyncio.gather(*(fire_due(runtime.db, now=now) for _ in range(12)))
    jobs = await all_jobs(client, schedule=schedule["id"])
    counts = Counter(fire_times(jobs))
    assert set(counts.values()) == {1}
    assert sorted(counts) == [first + timedelta(seconds=n) for n in range(3)]
    assert {job["status"] for job in jobs} == {"queued"}
    assert all(job["crawl_id"] is None and job["spider"] is None for job in jobs)


async def test_missed_fires_run_within_the_grace_and_not_beyond(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    schedule = await create(client, cron="*/10 * * * * *", misfire_grace_s=15, overlap="queue")
    first = datetime.fromisoformat(schedule["next_fire_at"])
    # Everything was down for 40 s: fires at +0, +10, +20, +30, +40 are due; the grace keeps
    # those at most 15 s old.
    made = await fire_due(runtime.db, now=first + timedelta(seconds=41))
    assert made == 2
    jobs = await all_jobs(client, schedule=schedule["id"])
    assert fire_times(jobs) == [first + timedelta(seconds=30), first + timedelta(seconds=40)]
    after = (await client.get(f"{API}/{schedule['id']}")).json()
    assert datetime.fromisoformat(after["next_fire_at"]) == first + timedelta(seconds=50)


async def test_skip_makes_no_job_while_the_previous_one_is_live(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    schedule = await create(client, cron="*/10 * * * * *", overlap="skip")
    first = datetime.fromisoformat(schedule["next_fire_at"])
    for step in range(3):
        await fire_due(runtime.db, now=first + timedelta(seconds=10 * step))
    jobs = await all_jobs(client, schedule=schedule["id"])
    assert fire_times(jobs) == [first]

    cancelled = await client.post(f"/api/v1/crawl/jobs/{jobs[0]['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    await fire_due(runtime.db, now=first + timedelta(seconds=30))
    jobs = await all_jobs(client, schedule=schedule["id"])
    assert fire_times(jobs) == [first, first + timedelta(seconds=30)]


async def test_cancel_previous_cancels_the_live_job_for_the_new_one(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    schedule = await create(client, cron="*/10 * * * * *", overlap="cancel_previous")
    first = datetime.fromisoformat(schedule["next_fire_at"])
    await fire_due(runtime.db, now=first)
    await fire_due(runtime.db, now=first + timedelta(seconds=10))
    jobs = await all_jobs(client, schedule=schedule["id"])
    jobs.sort(key=lambda job: datetime.fromisoformat(job["fire_at"]))
    statuses = [job["status"] for job in jobs]
    assert statuses == ["cancelled", "queued"]


async def test_a_disabled_schedule_does_not_fire(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    schedule = await create(client, cron="* * * * * *", enabled=False)
    assert schedule["next_fire_at"] is None
    await fire_due(runtime.db, now=datetime.fromisoformat(schedule["created_at"]) + timedelta(1))
    assert await all_jobs(client, schedule=schedule["id"]) == []
