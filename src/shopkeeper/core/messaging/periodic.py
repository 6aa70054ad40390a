"""`@periodic` jobs: runs are claimed through a lease row, so that any number of schedulers run
each job once per period."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import structlog
from prometheus_client import Counter
from sqlalchemy import String, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from shopkeeper.core.db import Base, UTCDateTime, affected_rows, utcnow
from shopkeeper.core.messaging.host import Host

log = structlog.get_logger(__name__)

PERIODIC_RUNS = Counter("shopkeeper_periodic_runs_total", "Periodic job runs", ["job", "outcome"])

PeriodicFunction = Callable[[Any], Awaitable[object]]
"""`async def job(runtime)`: the scheduler passes the host it was started with (the process's
`Runtime`) through, untouched; jobs annotate it with the type they use."""


@dataclass(frozen=True, slots=True)
class PeriodicJob:
    name: str
    every_seconds: float
    run: PeriodicFunction


_PERIODIC: dict[str, PeriodicJob] = {}


P = TypeVar("P", bound=PeriodicFunction)


def periodic(name: str, every_seconds: float) -> Callable[[P], P]:
    """Run the decorated `async def job(runtime)` every `every_seconds` in `shopkeeper scheduler`
    (or inside `serve` when embedded). However many schedulers run, one of them runs a job per
    period; a job should still be idempotent, since a run that crashes is not repeated early."""

    def register(function: P) -> P:
        _PERIODIC[name] = PeriodicJob(name=name, every_seconds=every_seconds, run=function)
        return function

    return register


def periodic_jobs() -> dict[str, PeriodicJob]:
    return dict(_PERIODIC)


class JobLease(Base):
    """When a periodic job may next run; a scheduler claims a run by moving `next_run_at`."""

    __tablename__ = "job_leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    next_run_at: Mapped[datetime] = mapped_column(UTCDateTime)
    holder: Mapped[str | None] = mapped_column(String(200), default=None)


async def claim_run(host: Host, job: PeriodicJob, holder: str) -> bool:
    """True if this scheduler won the current period of `job`. A conditional UPDATE decides, so
    of two schedulers reaching the same period only one sees its row count at 1."""
    now = utcnow()
    next_run = now + timedelta(seconds=job.every_seconds)
    async with host.db.session() as session:
        claimed = await session.execute(
            update(JobLease)
            .where(JobLease.name == job.name, JobLease.next_run_at <= now)
            .values(next_run_at=next_run, holder=holder)
        )
        if affected_rows(claimed) == 1:
            await session.commit()
            return True
        if await session.get(JobLease, job.name) is not None:
            return False
        session.add(JobLease(name=job.name, next_run_at=next_run, holder=holder))
        try:
            await session.commit()
        except IntegrityError:  # another scheduler inserted the first lease a moment ago
            return False
        return True


async def run_scheduler(
    host: Host, stop: asyncio.Event, jobs: dict[str, PeriodicJob] | None = None
) -> None:
    """Run due periodic jobs until `stop` is set; each run gets `host`."""
    holder = f"{socket.gethostname()}:{id(stop)}"
    selected = jobs if jobs is not None else periodic_jobs()
    running: dict[str, asyncio.Task[None]] = {}
    while not stop.is_set():
        for job in selected.values():
            if job.name in running and not running[job.name].done():
                continue
            try:
                won = await claim_run(host, job, holder)
            except Exception as exc:  # the database may be restarting; try again next tick
                log.warning("periodic_claim_failed", job=job.name, error=str(exc))
                continue
            if won:
                running[job.name] = asyncio.create_task(_run_job(host, job))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), host.settings.scheduler_tick_seconds)
    for task in running.values():
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, timeout=10)


async def _run_job(host: Host, job: PeriodicJob) -> None:
    try:
        await job.run(host)
    except Exception:
        PERIODIC_RUNS.labels(job.name, "failed").inc()
        log.exception("periodic_job_failed", job=job.name)
    else:
        PERIODIC_RUNS.labels(job.name, "succeeded").inc()
