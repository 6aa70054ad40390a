"""Periodic jobs: however many schedulers run, a job runs once per period."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from shopkeeper.core.messaging.periodic import PeriodicJob, claim_run, run_scheduler
from shopkeeper.core.runtime import Runtime
from shopkeeper.core.settings import Settings


async def _never(runtime: Runtime) -> None:
    raise AssertionError("only claimed, never run")


async def test_concurrent_schedulers_claim_a_period_once(runtime: Runtime) -> None:
    job = PeriodicJob(name="test.hourly", every_seconds=3600, run=_never)

    first_period = await asyncio.gather(
        *(claim_run(runtime, job, holder=f"scheduler-{n}") for n in range(12))
    )
    same_period = await asyncio.gather(
        *(claim_run(runtime, job, holder=f"scheduler-{n}") for n in range(12))
    )

    assert first_period.count(True) == 1
    assert same_period.count(True) == 0


async def test_two_running_schedulers_run_a_job_once_per_period(
    runtime: Runtime, settings_factory: Callable[..., Settings]
) -> None:
    fast = Runtime(
        settings=settings_factory(scheduler_tick_seconds=0.02),
        db=runtime.db,
        ratelimiter=runtime.ratelimiter,
    )
    runs: list[str] = []

    async def record(runtime: Runtime) -> None:
        runs.append("ran")

    jobs = {"test.record": PeriodicJob(name="test.record", every_seconds=3600, run=record)}
    stop = asyncio.Event()
    schedulers = [asyncio.create_task(run_scheduler(fast, stop, jobs)) for _ in range(2)]
    while not runs:
        await asyncio.sleep(0.01)
    # Both schedulers keep ticking well past the first run; the period is an hour.
    await asyncio.sleep(0.02 * 10)
    stop.set()
    await asyncio.gather(*schedulers)

    assert runs == ["ran"]
