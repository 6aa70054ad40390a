"""Job use cases: run a spider, list and read jobs, cancel and retry; and what runners do with
them: claim (a conditional update, so one runner wins a job), renew the lease, finish, and the
reconciler that retries or buries a job whose runner stopped renewing.

Every change is an atomic conditional UPDATE on the job's status (and, for a runner, on the
runner's own name and attempt), never read-modify-write in Python.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from shopkeeper.core.db import Database, affected_rows, new_id, utcnow
from shopkeeper.core.errors import Conflict, InvalidInput, NotFound, Unauthorized
from shopkeeper.core.messaging.events import record_event
from shopkeeper.crawl.jobs.events import CrawlJobQueued
from shopkeeper.crawl.jobs.models import ENDED_JOB, LIVE_JOB, Job, JobItem, JobStatus
from shopkeeper.crawl.schedules.models import Schedule

TOKEN_PREFIX = "sjt_"  # noqa: S105 - a marker, not a secret


class JobNotFound(NotFound):
    slug, title = "job-not-found", "Job not found"


class JobStateConflict(Conflict):
    slug, title = "job-state-conflict", "The job cannot do that in its current status"


class InvalidJobToken(Unauthorized):
    slug, title = "invalid-job-token", "Not this job's running token"


class InvalidCursor(InvalidInput):
    slug, title = "invalid-cursor", "Invalid cursor"


@dataclass(frozen=True, slots=True)
class Claimed:
    job: Job
    token: str
    """The run's bearer token (only its hash is stored)."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_job(
    *,
    spider: str | None = None,
    crawl: Mapping[str, Any] | None = None,
    args: Mapping[str, Any] | None = None,
    schedule_id: uuid.UUID | None = None,
    fire_at: datetime | None = None,
    max_attempts: int = 3,
) -> Job:
    return Job(
        id=new_id(),
        schedule_id=schedule_id,
        fire_at=fire_at,
        spider=spider,
        crawl=dict(crawl) if crawl is not None else None,
        args=dict(args or {}),
        status=JobStatus.QUEUED,
        attempts=0,
        max_attempts=max_attempts,
        cancel_requested=False,
        stats={},
        created_at=utcnow(),
    )


def add_job(session: AsyncSession, job: Job) -> None:
    """Add a queued job and its outbox event to the session's transaction."""
    session.add(job)
    record_event(
        session,
        CrawlJobQueued(
            job_id=job.id,
            schedule_id=job.schedule_id,
            spider=job.spider,
            fire_at=job.fire_at,
        ),
    )


async def run_spider(
    db: Database, *, spider: str, args: Mapping[str, Any], max_attempts: int
) -> Job:
    job = new_job(spider=spider, args=args, max_attempts=max_attempts)
    async with db.session() as session:
        add_job(session, job)
        await session.commit()
    return await get_job(db, job_id=job.id)


# --- read ----------------------------------------------------------------------------------------


async def get_job(db: Database, *, job_id: uuid.UUID) -> Job:
    async with db.session() as session:
        job = await session.get(Job, job_id)
        if job is None:
            raise JobNotFound(f"No job {job_id}")
        return job


async def list_jobs(
    db: Database,
    *,
    schedule_id: uuid.UUID | None,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[Job], str | None]:
    """Newest first (UUIDv7 ids are time-ordered)."""
    query = select(Job).order_by(Job.id.desc()).limit(limit + 1)
    if schedule_id is not None:
        query = query.where(Job.schedule_id == schedule_id)
    if status is not None:
        query = query.where(Job.status == status)
    if cursor is not None:
        query = query.where(Job.id < decode_cursor(cursor))
    async with db.session() as session:
        jobs = list((await session.scalars(query)).all())
    page = jobs[:limit]
    return page, (encode_cursor(page[-1].id) if len(jobs) > limit else None)


async def list_items(
    db: Database, *, job_id: uuid.UUID, limit: int, cursor: str | None
) -> tuple[list[JobItem], str | None]:
    await get_job(db, job_id=job_id)
    query = select(JobItem).where(JobItem.job_id == job_id).order_by(JobItem.id).limit(limit + 1)
    if cursor is not None:
        query = query.where(JobItem.id > decode_cursor(cursor))
    async with db.session() as session:
        items = list((await session.scalars(query)).all())
    page = items[:limit]
    return page, (encode_cursor(page[-1].id) if len(items) > limit else None)


# --- cancel, retry -------------------------------------------------------------------------


async def cancel_job(db: Database, *, job_id: uuid.UUID) -> Job:
    """A queued job is cancelled at once; a running one is asked to stop (its runner sees it at
    its next renewal, stops the spider and records `cancelled`). Cancelling an ended job is a
    conflict, cancelling a cancelled one a no-op."""
    now = utcnow()
    async with db.session() as session:
        queued = await session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
            .values(status=JobStatus.CANCELLED, finished_at=now, cancel_requested=True)
        )
        if affected_rows(queued) == 0:
            await session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == JobStatus.RUNNING)
                .values(cancel_requested=True)
            )
        await session.commit()
    job = await get_job(db, job_id=job_id)
    if job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.DEAD):
        raise JobStateConflict(f"The job is {job.status}; it cannot be cancelled")
    return job


