"""Schedules under `/api/v1/crawl/schedules`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from shopkeeper.core.errors import problem_responses
from shopkeeper.crawl.auth import CanRead, CanWrite
from shopkeeper.crawl.context import Crawler
from shopkeeper.crawl.schedules import service
from shopkeeper.crawl.schedules.models import Schedule
from shopkeeper.crawl.schedules.schemas import (
    ScheduleCreate,
    ScheduleOut,
    SchedulePage,
    ScheduleUpdate,
)

router = APIRouter(tags=["crawl schedules"])

AUTH = (401, 403)
NOT_FOUND = {"s404": "`schedule-not-found`"}
INVALID = {
    "s422": "`validation-error`: a cron expression or time zone that does not parse, "
    "an unknown spider, neither or both of `crawl` and `spider`"
}


def schedule_out(schedule: Schedule) -> ScheduleOut:
    return ScheduleOut.model_validate(schedule, from_attributes=True)


@router.post(
    "/schedules",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(*AUTH, 422, **INVALID),
)
async def create_schedule(body: ScheduleCreate, crawler: Crawler, _: CanWrite) -> ScheduleOut:
    """Fire a crawl or a spider on a cron: each fire time makes one job."""
    schedule = await service.create_schedule(
        crawler.db, body=body, spiders_file=crawler.settings.crawl_spiders_file
    )
    return schedule_out(schedule)


@router.get("/schedules", responses=problem_responses(*AUTH, 422, s422="`invalid-cursor`"))
async def list_schedules(
    crawler: Crawler,
    _: CanRead,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> SchedulePage:
    schedules, next_cursor = await service.list_schedules(crawler.db, limit=limit, cursor=cursor)
    return SchedulePage(items=[schedule_out(s) for s in schedules], next_cursor=next_cursor)


@router.get("/schedules/{schedule_id}", responses=problem_responses(*AUTH, 404, **NOT_FOUND))
async def get_schedule(schedule_id: uuid.UUID, crawler: Crawler, _: CanRead) -> ScheduleOut:
    return schedule_out(await service.get_schedule(crawler.db, schedule_id=schedule_id))


@router.patch(
    "/schedules/{schedule_id}",
    responses=problem_responses(*AUTH, 404, 422, **NOT_FOUND, **INVALID),
)
async def update_schedule(
    schedule_id: uuid.UUID, body: ScheduleUpdate, crawler: Crawler, _: CanWrite
) -> ScheduleOut:
    """Changing `cron`, `timezone` or `enabled` plans the next fire from now."""
    schedule = await service.update_schedule(
        crawler.db,
        schedule_id=schedule_id,
        body=body,
        spiders_file=crawler.settings.crawl_spiders_file,
    )
    return schedule_out(schedule)


@router.delete(
    "/schedules/{schedule_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(*AUTH, 404, **NOT_FOUND),
)
async def delete_schedule(schedule_id: uuid.UUID, crawler: Crawler, _: CanWrite) -> Response:
    """It stops firing; its jobs stay."""
    await service.delete_schedule(crawler.db, schedule_id=schedule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
