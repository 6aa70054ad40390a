"""Schedule use cases: create, read, change, delete. Firing is `schedules/firing.py`."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select

from shopkeeper.core.db import Database, utcnow
from shopkeeper.core.errors import InvalidInput, NotFound
from shopkeeper.crawl.jobs.service import decode_cursor, encode_cursor
from shopkeeper.crawl.schedules import cron
from shopkeeper.crawl.schedules.models import Schedule
from shopkeeper.crawl.schedules.schemas import ScheduleCreate, ScheduleUpdate
from shopkeeper.crawl.spiders import registry


class ScheduleNotFound(NotFound):
    slug, title = "schedule-not-found", "Schedule not found"


class InvalidSchedule(InvalidInput):
    """422 in the shape of request validation errors."""

    def __init__(self, field: str, msg: str) -> None:
        super().__init__(msg, errors=[{"loc": ["body", field], "msg": msg}])


def _check(cron_expression: str, timezone: str, spider: str | None, spiders: Path | None) -> None:
    try:
        cron.validate(cron_expression, timezone)
    except cron.InvalidCron as exc:
        field = "timezone" if "time zone" in str(exc) else "cron"
        raise InvalidSchedule(field, str(exc)) from exc
    if spider is not None and spider not in registry.spiders(spiders):
        raise InvalidSchedule("spider", f"no spider named {spider!r} is registered")


async def create_schedule(
    db: Database, *, body: ScheduleCreate, spiders_file: Path | None
) -> Schedule:
    _check(body.cron, body.timezone, body.spider, spiders_file)
    now = utcnow()
    schedule = Schedule(
        name=body.name,
        cron=body.cron,
        timezone=body.timezone,
        spider=body.spider,
        crawl=body.crawl.model_dump() if body.crawl is not None else None,
        args=body.args,
        overlap=body.overlap,
        misfire_grace_s=body.misfire_grace_s,
        enabled=body.enabled,
        next_fire_at=cron.next_after(body.cron, body.timezone, now) if body.enabled else None,
        created_at=now,
        updated_at=now,
    )
    async with db.session() as session:
        session.add(schedule)
        await session.commit()
    return schedule


async def get_schedule(db: Database, *, schedule_id: uuid.UUID) -> Schedule:
    async with db.session() as session:
        schedule = await session.get(Schedule, schedule_id)
    if schedule is None:
        raise ScheduleNotFound(f"No schedule {schedule_id}")
    return schedule


async def list_schedules(
    db: Database, *, limit: int, cursor: str | None
) -> tuple[list[Schedule], str | None]:
    query = select(Schedule).order_by(Schedule.id.desc()).limit(limit + 1)
    if cursor is not None:
        query = query.where(Schedule.id < decode_cursor(cursor))
    async with db.session() as session:
        rows = list((await session.scalars(query)).all())
    page = rows[:limit]
    return page, (encode_cursor(page[-1].id) if len(rows) > limit else None)


async def update_schedule(
    db: Database, *, schedule_id: uuid.UUID, body: ScheduleUpdate, spiders_file: Path | None
) -> Schedule:
    """A change of cron, time zone or `enabled` recomputes `next_fire_at` from now: fires
    between the old and the new plan are not made up."""
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    async with db.session() as session:
        schedule = await session.get(Schedule, schedule_id, with_for_update=not db.is_sqlite)
        if schedule is None:
            raise ScheduleNotFound(f"No schedule {schedule_id}")
        if "crawl" in changes and changes["crawl"] is not None:
            changes["spider"] = None
        if "spider" in changes and changes["spider"] is not None:
            changes["crawl"] = None
        expression = changes.get("cron") or schedule.cron
        timezone = changes.get("timezone") or schedule.timezone
        _check(expression, timezone, changes.get("spider"), spiders_file)
        replan = bool({"cron", "timezone", "enabled"} & set(changes))
        for key, value in changes.items():
            if value is None and key not in {"crawl", "spider"}:
                continue
            setattr(schedule, key, value)
        if schedule.crawl is None and schedule.spider is None:
            raise InvalidSchedule("spider", "a schedule needs a `crawl` or a `spider`")
        if replan:
            schedule.next_fire_at = (
                cron.next_after(schedule.cron, schedule.timezone, utcnow())
                if schedule.enabled
                else None
            )
        schedule.updated_at = utcnow()
        await session.commit()
        return schedule


async def delete_schedule(db: Database, *, schedule_id: uuid.UUID) -> None:
    """The schedule stops firing; its jobs stay (their `schedule_id` names it still)."""
    async with db.session() as session:
        await get_schedule(db, schedule_id=schedule_id)
        await session.execute(delete(Schedule).where(Schedule.id == schedule_id))
        await session.commit()
