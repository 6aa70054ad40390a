"""Jobs and spiders under `/api/v1/crawl`: run a spider, read, cancel and retry jobs, and the
endpoints a running job reports through with its own token."""

from __future__ import annotations

import uuid
from typing import Annotated

import structlog
from fastapi import APIRouter, Query, status

from shopkeeper.core.errors import problem_responses
from shopkeeper.crawl import results
from shopkeeper.crawl.auth import CanRead, CanWrite
from shopkeeper.crawl.context import Crawler
from shopkeeper.crawl.jobs import crawls, service
from shopkeeper.crawl.jobs.auth import RunningJob
from shopkeeper.crawl.jobs.models import Job
from shopkeeper.crawl.jobs.runner import LOG_SERVICE
from shopkeeper.crawl.schedules.schemas import (
    JobItemOut,
    JobItemPage,
    JobItems,
    JobItemsAdded,
    JobOut,
    JobPage,
    JobProgress,
    JobRequests,
    JobRequestsAdded,
    JobStatusName,
    SpiderOut,
    SpiderRun,
)
from shopkeeper.crawl.schemas import PageOut, PagePage, PageStateName
from shopkeeper.crawl.spiders import registry

router = APIRouter(tags=["crawl jobs"])
log = structlog.get_logger("shopkeeper.crawl.jobs")

AUTH = (401, 403)
Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[str | None, Query(max_length=200)]


def job_out(job: Job) -> JobOut:
    return JobOut.model_validate(job, from_attributes=True)


class SpiderNotFound(service.JobNotFound):
    slug, title = "spider-not-found", "Spider not found"


@router.get("/spiders", responses=problem_responses(*AUTH))
async def list_spiders(crawler: Crawler, _: CanRead) -> list[SpiderOut]:
    """The spiders this deploy registered (spiders file and `shopkeeper.spiders` entry points)."""
    found = registry.spiders(crawler.settings.crawl_spiders_file)
    return [
        SpiderOut(name=spec.name, kind=spec.kind, description=spec.description)
        for spec in found.values()
    ]


@router.post(
    "/spiders/{name}/run",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(*AUTH, 404, 422, s404="`spider-not-found`"),
)
async def run_spider(name: str, body: SpiderRun, crawler: Crawler, _: CanWrite) -> JobOut:
    """Queue a job running the spider now; a crawl worker picks it up."""
    try:
        spec = registry.spider(crawler.settings.crawl_spiders_file, name)
    except registry.UnknownSpider as exc:
        raise SpiderNotFound(f"No spider named {name!r} is registered") from exc
    job = await service.run_spider(
        crawler.db, spider=name, args=body.args, max_attempts=spec.max_attempts
    )
    return job_out(job)


