"""Real `shopkeeper scheduler` processes, SIGKILLed and restarted: one job per fire time, and
the misfire grace across a restart.

The issue asks for two schedulers firing every second for a minute; this runs them for 25 s
(25 fire times, each raced by both processes at a 0.1 s tick): the machine is shared, and a
longer run proves nothing more about the race, which the conditional update and the unique
(schedule_id, fire_at) decide per fire time."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from shopkeeper.core.settings import Settings
from tests.conftest import ServerProcess, settings_env
from tests.crawl.scheduling import CRAWL_BODY, all_jobs

API = "/api/v1/crawl/schedules"


def start_schedulers(
    process_factory: Callable[..., ServerProcess], settings: Settings, count: int
) -> list[ServerProcess]:
    env = settings_env(settings)
    return [process_factory(["scheduler"], env) for _ in range(count)]


async def wait_until(moment: datetime) -> None:
    while datetime.now(UTC) < moment:
        await asyncio.sleep(0.05)


def fire_times(jobs: list[dict[str, Any]]) -> list[datetime]:
    return sorted(datetime.fromisoformat(job["fire_at"]) for job in jobs)


async def test_two_schedulers_make_exactly_one_job_per_second(
    client: httpx.AsyncClient,
    settings: Settings,
    process_factory: Callable[..., ServerProcess],
) -> None:
    schedulers = start_schedulers(process_factory, settings, 2)
    response = await client.post(
        API,
        json={
            "name": "every second",
            "cron": "* * * * * *",
            "overlap": "queue",
            "crawl": CRAWL_BODY,
        },
    )
    assert response.status_code == 201, response.text
    schedule = response.json()
    first = datetime.fromisoformat(schedule["next_fire_at"])
    await wait_until(first + timedelta(seconds=25))
    for scheduler in schedulers:
        assert scheduler.process.poll() is None, scheduler.log_path.read_text()
    await client.patch(f"{API}/{schedule['id']}", json={"enabled": False})
    for scheduler in schedulers:
        scheduler.stop(signal.SIGTERM)

    times = Counter(fire_times(await all_jobs(client, schedule=schedule["id"])))
    assert set(times.values()) == {1}, [t for t, n in times.items() if n > 1]
    last = max(times)
    assert last >= first + timedelta(seconds=24)
    # Every second from the first fire to the last has its job: none lost, none doubled.
    assert sorted(times) == [first + timedelta(seconds=n) for n in range(len(times))]


async def test_a_fire_missed_during_a_restart_runs_once_within_grace_and_not_beyond(
    client: httpx.AsyncClient,
    settings: Settings,
    process_factory: Callable[..., ServerProcess],
) -> None:
    # Up, and firing (a per-second probe schedule got a job), before the schedules exist.
    [scheduler] = start_schedulers(process_factory, settings, 1)
    probe = (
        await client.post(API, json={"name": "probe", "cron": "* * * * * *", "crawl": CRAWL_BODY})
    ).json()
    deadline = time.monotonic() + 60
    while not await all_jobs(client, schedule=probe["id"]):
        assert time.monotonic() < deadline, scheduler.log_path.read_text()
        await asyncio.sleep(0.1)
    await client.delete(f"{API}/{probe['id']}")
    schedules = {}
    for name, grace in (("patient", 60), ("strict", 3)):
        response = await client.post(
            API,
            json={
                "name": name,
                "cron": "*/10 * * * * *",
                "misfire_grace_s": grace,
                "overlap": "queue",
                "crawl": CRAWL_BODY,
            },
        )
        assert response.status_code == 201, response.text
        schedules[name] = response.json()
    first = datetime.fromisoformat(schedules["patient"]["next_fire_at"])
    assert datetime.fromisoformat(schedules["strict"]["next_fire_at"]) == first
    # The first fire time makes a job for each schedule.
    while not all([await all_jobs(client, schedule=s["id"]) for s in schedules.values()]):
        assert time.monotonic() < deadline + 20, scheduler.log_path.read_text()
        await asyncio.sleep(0.1)
    # Down before the next fire time; up again 5 s after it: beyond the strict schedule's
    # grace of 3 s, within the patient one's 60 s.
    scheduler.stop(signal.SIGKILL)
    missed = first + timedelta(seconds=10)
    assert datetime.now(UTC) < missed, "the scheduler took too long to fire the first time"
    await wait_until(missed + timedelta(seconds=5))
    [restarted] = start_schedulers(process_factory, settings, 1)
    following = missed + timedelta(seconds=10)
    deadline = time.monotonic() + 60
    while not all(
        [
            following in fire_times(await all_jobs(client, schedule=s["id"]))
            for s in schedules.values()
        ]
    ):
        assert time.monotonic() < deadline, restarted.log_path.read_text()
        await asyncio.sleep(0.2)
    for schedule in schedules.values():
        await client.patch(f"{API}/{schedule['id']}", json={"enabled": False})
    restarted.stop(signal.SIGTERM)

    patient = fire_times(await all_jobs(client, schedule=schedules["patient"]["id"]))
    strict = fire_times(await all_jobs(client, schedule=schedules["strict"]["id"]))
    assert patient[:3] == [first, missed, following] and len(set(patient)) == len(patient)
    assert strict[:2] == [first, following] and missed not in strict
