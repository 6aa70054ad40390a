"""The crawl UI's schedules, jobs and spiders: thin routes over the schedules' and jobs'
services. A job's log lines live in the logs system (service `crawl`, attribute `job_id`);
the crawl UI links to them at `/logs` rather than reading them."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from shopkeeper.accounts.web import Viewer
from shopkeeper.crawl.auth import WRITE
from shopkeeper.crawl.context import Crawler
from shopkeeper.crawl.jobs import service as jobs
from shopkeeper.crawl.jobs.models import JobStatus
from shopkeeper.crawl.jobs.runner import LOG_SERVICE
from shopkeeper.crawl.schedules import service as schedules
from shopkeeper.crawl.schedules.schemas import ScheduleUpdate
from shopkeeper.crawl.spiders import registry
from shopkeeper.crawl.ui.auth import CurrentViewer, CurrentWriter
from shopkeeper.crawl.ui.templates import act, page

router = APIRouter(prefix="/crawl", include_in_schema=False)

JOB_STATUSES = [status.value for status in JobStatus]
ENDED_JOB = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.DEAD}


def _base(viewer: Viewer, nav: str) -> dict[str, Any]:
    return {"viewer": viewer, "nav": nav, "can_write": viewer.can(WRITE)}


def logs_link(job_id: uuid.UUID, created_at: datetime) -> str:
    """The job's log lines in the logs UI, over the last day (or week, for an older job)."""
    query = f'{{service="{LOG_SERVICE}"}} | job_id="{job_id}"'
    age = datetime.now(UTC) - (created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC))
    return f"/logs?query={quote(query)}&range={'24h' if age < timedelta(hours=20) else '7d'}"


# --- schedules ------------------------------------------------------------------------------------


@router.get("/schedules", response_class=HTMLResponse)
async def schedule_list(request: Request, crawler: Crawler, viewer: CurrentViewer) -> Response:
    found, _ = await schedules.list_schedules(crawler.db, limit=100, cursor=None)
    return page(request, "crawl/schedules.html", {**_base(viewer, "schedules"), "schedules": found})


@router.get("/schedules/{schedule_id}", response_class=HTMLResponse)
async def schedule_page(
    request: Request, schedule_id: uuid.UUID, crawler: Crawler, viewer: CurrentViewer
) -> Response:
    schedule = await schedules.get_schedule(crawler.db, schedule_id=schedule_id)
    its_jobs, _ = await jobs.list_jobs(
        crawler.db, schedule_id=schedule_id, status=None, limit=50, cursor=None
    )
    context = {**_base(viewer, "schedules"), "schedule": schedule, "jobs": its_jobs}
    return page(request, "crawl/schedule.html", context)


async def _enable(crawler: Crawler, schedule_id: uuid.UUID, enabled: bool) -> Response:
    await schedules.update_schedule(
        crawler.db,
        schedule_id=schedule_id,
        body=ScheduleUpdate(enabled=enabled),
        spiders_file=crawler.settings.crawl_spiders_file,
    )
    return RedirectResponse(f"/crawl/schedules/{schedule_id}", status_code=303)


@router.post("/schedules/{schedule_id}/enable")
async def enable(schedule_id: uuid.UUID, crawler: Crawler, _: CurrentWriter) -> Response:
    return await _enable(crawler, schedule_id, True)


@router.post("/schedules/{schedule_id}/disable")
async def disable(schedule_id: uuid.UUID, crawler: Crawler, _: CurrentWriter) -> Response:
    return await _enable(crawler, schedule_id, False)


# --- jobs -----------------------------------------------------------------------------------------


@router.get("/jobs", response_class=HTMLResponse)
async def job_list(
    request: Request,
    crawler: Crawler,
    viewer: CurrentViewer,
    status: str | None = None,
    cursor: str | None = None,
) -> Response:
    state = status if status in JOB_STATUSES else None
    found, next_cursor = await jobs.list_jobs(
        crawler.db, schedule_id=None, status=state, limit=50, cursor=cursor
    )
    context = {
        **_base(viewer, "jobs"),
        "jobs": found,
        "next_cursor": next_cursor,
        "status": state or "",
        "statuses": JOB_STATUSES,
    }
    return page(request, "crawl/jobs.html", context)


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
async def job_page(
    request: Request, job_id: uuid.UUID, crawler: Crawler, viewer: CurrentViewer
) -> Response:
    job = await jobs.get_job(crawler.db, job_id=job_id)
    items, _ = await jobs.list_items(crawler.db, job_id=job_id, limit=20, cursor=None)
    context = {
        **_base(viewer, "jobs"),
        "job": job,
        "items": items,
        "ended": job.status in ENDED_JOB,
        "logs_link": logs_link(job.id, job.created_at),
        "stats_json": json.dumps(job.stats, indent=2, sort_keys=True),
    }
    return page(request, "crawl/job.html", context)


def _to_job(job_id: uuid.UUID) -> Response:
    return RedirectResponse(f"/crawl/jobs/{job_id}", status_code=303)


@router.post("/jobs/{job_id}/cancel")
async def cancel_job(job_id: uuid.UUID, crawler: Crawler, _: CurrentWriter) -> Response:
    return await act(jobs.cancel_job(crawler.db, job_id=job_id), f"/crawl/jobs/{job_id}")


@router.post("/jobs/{job_id}/retry")
async def retry_job(job_id: uuid.UUID, crawler: Crawler, _: CurrentWriter) -> Response:
    return await act(jobs.retry_job(crawler.db, job_id=job_id), f"/crawl/jobs/{job_id}")


# --- spiders --------------------------------------------------------------------------------------


def _spiders_context(crawler: Crawler, viewer: Viewer) -> dict[str, Any]:
    found = registry.spiders(crawler.settings.crawl_spiders_file)
    return {**_base(viewer, "spiders"), "spiders": list(found.values()), "error": None}


@router.get("/spiders", response_class=HTMLResponse)
async def spider_list(request: Request, crawler: Crawler, viewer: CurrentViewer) -> Response:
    return page(request, "crawl/spiders.html", _spiders_context(crawler, viewer))


@router.post("/spiders/{name}/run")
async def run_spider(
    request: Request,
    name: str,
    crawler: Crawler,
    viewer: CurrentWriter,
    args: Annotated[str, Form()] = "{}",
) -> Response:
    context = _spiders_context(crawler, viewer)
    try:
        spec = registry.spider(crawler.settings.crawl_spiders_file, name)
        parsed = json.loads(args or "{}")
        if not isinstance(parsed, dict):
            raise ValueError("args must be a JSON object")
    except registry.UnknownSpider:
        context["error"] = f"No spider named {name!r} is registered."
        return page(request, "crawl/spiders.html", context, 404)
    except ValueError as exc:
        context["error"] = f"{name}: the arguments are not a JSON object ({exc})."
        return page(request, "crawl/spiders.html", context, 422)
    job = await jobs.run_spider(
        crawler.db, spider=name, args=parsed, max_attempts=spec.max_attempts
    )
    return _to_job(job.id)
