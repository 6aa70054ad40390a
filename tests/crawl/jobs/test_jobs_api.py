"""Running spiders and reading, cancelling and retrying jobs over the API, with a crawl worker
in this process running them."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.crawl.domain.support import worker_running
from tests.crawl.scheduling import all_jobs, wait_for_job

API = "/api/v1/crawl"


def ended(job: dict[str, object]) -> bool:
    return job["status"] in {"succeeded", "failed", "cancelled", "dead"}


async def test_the_deploys_spiders_are_listed(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{API}/spiders")
    assert response.status_code == 200, response.text
    spiders = {spider["name"]: spider for spider in response.json()}
    assert {"sleeper", "fragile", "failing"} <= set(spiders)
    assert spiders["sleeper"] == {
        "name": "sleeper",
        "kind": "command",
        "description": "Sleeps SLEEP_S seconds (args.seconds), then exits 0",
    }


async def test_a_run_is_a_queued_job_until_a_worker_takes_it(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{API}/spiders/sleeper/run", json={"args": {"seconds": 0}})
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["status"] == "queued" and job["spider"] == "sleeper" and job["attempts"] == 0
    assert job["schedule_id"] is None and job["fire_at"] is None and job["worker"] is None
    assert [j["id"] for j in await all_jobs(client, status="queued")] == [job["id"]]
    assert await all_jobs(client, status="running") == []

    missing = await client.post(f"{API}/spiders/nobody/run", json={})
    assert missing.status_code == 404
    assert missing.json()["type"].endswith("spider-not-found")
    assert (await client.get(f"{API}/jobs/{job['id'][:-4]}0000")).status_code == 404


async def test_a_worker_runs_a_spider_to_success_or_failure(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    ok = (await client.post(f"{API}/spiders/sleeper/run", json={"args": {"seconds": 0.1}})).json()
    bad = (await client.post(f"{API}/spiders/failing/run", json={})).json()
    async with worker_running(app, name="w"):
        ok = await wait_for_job(client, ok["id"], ended)
        bad = await wait_for_job(client, bad["id"], ended)
    assert ok["status"] == "succeeded" and ok["attempts"] == 1 and ok["error"] is None
    assert ok["worker"].startswith("w/") and ok["started_at"] and ok["finished_at"]
    assert bad["status"] == "failed" and bad["attempts"] == 1
    assert bad["error"] == "the command exited with status 3"

    retried = await client.post(f"{API}/jobs/{bad['id']}/retry")
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "queued" and retried.json()["attempts"] == 0
    again = await client.post(f"{API}/jobs/{bad['id']}/retry")
    assert again.status_code == 409 and again.json()["type"].endswith("job-state-conflict")


async def test_cancel_stops_a_queued_job_at_once_and_a_running_one_at_its_next_renewal(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    queued = (await client.post(f"{API}/spiders/sleeper/run", json={})).json()
    cancelled = await client.post(f"{API}/jobs/{queued['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"

    long = (await client.post(f"{API}/spiders/sleeper/run", json={"args": {"seconds": 60}})).json()
    async with worker_running(app, name="w"):
        await wait_for_job(client, long["id"], lambda job: job["status"] == "running")
        assert (await client.post(f"{API}/jobs/{long['id']}/cancel")).status_code == 200
        long = await wait_for_job(client, long["id"], ended)
    assert long["status"] == "cancelled"
    assert (await client.get(f"{API}/jobs/{queued['id']}")).json()["attempts"] == 0


async def test_a_jobs_own_endpoints_take_only_its_running_token(
    client: httpx.AsyncClient,
) -> None:
    job = (await client.post(f"{API}/spiders/sleeper/run", json={})).json()
    for headers in ({}, {"Authorization": "Bearer sjt_forged"}):
        response = await client.post(
            f"{API}/jobs/{job['id']}/items", json={"items": [{"a": 1}]}, headers=headers
        )
        assert response.status_code == 401, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