async def retry_job(db: Database, *, job_id: uuid.UUID) -> Job:
    """An ended job (failed, dead, cancelled, succeeded) runs again: queued, attempts anew, with
    a crawl of its own (its previous crawl and items stay as they were)."""
    async with db.session() as session:
        result = await session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status.in_(ENDED_JOB))
            .values(
                status=JobStatus.QUEUED,
                attempts=0,
                worker=None,
                lease_expires_at=None,
                cancel_requested=False,
                token_hash=None,
                crawl_id=None,
                error=None,
                started_at=None,
                finished_at=None,
            )
        )
        await session.commit()
    job = await get_job(db, job_id=job_id)
    if affected_rows(result) == 0:
        raise JobStateConflict(f"The job is {job.status}; only an ended job can be retried")
    return job


async def cancel_live_jobs_of_schedule(session: AsyncSession, schedule_id: uuid.UUID) -> None:
    """For `cancel_previous`: in the caller's transaction."""
    now = utcnow()
    await session.execute(
        update(Job)
        .where(Job.schedule_id == schedule_id, Job.status == JobStatus.QUEUED)
        .values(status=JobStatus.CANCELLED, finished_at=now, cancel_requested=True)
    )
    await session.execute(
        update(Job)
        .where(Job.schedule_id == schedule_id, Job.status == JobStatus.RUNNING)
        .values(cancel_requested=True)
    )


async def has_live_job(session: AsyncSession, schedule_id: uuid.UUID) -> bool:
    found = await session.scalar(
        select(Job.id).where(Job.schedule_id == schedule_id, Job.status.in_(LIVE_JOB)).limit(1)
    )
    return found is not None


# --- runners -----------------------------------------------------------------------------


async def claim(db: Database, *, worker: str, limit: int, lease_seconds: float) -> list[Claimed]:
    """Up to `limit` queued jobs, oldest first, each won by a conditional update (two runners
    reaching the same job: one gets it). A schedule's jobs run one at a time, in order: a job
    waits while another job of its schedule runs or an older one is queued (the schedule's row
    is locked for the claim on PostgreSQL, so two runners cannot start two of its jobs)."""
    if limit <= 0:
        return []
    query = (
        select(Job.id, Job.schedule_id)
        .where(Job.status == JobStatus.QUEUED)
        .order_by(Job.created_at, Job.id)
        .limit(limit * 4)
    )
    claimed: list[Claimed] = []
    async with db.session() as session:
        candidates = [(row[0], row[1]) for row in await session.execute(query)]
    for job_id, schedule_id in candidates:
        if len(claimed) >= limit:
            break
        token = TOKEN_PREFIX + secrets.token_urlsafe(24)
        now = utcnow()
        condition = [Job.id == job_id, Job.status == JobStatus.QUEUED]
        async with db.session() as session:
            if schedule_id is not None:
                if not db.is_sqlite:  # SQLite runs one writer at a time anyway
                    await session.execute(
                        select(Schedule.id).where(Schedule.id == schedule_id).with_for_update()
                    )
                other = aliased(Job)
                condition.append(
                    ~exists().where(
                        other.schedule_id == schedule_id,
                        other.id != job_id,
                        or_(
                            other.status == JobStatus.RUNNING,
                            and_(
                                other.status == JobStatus.QUEUED,
                                or_(
                                    other.created_at < Job.created_at,
                                    and_(other.created_at == Job.created_at, other.id < Job.id),
                                ),
                            ),
                        ),
                    )
                )
            result = await session.execute(
                update(Job)
                .where(*condition)
                .values(
                    status=JobStatus.RUNNING,
                    worker=worker,
                    attempts=Job.attempts + 1,
                    lease_expires_at=now + timedelta(seconds=lease_seconds),
                    token_hash=hash_token(token),
                    started_at=now,
                    error=None,
                )
                .execution_options(synchronize_session=False)
            )
            await session.commit()
            if affected_rows(result) == 1:
                job = await session.get(Job, job_id, populate_existing=True)
                if job is not None:
                    claimed.append(Claimed(job, token))
    return claimed


