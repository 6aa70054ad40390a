"""The crawl API under `/api/v1/crawl`: crawls, their pages, hosts and the workers."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, status
from fastapi.responses import StreamingResponse

from shopkeeper.core.errors import problem_responses
from shopkeeper.crawl import results, service
from shopkeeper.crawl.auth import CanRead, CanWrite
from shopkeeper.crawl.context import Crawler
from shopkeeper.crawl.jobs.api import router as jobs_router
from shopkeeper.crawl.schedules.api import router as schedules_router
from shopkeeper.crawl.schemas import (
    CrawlCreate,
    CrawlOut,
    CrawlPage,
    HostOut,
    PageOut,
    PagePage,
    PageStateName,
    WorkerOut,
)
from shopkeeper.crawl.watch.api import router as watch_router

router = APIRouter(prefix="/crawl", tags=["crawl"])

AUTH = (401, 403)
Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[str | None, Query(max_length=200)]


def _out(view: service.CrawlView) -> CrawlOut:
    crawl = view.crawl
    return CrawlOut.model_validate(
        {
            "id": crawl.id,
            "name": crawl.name,
            "status": crawl.status,
            "stats": view.stats,
            "seeds": crawl.seeds,
            "scope": crawl.scope,
            "politeness": crawl.politeness,
            "extract": crawl.extract,
            "max_attempts": crawl.max_attempts,
            "created_at": crawl.created_at,
            "finished_at": crawl.finished_at,
        }
    )


@router.post(
    "/crawls",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(
        *AUTH, 422, s422="`validation-error`: no `scope.allow`, a bad rule or seed outside scope"
    ),
)
async def create_crawl(body: CrawlCreate, crawler: Crawler, _: CanWrite) -> CrawlOut:
    """Start a crawl: its seeds are queued and workers fetch them politely."""
    return _out(await service.create_crawl(crawler, body=body))


@router.get("/crawls", responses=problem_responses(*AUTH, 422, s422="`invalid-cursor`"))
async def list_crawls(
    crawler: Crawler, _: CanRead, limit: Limit = 20, cursor: Cursor = None
) -> CrawlPage:
    views, next_cursor = await service.list_crawls(crawler, limit=limit, cursor=cursor)
    return CrawlPage(items=[_out(view) for view in views], next_cursor=next_cursor)


@router.get("/crawls/{crawl_id}", responses=problem_responses(*AUTH, 404))
async def get_crawl(crawl_id: uuid.UUID, crawler: Crawler, _: CanRead) -> CrawlOut:
    return _out(await service.get_crawl(crawler, crawl_id=crawl_id))


TRANSITION_ERRORS = problem_responses(
    *AUTH, 404, 409, s409="`crawl-state-conflict`: finished or cancelled"
)


@router.post("/crawls/{crawl_id}/pause", responses=TRANSITION_ERRORS)
async def pause_crawl(crawl_id: uuid.UUID, crawler: Crawler, _: CanWrite) -> CrawlOut:
    """Nothing more is leased; fetches in flight finish."""
    return _out(await service.pause_crawl(crawler, crawl_id=crawl_id))


@router.post("/crawls/{crawl_id}/resume", responses=TRANSITION_ERRORS)
async def resume_crawl(crawl_id: uuid.UUID, crawler: Crawler, _: CanWrite) -> CrawlOut:
    return _out(await service.resume_crawl(crawler, crawl_id=crawl_id))


@router.post("/crawls/{crawl_id}/cancel", responses=TRANSITION_ERRORS)
async def cancel_crawl(crawl_id: uuid.UUID, crawler: Crawler, _: CanWrite) -> CrawlOut:
    """Queued URLs are dropped; fetches in flight finish and are stored."""
    return _out(await service.cancel_crawl(crawler, crawl_id=crawl_id))


@router.get(
    "/crawls/{crawl_id}/pages",
    responses=problem_responses(*AUTH, 404, 422, s422="`invalid-cursor`"),
)
async def list_pages(
    crawl_id: uuid.UUID,
    crawler: Crawler,
    _: CanRead,
    status_filter: Annotated[PageStateName | None, Query(alias="status")] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> PagePage:
    items, next_cursor = await results.list_pages(
        crawler.db, crawl_id=crawl_id, state=status_filter, limit=limit, cursor=cursor
    )
    return PagePage(items=[PageOut.model_validate(item) for item in items], next_cursor=next_cursor)


@router.get(
    "/crawls/{crawl_id}/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "One Page a line (JSONL), or CSV with a header row",
            "content": {"application/x-ndjson": {}, "text/csv": {}},
        },
        **problem_responses(*AUTH, 404, 422),
    },
)
async def export_pages(
    crawl_id: uuid.UUID,
    crawler: Crawler,
    _: CanRead,
    format: Literal["jsonl", "csv"] = "jsonl",
) -> StreamingResponse:
    """Every URL the crawl decided about, once, streamed in constant memory."""
    chunks = await results.export_pages(crawler.db, crawl_id=crawl_id, format=format)
    media_type = "text/csv; charset=utf-8" if format == "csv" else "application/x-ndjson"
    filename = f"crawl-{crawl_id}.{format}"
    return StreamingResponse(
        chunks,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/crawls/{crawl_id}/hosts", responses=problem_responses(*AUTH, 404))
async def list_hosts(crawl_id: uuid.UUID, crawler: Crawler, _: CanRead) -> list[HostOut]:
    """Each host's politeness state as all workers share it, and this crawl's pages there."""
    hosts = await service.list_hosts(crawler, crawl_id=crawl_id)
    return [HostOut.model_validate(host) for host in hosts]


@router.get("/workers", responses=problem_responses(*AUTH))
async def list_workers(crawler: Crawler, _: CanRead) -> list[WorkerOut]:
    return [WorkerOut.model_validate(worker) for worker in await service.list_workers(crawler)]


# Schedules, jobs, spiders and price watches have their own modules; mounted here so that
# `app.py` mounts one crawl router.
router.include_router(schedules_router)
router.include_router(jobs_router)
router.include_router(watch_router)
