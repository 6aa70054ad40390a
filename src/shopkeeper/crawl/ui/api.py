"""The crawl UI's crawls and workers under `/crawl`: thin routes over `crawl.service` and
`crawl.results`, the same services as the API. htmx polls the `_live` fragments every 2 s."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from shopkeeper.accounts.web import Viewer
from shopkeeper.crawl import results, service
from shopkeeper.crawl.auth import WRITE
from shopkeeper.crawl.context import Crawler
from shopkeeper.crawl.models import CrawlStatus, PageState
from shopkeeper.crawl.ui.auth import SESSION, CurrentViewer, CurrentWriter
from shopkeeper.crawl.ui.jobs import router as jobs_router
from shopkeeper.crawl.ui.templates import act, login_page, page
from shopkeeper.crawl.ui.watches import router as watches_router

router = APIRouter(prefix="/crawl", include_in_schema=False)

ENDED = {CrawlStatus.FINISHED, CrawlStatus.CANCELLED}
PAGE_STATES = [state.value for state in PageState]


def base(viewer: Viewer, nav: str) -> dict[str, Any]:
    return {"viewer": viewer, "nav": nav, "can_write": viewer.can(WRITE)}


async def _crawls(crawler: Crawler) -> list[service.CrawlView]:
    views, _ = await service.list_crawls(crawler, limit=50, cursor=None)
    return views


@router.get("", response_class=HTMLResponse)
async def overview(request: Request, crawler: Crawler, viewer: CurrentViewer) -> Response:
    workers = await service.list_workers(crawler)
    context = {**base(viewer, "crawls"), "crawls": await _crawls(crawler), "workers": workers}
    return page(request, "crawl/overview.html", context)


@router.get("/_crawls", response_class=HTMLResponse)
async def crawls_fragment(request: Request, crawler: Crawler, viewer: CurrentViewer) -> Response:
    context = {**base(viewer, "crawls"), "crawls": await _crawls(crawler)}
    return page(request, "crawl/_crawls.html", context)


async def _live(crawler: Crawler, viewer: Viewer, crawl_id: uuid.UUID) -> dict[str, Any]:
    view = await service.get_crawl(crawler, crawl_id=crawl_id)
    return {
        **base(viewer, "crawls"),
        "view": view,
        "crawl": view.crawl,
        "stats": view.stats,
        "hosts": await service.list_hosts(crawler, crawl_id=crawl_id),
        "ended": view.crawl.status in ENDED,
    }


@router.get("/crawls/{crawl_id}", response_class=HTMLResponse)
async def crawl_page(
    request: Request,
    crawl_id: uuid.UUID,
    crawler: Crawler,
    viewer: CurrentViewer,
    status: str | None = None,
    cursor: str | None = None,
) -> Response:
    context = await _live(crawler, viewer, crawl_id)
    state = status if status in PAGE_STATES else None
    pages, next_cursor = await results.list_pages(
        crawler.db, crawl_id=crawl_id, state=state, limit=50, cursor=cursor
    )
    context.update(
        pages=pages, next_cursor=next_cursor, status=state or "", page_states=PAGE_STATES
    )
    return page(request, "crawl/crawl.html", context)


@router.get("/crawls/{crawl_id}/_live", response_class=HTMLResponse)
async def crawl_live(
    request: Request, crawl_id: uuid.UUID, crawler: Crawler, viewer: CurrentViewer
) -> Response:
    return page(request, "crawl/_live.html", await _live(crawler, viewer, crawl_id))


@router.get("/crawls/{crawl_id}/export")
async def export(
    crawl_id: uuid.UUID,
    crawler: Crawler,
    viewer: CurrentViewer,
    format: Literal["jsonl", "csv"] = "jsonl",
) -> StreamingResponse:
    """The API's export (`GET /api/v1/crawl/crawls/{id}/export`, same service and bytes) for
    the browser, which sends the session cookie rather than a bearer token."""
    chunks = await results.export_pages(crawler.db, crawl_id=crawl_id, format=format)
    media_type = "text/csv; charset=utf-8" if format == "csv" else "application/x-ndjson"
    filename = f"crawl-{crawl_id}.{format}"
    return StreamingResponse(
        chunks,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _back(crawl_id: uuid.UUID) -> str:
    return f"/crawl/crawls/{crawl_id}"


@router.post("/crawls/{crawl_id}/pause")
async def pause(crawl_id: uuid.UUID, crawler: Crawler, _: CurrentWriter) -> Response:
    return await act(service.pause_crawl(crawler, crawl_id=crawl_id), _back(crawl_id))


@router.post("/crawls/{crawl_id}/resume")
async def resume(crawl_id: uuid.UUID, crawler: Crawler, _: CurrentWriter) -> Response:
    return await act(service.resume_crawl(crawler, crawl_id=crawl_id), _back(crawl_id))


@router.post("/crawls/{crawl_id}/cancel")
async def cancel(crawl_id: uuid.UUID, crawler: Crawler, _: CurrentWriter) -> Response:
    return await act(service.cancel_crawl(crawler, crawl_id=crawl_id), _back(crawl_id))


@router.get("/workers", response_class=HTMLResponse)
async def workers(request: Request, crawler: Crawler, viewer: CurrentViewer) -> Response:
    context = {**base(viewer, "workers"), "workers": await service.list_workers(crawler)}
    if request.headers.get("hx-request"):
        return page(request, "crawl/_workers.html", context)
    return page(request, "crawl/workers.html", context)


def install_ui(app: FastAPI) -> None:
    SESSION.install(app, login_page)
    app.include_router(router)
    app.include_router(jobs_router)
    app.include_router(watches_router)