@router.get("/jobs", responses=problem_responses(*AUTH, 422, s422="`invalid-cursor`, a bad filter"))
async def list_jobs(
    crawler: Crawler,
    _: CanRead,
    schedule: uuid.UUID | None = None,
    status_filter: Annotated[JobStatusName | None, Query(alias="status")] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> JobPage:
    """Newest first; `?schedule=` and `?status=` filter."""
    jobs, next_cursor = await service.list_jobs(
        crawler.db, schedule_id=schedule, status=status_filter, limit=limit, cursor=cursor
    )
    return JobPage(items=[job_out(job) for job in jobs], next_cursor=next_cursor)


@router.get("/jobs/{job_id}", responses=problem_responses(*AUTH, 404, s404="`job-not-found`"))
async def get_job(job_id: uuid.UUID, crawler: Crawler, _: CanRead) -> JobOut:
    return job_out(await service.get_job(crawler.db, job_id=job_id))


TRANSITION = problem_responses(*AUTH, 404, 409, s404="`job-not-found`", s409="`job-state-conflict`")


@router.post("/jobs/{job_id}/cancel", responses=TRANSITION)
async def cancel_job(job_id: uuid.UUID, crawler: Crawler, _: CanWrite) -> JobOut:
    """A queued job is cancelled at once; a running one when its worker next renews its lease
    (a second or so): its spider is stopped and the job ends `cancelled`."""
    return job_out(await service.cancel_job(crawler.db, job_id=job_id))


@router.post("/jobs/{job_id}/retry", responses=TRANSITION)
async def retry_job(job_id: uuid.UUID, crawler: Crawler, _: CanWrite) -> JobOut:
    """An ended job (failed, dead, cancelled, succeeded) is queued again, attempts anew."""
    return job_out(await service.retry_job(crawler.db, job_id=job_id))


@router.get(
    "/jobs/{job_id}/items",
    responses=problem_responses(*AUTH, 404, 422, s404="`job-not-found`", s422="`invalid-cursor`"),
)
async def list_items(
    job_id: uuid.UUID, crawler: Crawler, _: CanRead, limit: Limit = 20, cursor: Cursor = None
) -> JobItemPage:
    """The items the job's spider yielded, oldest first."""
    items, next_cursor = await service.list_items(
        crawler.db, job_id=job_id, limit=limit, cursor=cursor
    )
    return JobItemPage(
        items=[JobItemOut.model_validate(item, from_attributes=True) for item in items],
        next_cursor=next_cursor,
    )


# --- what a running job reports with its own token ------------------------------------------------

JOB_TOKEN = problem_responses(401, 404, s401="`invalid-job-token`: not this running job's token")


@router.post("/jobs/{job_id}/requests", responses={**JOB_TOKEN, **problem_responses(409, 422)})
async def add_requests(
    job_id: uuid.UUID, body: JobRequests, job: RunningJob, crawler: Crawler
) -> JobRequestsAdded:
    """Queue URLs in the job's crawl: the crawl workers fetch them under the global per-host
    politeness. URLs outside the spider's scope, or seen before, are left out."""
    if job.crawl_id is None:
        raise service.JobStateConflict("This job's spider has no scope, so no crawl")
    added = await crawls.add_requests(crawler, crawl_id=job.crawl_id, urls=body.urls)
    return JobRequestsAdded(added=added)


@router.get("/jobs/{job_id}/pages", responses={**JOB_TOKEN, **problem_responses(409, 422)})
async def job_pages(
    job_id: uuid.UUID,
    job: RunningJob,
    crawler: Crawler,
    status_filter: Annotated[PageStateName | None, Query(alias="status")] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> PagePage:
    """The pages of the job's crawl, as `GET /crawl/crawls/{id}/pages` gives them."""
    if job.crawl_id is None:
        raise service.JobStateConflict("This job's spider has no scope, so no crawl")
    items, next_cursor = await results.list_pages(
        crawler.db, crawl_id=job.crawl_id, state=status_filter, limit=limit, cursor=cursor
    )
    return PagePage(items=[PageOut.model_validate(item) for item in items], next_cursor=next_cursor)


@router.post("/jobs/{job_id}/items", responses={**JOB_TOKEN, **problem_responses(422)})
async def add_items(
    job_id: uuid.UUID, body: JobItems, job: RunningJob, crawler: Crawler
) -> JobItemsAdded:
    added = await service.add_items(crawler.db, job_id=job.id, items=body.items)
    return JobItemsAdded(added=added)


@router.post("/jobs/{job_id}/progress", responses={**JOB_TOKEN, **problem_responses(422)})
async def report_progress(
    job_id: uuid.UUID, body: JobProgress, job: RunningJob, crawler: Crawler
) -> JobOut:
    """Merge `stats` into the job's; `message` becomes one of the job's log lines."""
    if body.stats:
        await service.merge_stats(crawler.db, job_id=job.id, stats=body.stats)
    if body.message:
        log.info(
            "spider_progress",
            service=LOG_SERVICE,
            job_id=str(job.id),
            spider=job.spider,
            message=body.message,
        )
    return job_out(await service.get_job(crawler.db, job_id=job.id))
