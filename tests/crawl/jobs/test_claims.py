"""Runners racing for jobs: each queued job is won by exactly one; a `queue` schedule's job waits
for the previous one to end."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta

import httpx

from shopkeeper.core.runtime import Runtime
from shopkeeper.crawl.jobs import service
from shopkeeper.crawl.schedules.firing import fire_due
from tests.crawl.scheduling import CRAWL_BODY

API = "/api/v1/crawl"


async def test_runners_racing_claim_each_job_once(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    for _ in range(30):
        assert (await client.post(f"{API}/spiders/sleeper/run", json={})).status_code == 201
    # Rounds of twelve runners claiming at once, as their loops would, until none is left.
    claims: list[tuple[str, list[service.Claimed]]] = []
    for round_ in range(10):
        batches = await asyncio.gather(
            *(
                service.claim(runtime.db, worker=f"r{round_}.{n}", limit=4, lease_seconds=30)
                for n in range(12)
            )
        )
        claims += [(f"r{round_}.{n}", batch) for n, batch in enumerate(batches)]
        if not any(batches):
            break
    won = Counter(claimed.job.id for _, batch in claims for claimed in batch)
    assert set(won.values()) == {1}
    assert len(won) == 30
    jobs = (await client.get(f"{API}/jobs", params={"status": "running", "limit": 100})).json()
    holders = {job["id"]: job["worker"] for job in jobs["items"]}
    for runner, batch in claims:
        for claimed in batch:
            assert holders[str(claimed.job.id)] == runner
            assert claimed.job.attempts == 1


async def test_a_queued_schedules_job_waits_for_the_previous_one(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    schedule = (
        await client.post(
            f"{API}/schedules",
            json={"name": "q", "cron": "*/10 * * * * *", "crawl": CRAWL_BODY, "overlap": "queue"},
        )
    ).json()
    first = datetime.fromisoformat(schedule["next_fire_at"])
    await fire_due(runtime.db, now=first + timedelta(seconds=10))  # two fire times
    [one] = await service.claim(runtime.db, worker="a", limit=5, lease_seconds=30)
    assert one.job.fire_at == first
    assert await service.claim(runtime.db, worker="b", limit=5, lease_seconds=30) == []
    assert await service.finish(
        runtime.db, job_id=one.job.id, worker="a", attempt=1, status=service.JobStatus.SUCCEEDED
    )
    [two] = await service.claim(runtime.db, worker="b", limit=5, lease_seconds=30)
    assert two.job.fire_at == first + timedelta(seconds=10)
