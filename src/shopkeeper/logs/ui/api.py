"""The pages of the logs UI under `/logs`: thin routes over `ui.service` and the query service;
htmx asks for fragments (results, context, saved searches), whole pages otherwise."""

from __future__ import annotations

import json
import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from shopkeeper.core.db import Session
from shopkeeper.core.settings import Settings
from shopkeeper.logs.query import service as query_service
from shopkeeper.logs.query.errors import QueryError
from shopkeeper.logs.query.params import max_range_ns
from shopkeeper.logs.runtime import LogStoreDep
from shopkeeper.logs.store import LogStore
from shopkeeper.logs.ui import service
from shopkeeper.logs.ui.alerts import router as alerts_router
from shopkeeper.logs.ui.auth import SESSION, CurrentViewer, Viewer
from shopkeeper.logs.ui.templates import page

HOUR_NS = 3600 * service.NS
DEFAULT_QUERY = '{service=~".+"}'

router = APIRouter(prefix="/logs", include_in_schema=False)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


# -- signing in: the shared web session (accounts.web) -------------------------------------------


def _login_page(request: Request, context: dict[str, Any], status: int) -> Response:
    return page(request, "logs/login.html", context, status)


# -- search --------------------------------------------------------------------------------------


async def _search_context(
    settings: Settings,
    store: LogStore,
    viewer: Viewer,
    query: str,
    range_: str,
    from_: str | None,
    to: str | None,
) -> dict[str, Any]:
    try:
        limit = max_range_ns(settings.logs_max_query_range)
        window = service.window_of(range_, from_, to, time.time_ns(), max_range_ns=limit)
    except QueryError as exc:
        window = service.window_of("1h", None, None, time.time_ns(), max_range_ns=limit)
        found = service.Search(query=query, window=window, error=str(exc))
    else:
        found = await service.search(store, tenant=viewer.tenant, query=query, window=window)
    return {
        "viewer": viewer,
        "found": found,
        "query": query,
        "range": range_ if range_ in service.PRESETS else "1h",
        "from_": from_ or "",
        "to": to or "",
        "presets": list(service.PRESETS),
        "histogram_json": json.dumps(
            {"step": window.step_seconds, "points": found.histogram, "error": found.error}
        ),
    }


@router.get("", response_class=HTMLResponse)
async def search_page(
    request: Request,
    store: LogStoreDep,
    viewer: CurrentViewer,
    session: Session,
    query: str = DEFAULT_QUERY,
    range: str = "1h",
    from_: Annotated[str | None, Query(alias="from")] = None,
    to: str | None = None,
) -> Response:
    context = await _search_context(_settings(request), store, viewer, query, range, from_, to)
    if request.headers.get("hx-target") == "results":  # the search form, by htmx
        return page(request, "logs/_results.html", context)
    context["saved"] = await service.saved_searches(session, user_id=viewer.user_id)
    context["token"] = viewer.access_token(_settings(request))
    return page(request, "logs/search.html", context)


@router.get("/search", response_class=HTMLResponse)
async def search_results(
    request: Request,
    store: LogStoreDep,
    viewer: CurrentViewer,
    query: str = DEFAULT_QUERY,
    range: str = "1h",
    from_: Annotated[str | None, Query(alias="from")] = None,
    to: str | None = None,
) -> Response:
    context = await _search_context(_settings(request), store, viewer, query, range, from_, to)
    return page(request, "logs/_results.html", context)


@router.get("/context", response_class=HTMLResponse)
async def line_context(
    request: Request, store: LogStoreDep, viewer: CurrentViewer, ts: int, stream: str
) -> Response:
    try:
        labels = json.loads(stream)
        if not isinstance(labels, dict):
            raise QueryError("stream must be a JSON object of labels")
        before, after = await service.context(
            store, tenant=viewer.tenant, stream={str(k): str(v) for k, v in labels.items()}, ts=ts
        )
    except (QueryError, ValueError) as exc:
        return page(request, "logs/_context.html", {"error": str(exc)}, 400)
    return page(
        request,
        "logs/_context.html",
        {"before": before, "after": after, "ts": ts, "error": None},
    )


@router.get("/labels")
async def label_names(store: LogStoreDep, viewer: CurrentViewer) -> Response:
    """Label names of the last hour, for the query box's suggestions."""
    end = time.time_ns()
    names = await query_service.label_names(
        store, tenant=viewer.tenant, start=end - HOUR_NS, end=end, query=None
    )
    return JSONResponse(names)


@router.get("/labels/{name}/values")
async def label_values(name: str, store: LogStoreDep, viewer: CurrentViewer) -> Response:
    end = time.time_ns()
    values = await query_service.label_values(
        store, tenant=viewer.tenant, name=name, start=end - HOUR_NS, end=end, query=None
    )
    return JSONResponse(values)


@router.get("/token")
async def access_token(request: Request, viewer: CurrentViewer) -> Response:
    """A fresh access token for the tail WebSocket (`?token=`), which cannot send the cookie's
    session to the Loki API."""
    return JSONResponse({"token": viewer.access_token(_settings(request))})


# -- saved searches ------------------------------------------------------------------------------


async def _saved_fragment(
    request: Request, session: Session, viewer: CurrentViewer, error: str | None = None
) -> Response:
    saved = await service.saved_searches(session, user_id=viewer.user_id)
    return page(
        request, "logs/_saved.html", {"saved": saved, "error": error}, 422 if error else 200
    )


@router.post("/saved", response_class=HTMLResponse)
async def save_search(
    request: Request,
    session: Session,
    viewer: CurrentViewer,
    name: Annotated[str, Form()],
    query: Annotated[str, Form()],
    range: Annotated[str, Form()] = "1h",
) -> Response:
    try:
        await service.save_search(
            session, user_id=viewer.user_id, name=name, query=query, range_=range
        )
    except service.InvalidSavedSearch as exc:
        return await _saved_fragment(request, session, viewer, exc.detail)
    return await _saved_fragment(request, session, viewer)


@router.post("/saved/{search_id}/delete", response_class=HTMLResponse)
async def delete_search(
    request: Request, search_id: uuid.UUID, session: Session, viewer: CurrentViewer
) -> Response:
    await service.delete_search(session, user_id=viewer.user_id, search_id=search_id)
    return await _saved_fragment(request, session, viewer)


def install_ui(app: FastAPI) -> None:
    SESSION.install(app, _login_page)
    app.include_router(router)
    app.include_router(alerts_router)
