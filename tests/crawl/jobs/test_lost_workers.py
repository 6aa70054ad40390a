"""`shopkeeper crawl worker` processes SIGKILLed while running a job: the job is retried on
another worker (or marked `dead` when out of attempts), never left `running`, and the killed
worker's spider process dies with it."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from shopkeeper.core.settings import Settings
from tests.conftest import ServerProcess, settings_env
from tests.crawl.scheduling import wait_for_job

API = "/api/v1/crawl"


def start_workers(
    process_factory: Callable[..., ServerProcess], settings: Settings, count: int
) -> dict[str, ServerProcess]:
    env = settings_env(settings)
    return {
        f"w{n}": process_factory(["crawl", "worker", "--name", f"w{n}", "--concurrency", "2"], env)
        for n in range(count)
    }


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (killed, not yet reaped by its init) counts as dead.
    status = Path(f"/proc/{pid}/stat").read_text().split()[2]
    return status != "Z"


async def kill_the_holder(
    client: httpx.AsyncClient,
    workers: dict[str, ServerProcess],
    job_id: str,
    started: Path | None = None,
) -> str:
    """SIGKILL the worker running the job (once its spider wrote `started`, if given)."""
    job = await wait_for_job(client, job_id, lambda j: j["status"] == "running", timeout=90)
    deadline = time.monotonic() + 30
    while started is not None and not started.exists():
        assert time.monotonic() < deadline, "the spider did not start"
        await asyncio.sleep(0.05)
    holder = job["worker"].split("/")[0]
    workers[holder].stop(signal.SIGKILL)
    return holder


async def test_a_job_whose_worker_is_killed_is_retried_on_another_worker(
    client: httpx.AsyncClient,
    settings: Settings,
    process_factory: Callable[..., ServerProcess],
    tmp_path: Path,
) -> None:
    pidfile = tmp_path / "spider.pid"
    workers = start_workers(process_factory, settings, 2)
    job = (
        await client.post(
            f"{API}/spiders/sleeper/run", json={"args": {"seconds": 4, "pidfile": str(pidfile)}}
        )
    ).json()
    first_spider = Path(f"{pidfile}.1")
    killed = await kill_the_holder(client, workers, job["id"], started=first_spider)

    job = await wait_for_job(
        client, job["id"], lambda j: j["status"] not in {"queued", "running"}, timeout=90
    )
    assert job["status"] == "succeeded", job
    assert job["attempts"] == 2
    assert not job["worker"].startswith(f"{killed}/")
    # The first attempt's program died with its worker (parent-death signal).
    pid = int(first_spider.read_text())
    deadline = time.monotonic() + 10
    while alive(pid):
        assert time.monotonic() < deadline, f"spider {pid} outlived its worker"
        await asyncio.sleep(0.1)
    for worker in workers.values():
        worker.stop(signal.SIGTERM)


async def test_a_job_out_of_attempts_is_dead_not_running(
    client: httpx.AsyncClient,
    settings: Settings,
    process_factory: Callable[..., ServerProcess],
) -> None:
    workers = start_workers(process_factory, settings, 2)
    job = (await client.post(f"{API}/spiders/fragile/run", json={"args": {"seconds": 60}})).json()
    assert job["max_attempts"] == 1
    await kill_the_holder(client, workers, job["id"])
    job = await wait_for_job(client, job["id"], lambda j: j["status"] != "running", timeout=90)
    assert job["status"] == "dead" and job["attempts"] == 1
    assert job["error"] == "its worker was lost"
    for worker in workers.values():
        worker.stop(signal.SIGTERM)


async def test_a_worker_stopped_with_sigterm_hands_its_job_back_unspent(
    client: httpx.AsyncClient,
    settings: Settings,
    process_factory: Callable[..., ServerProcess],
) -> None:
    workers = start_workers(process_factory, settings, 1)
    job = (await client.post(f"{API}/spiders/fragile/run", json={"args": {"seconds": 60}})).json()
    await wait_for_job(client, job["id"], lambda j: j["status"] == "running", timeout=90)
    workers["w0"].stop(signal.SIGTERM)
    job = (await client.get(f"{API}/jobs/{job['id']}")).json()
    assert job["status"] == "queued" and job["attempts"] == 0 and job["worker"] is None