async def renew(
    db: Database, *, worker: str, held: Mapping[uuid.UUID, int], lease_seconds: float
) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
    """Extend the leases of the jobs this runner holds (id -> attempt); return (still held,
    asked to cancel). A job missing from the first set was taken from this runner (reaped as
    lost, or retried): its run must stop without recording anything."""
    if not held:
        return set(), set()
    until = utcnow() + timedelta(seconds=lease_seconds)
    conditions = [
        and_(Job.id == job_id, Job.attempts == attempt) for job_id, attempt in held.items()
    ]
    async with db.session() as session:
        await session.execute(
            update(Job)
            .where(or_(*conditions), Job.worker == worker, Job.status == JobStatus.RUNNING)
            .values(lease_expires_at=until)
        )
        rows = (
            await session.execute(
                select(Job.id, Job.cancel_requested).where(
                    or_(*conditions), Job.worker == worker, Job.status == JobStatus.RUNNING
                )
            )
        ).all()
        await session.commit()
    return {row[0] for row in rows}, {row[0] for row in rows if row[1]}


async def finish(
    db: Database,
    *,
    job_id: uuid.UUID,
    worker: str,
    attempt: int,
    status: JobStatus,
    error: str | None = None,
    stats: Mapping[str, Any] | None = None,
) -> bool:
    """Record the run's end, if this runner still holds the job (False when it does not)."""
    values: dict[str, Any] = {
        "status": status,
        "error": error,
        "finished_at": utcnow(),
        "lease_expires_at": None,
        "token_hash": None,
    }
    async with db.session() as session:
        if stats:
            job = await session.get(Job, job_id)
            if job is not None:
                values["stats"] = {**job.stats, **stats}
        result = await session.execute(
            update(Job)
            .where(
                Job.id == job_id,
                Job.worker == worker,
                Job.attempts == attempt,
                Job.status == JobStatus.RUNNING,
            )
            .values(values)
        )
        await session.commit()
    return affected_rows(result) == 1


async def reconcile(db: Database) -> tuple[int, int]:
    """Running jobs whose lease expired (their runner died or hung): back to `queued` while
    attempts remain, else `dead`. Return (retried, dead). Safe to run anywhere, at once."""
    now = utcnow()
    expired = and_(Job.status == JobStatus.RUNNING, Job.lease_expires_at < now)
    async with db.session() as session:
        dead = await session.execute(
            update(Job)
            .where(expired, or_(Job.attempts >= Job.max_attempts, Job.cancel_requested))
            .values(
                status=JobStatus.DEAD,
                finished_at=now,
                token_hash=None,
                lease_expires_at=None,
                error="its worker was lost",
            )
        )
        retried = await session.execute(
            update(Job)
            .where(expired)
            .values(
                status=JobStatus.QUEUED,
                worker=None,
                token_hash=None,
                lease_expires_at=None,
                error="its worker was lost; retried",
            )
        )
        await session.commit()
    return affected_rows(retried), affected_rows(dead)


async def set_crawl(db: Database, *, job_id: uuid.UUID, crawl_id: uuid.UUID) -> None:
    async with db.session() as session:
        await session.execute(update(Job).where(Job.id == job_id).values(crawl_id=crawl_id))
        await session.commit()


async def merge_stats(db: Database, *, job_id: uuid.UUID, stats: Mapping[str, Any]) -> None:
    async with db.session() as session:
        job = await session.get(Job, job_id, with_for_update=not db.is_sqlite)
        if job is not None:
            job.stats = {**job.stats, **stats}
        await session.commit()


async def add_items(db: Database, *, job_id: uuid.UUID, items: Sequence[Mapping[str, Any]]) -> int:
    if not items:
        return 0
    now = utcnow()
    async with db.session() as session:
        session.add_all(JobItem(job_id=job_id, data=dict(item), created_at=now) for item in items)
        await session.commit()
    return len(items)


async def count_items(db: Database, *, job_id: uuid.UUID) -> int:
    async with db.session() as session:
        count = await session.scalar(
            select(func.count()).select_from(JobItem).where(JobItem.job_id == job_id)
        )
    return int(count or 0)


async def running_job_for_token(db: Database, *, job_id: uuid.UUID, token: str) -> Job:
    """The running job this token was issued for; `InvalidJobToken` (401) otherwise."""
    job = await get_job(db, job_id=job_id)
    if (
        job.status != JobStatus.RUNNING
        or job.token_hash is None
        or not hmac.compare_digest(job.token_hash, hash_token(token))
    ):
        raise InvalidJobToken("The token is not this running job's")
    return job


async def live_job_crawls(session: AsyncSession) -> set[uuid.UUID]:
    """Crawls owned by a spider job still queued or running: their job decides when they end."""
    rows = await session.scalars(
        select(Job.crawl_id).where(
            Job.crawl_id.is_not(None), Job.spider.is_not(None), Job.status.in_(LIVE_JOB)
        )
    )
    return {crawl_id for crawl_id in rows if crawl_id is not None}


def encode_cursor(value: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(value.bytes).decode().rstrip("=")


def decode_cursor(cursor: str) -> uuid.UUID:
    try:
        return uuid.UUID(bytes=base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError as exc:
        raise InvalidCursor("The cursor is not one this endpoint returned") from exc
