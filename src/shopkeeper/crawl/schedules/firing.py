"""Firing due schedules: any number of scheduler processes may run `fire_due` at once.

A schedule's fire times up to now are claimed by moving its `next_fire_at` with a conditional
UPDATE (WHERE next_fire_at = the value read), in the same transaction as the jobs and their
outbox events; the jobs' UNIQUE(schedule_id, fire_at) is the second guard. So each fire time
makes at most one job, whichever scheduler gets there.

Missed fires (every scheduler was down): a fire time within `misfire_grace_s` of now still
makes its job (late, with `fire_at` the scheduled time); older ones are skipped and logged.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog
from prometheus_client import Counter
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from shopkeeper.core.db import Database, affected_rows, utcnow
from shopkeeper.crawl.jobs import service as jobs
from shopkeeper.crawl.schedules import cron
from shopkeeper.crawl.schedules.models import Overlap, Schedule

log = structlog.get_logger(__name__)

FIRES = Counter(
    "shopkeeper_crawl_schedule_fires_total",
    "Schedule fire times, by what became of them",
    ["outcome"],
)
MAX_FIRES_PER_PASS = 1000
"""Fire times one pass walks per schedule (a per-second schedule down for a day catches up
over several passes; those beyond the grace are skipped anyway)."""


async def fire_due(db: Database, *, now: datetime | None = None) -> int:
    """Fire every schedule whose `next_fire_at` has come; return the jobs made here."""
    now = now or utcnow()
    async with db.session() as session:
        due = list(
            await session.scalars(
                select(Schedule).where(
                    Schedule.enabled.is_(True),
                    Schedule.next_fire_at.is_not(None),
                    Schedule.next_fire_at <= now,
                )
            )
        )
    made = 0
    for schedule in due:
        try:
            made += await _fire(db, schedule, now)
        except Exception:
            log.exception("crawl_schedule_fire_failed", schedule_id=str(schedule.id))
    return made


async def _fire(db: Database, schedule: Schedule, now: datetime) -> int:
    claimed_from = schedule.next_fire_at
    assert claimed_from is not None
    times = [claimed_from]
    later = cron.times_after(schedule.cron, schedule.timezone, claimed_from)
    following = next(later)
    while following <= now and len(times) < MAX_FIRES_PER_PASS:
        times.append(following)
        following = next(later)
    oldest_allowed = now - timedelta(seconds=schedule.misfire_grace_s)
    firing = [at for at in times if at >= oldest_allowed]
    missed = len(times) - len(firing)
    made = 0
    async with db.session() as session:
        claimed = await session.execute(
            update(Schedule)
            .where(
                Schedule.id == schedule.id,
                Schedule.enabled.is_(True),
                Schedule.next_fire_at == claimed_from,
            )
            .values(next_fire_at=following)
        )
        if affected_rows(claimed) != 1:
            return 0  # another scheduler fired these, or the schedule changed meanwhile
        for fire_at in firing:
            if schedule.overlap == Overlap.SKIP and await jobs.has_live_job(session, schedule.id):
                FIRES.labels("skipped_overlap").inc()
                log.info(
                    "crawl_schedule_fire_skipped",
                    schedule_id=str(schedule.id),
                    fire_at=fire_at.isoformat(),
                    reason="the previous job is still queued or running",
                )
                continue
            if schedule.overlap == Overlap.CANCEL_PREVIOUS:
                await jobs.cancel_live_jobs_of_schedule(session, schedule.id)
            jobs.add_job(
                session,
                jobs.new_job(
                    spider=schedule.spider,
                    crawl=schedule.crawl,
                    args=schedule.args,
                    schedule_id=schedule.id,
                    fire_at=fire_at,
                ),
            )
            await session.flush()
            made += 1
        try:
            await session.commit()
        except IntegrityError:
            # A job for one of these fire times exists already: someone fired them.
            await session.rollback()
            FIRES.labels("duplicate").inc()
            return 0
    FIRES.labels("fired").inc(made)
    if missed:
        FIRES.labels("missed").inc(missed)
        log.warning(
            "crawl_schedule_fires_missed",
            schedule_id=str(schedule.id),
            missed=missed,
            grace_s=schedule.misfire_grace_s,
            first=times[0].isoformat(),
        )
    return made
