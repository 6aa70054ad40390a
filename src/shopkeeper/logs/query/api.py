"""Loki's HTTP query API under `/api/v1/logs/loki/api/v1/`, so that Grafana's Loki data
source and logcli read from us. Errors answer as Loki does: 400 with a plain-text body."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import structlog
from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import PlainTextResponse, Response

from shopkeeper import __version__
from shopkeeper.core.errors import problem_responses
from shopkeeper.core.jsonutil import dumps
from shopkeeper.logs.auth import ReadTenant
from shopkeeper.logs.query import service
from shopkeeper.logs.query.errors import QueryError, Unsupported
from shopkeeper.logs.query.params import max_range_ns as parse_max_range
from shopkeeper.logs.query.params import (
    now_ns,
    parse_direction,
    parse_limit,
    parse_range,
    parse_step,
    parse_timestamp,
)
from shopkeeper.logs.query.tail import serve_tail
from shopkeeper.logs.runtime import LogStoreDep
from shopkeeper.logs.store import StoreUnavailable

router = APIRouter(prefix="/loki/api/v1", tags=["logs: query (Loki API)"])

# Loki's own errors are plain text; credentials are refused by the accounts dependency.
RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {
        "description": "A wrong query or parameter, named (plain text, as Loki)",
        "content": {"text/plain": {}},
    },
    **problem_responses(401, 403, s403="`permission-denied`: the caller lacks `logs:read`"),
    503: {"description": "Log storage unavailable (plain text)", "content": {"text/plain": {}}},
}
log = structlog.get_logger(__name__)

# ClickHouse error codes that mean the query itself was wrong (a pattern RE2 cannot compile,
# a bad argument), not that the store failed.
_CLIENT_ERROR_CODES = frozenset({"427", "36", "43", "6"})
_ENGINE_ERROR = re.compile(
    r"Code: (\d+)\. DB::Exception: (.*?)(?:In scope|Look at|\(\w+\)|\n|$)", re.DOTALL
)


class _Params(dict[str, str]):
    """Query-string and form parameters together (Loki accepts both); lists kept apart."""

    lists: dict[str, list[str]]


async def _parameters(request: Request) -> _Params:
    pairs = list(request.query_params.multi_items())
    if request.method == "POST":
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/x-www-form-urlencoded"):
            pairs += parse_qsl((await request.body()).decode(), keep_blank_values=True)
    params = _Params()
    params.lists = {}
    for key, value in pairs:
        params.setdefault(key, value)
        params.lists.setdefault(key, []).append(value)
    return params


def _json(body: Any) -> Response:
    return Response(dumps(body), media_type="application/json")


async def _answer(work: Callable[[], Awaitable[Any]]) -> Response:
    try:
        return _json(await work())
    except QueryError as exc:
        return PlainTextResponse(str(exc), status_code=400)
    except StoreUnavailable:
        return PlainTextResponse("log storage unavailable", status_code=503)
    except Exception as exc:  # the engine's own errors: a query it refused, or a failure
        refused = _client_error(str(exc))
        if refused is not None:
            return PlainTextResponse(refused, status_code=400)
        log.exception("logs_query_failed")
        return PlainTextResponse("internal error while running the query", status_code=500)


def _client_error(text: str) -> str | None:
    """The reason ClickHouse refused a query the client got wrong, without our SQL (which
    ClickHouse quotes after "In scope"); None for any other failure."""
    found = _ENGINE_ERROR.search(text)
    if found is None or found.group(1) not in _CLIENT_ERROR_CODES:
        return None
    return found.group(2).strip().rstrip(".:") or "the query was refused"


def _max_range(request: Request) -> int:
    return parse_max_range(request.app.state.settings.logs_max_query_range)


@router.get("/query_range", operation_id="loki_query_range", responses=RESPONSES)
@router.post("/query_range", operation_id="loki_query_range_post", responses=RESPONSES)
async def query_range(request: Request, store: LogStoreDep, tenant: ReadTenant) -> Response:
    """Loki's range query: streams for a log query, a matrix for a metric query."""
    params = await _parameters(request)

    async def work() -> dict[str, Any]:
        window = parse_range(params, _max_range(request))
        result = await service.query_range(
            store,
            tenant=tenant,
            query=params.get("query", ""),
            start=window.start,
            end=window.end,
            step=parse_step(params, window),
            limit=parse_limit(params),
            backward=parse_direction(params),
        )
        return result.as_loki()

    return await _answer(work)


@router.get("/query", operation_id="loki_query", responses=RESPONSES)
@router.post("/query", operation_id="loki_query_post", responses=RESPONSES)
async def query(request: Request, store: LogStoreDep, tenant: ReadTenant) -> Response:
    """Loki's instant query: a vector (or scalar) at `time` (default now)."""
    params = await _parameters(request)

    async def work() -> dict[str, Any]:
        result = await service.query_instant(
            store,
            tenant=tenant,
            query=params.get("query", ""),
            at=parse_timestamp(params.get("time"), now_ns()),
            limit=parse_limit(params),
            backward=parse_direction(params),
        )
        return result.as_loki()

    return await _answer(work)


@router.get("/labels", operation_id="loki_labels", responses=RESPONSES)
@router.post("/labels", operation_id="loki_labels_post", responses=RESPONSES)
@router.get("/label", include_in_schema=False)
async def labels(request: Request, store: LogStoreDep, tenant: ReadTenant) -> Response:
    """Names of the stream labels seen in the range (default: the last hour), optionally
    within the streams of `query`."""
    params = await _parameters(request)

    async def work() -> dict[str, Any]:
        window = parse_range(params, _max_range(request))
        names = await service.label_names(
            store,
            tenant=tenant,
            start=window.start,
            end=window.end,
            query=params.get("query") or None,
        )
        return {"status": "success", "data": names}

    return await _answer(work)


@router.get("/label/{name}/values", operation_id="loki_label_values", responses=RESPONSES)
@router.post("/label/{name}/values", operation_id="loki_label_values_post", responses=RESPONSES)
async def label_values(
    name: str, request: Request, store: LogStoreDep, tenant: ReadTenant
) -> Response:
    """Values of one label in the range, optionally within the streams of `query`."""
    params = await _parameters(request)

    async def work() -> dict[str, Any]:
        window = parse_range(params, _max_range(request))
        values = await service.label_values(
            store,
            tenant=tenant,
            name=name,
            start=window.start,
            end=window.end,
            query=params.get("query") or None,
        )
        return {"status": "success", "data": values}

    return await _answer(work)


@router.get("/series", operation_id="loki_series", responses=RESPONSES)
@router.post("/series", operation_id="loki_series_post", responses=RESPONSES)
async def series(request: Request, store: LogStoreDep, tenant: ReadTenant) -> Response:
    """The label sets of the streams matching `match[]` in the range."""
    params = await _parameters(request)

    async def work() -> dict[str, Any]:
        window = parse_range(params, _max_range(request))
        selectors = params.lists.get("match[]", []) + params.lists.get("match", [])
        found = await service.series(
            store, tenant=tenant, selectors=selectors, start=window.start, end=window.end
        )
        return {"status": "success", "data": found}

    return await _answer(work)


@router.get("/index/volume", operation_id="loki_index_volume", responses=RESPONSES)
@router.post("/index/volume", operation_id="loki_index_volume_post", responses=RESPONSES)
async def index_volume(request: Request, store: LogStoreDep, tenant: ReadTenant) -> Response:
    """Bytes of the streams matching `query`, by `targetLabels` (or the selector's labels)."""
    params = await _parameters(request)

    async def work() -> dict[str, Any]:
        window = parse_range(params, _max_range(request))
        if params.get("aggregateBy", "series") != "series":
            raise Unsupported("index/volume with aggregateBy other than 'series'")
        targets = [t.strip() for t in params.get("targetLabels", "").split(",") if t.strip()]
        result = await service.volume(
            store,
            tenant=tenant,
            selector=params.get("query", ""),
            target_labels=targets,
            start=window.start,
            end=window.end,
            limit=parse_limit(params),
        )
        return {"status": "success", "data": {"resultType": "vector", "result": result}}

    return await _answer(work)


@router.websocket("/tail")
async def tail(websocket: WebSocket) -> None:
    """Loki's live tail: `query` (a log query), `limit`, `start`, `delay_for`; authenticated by
    the Authorization header or `?token=`."""
    await serve_tail(websocket)


@router.get(
    "/status/buildinfo", operation_id="loki_buildinfo", responses=problem_responses(401, 403)
)
async def buildinfo(tenant: ReadTenant) -> Response:
    """Loki's build information; Grafana reads `version` to pick the features it uses (with
    the data source's credentials, like every other read)."""
    return _json(
        {
            "version": "3.0.0",
            "revision": f"shopkeeper-{__version__}",
            "branch": "main",
            "buildUser": "shopkeeper",
            "buildDate": "",
            "goVersion": "",
        }
    )
