"""Domain errors and their one mapping to RFC 9457 `application/problem+json`."""

from __future__ import annotations

from typing import Any, ClassVar

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from shopkeeper.core.jsonutil import dumps
from shopkeeper.core.startup import is_undefined_table

PROBLEM_TYPE_BASE = "https://shopkeeper.dev/errors/"
PROBLEM_CONTENT_TYPE = "application/problem+json"

log = structlog.get_logger(__name__)


class DomainError(Exception):
    """A failure the client can act on. Subclasses fix the status and the stable slug."""

    status: ClassVar[int] = 400
    slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extensions = extensions
        self.headers: dict[str, str] = {}


class NotFound(DomainError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(DomainError):
    status, slug, title = 409, "conflict", "Conflict"


class Unauthorized(DomainError):
    status, slug, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail, **extensions)
        self.headers["WWW-Authenticate"] = "Bearer"


class Forbidden(DomainError):
    status, slug, title = 403, "forbidden", "Forbidden"


class InvalidInput(DomainError):
    status, slug, title = 422, "validation-error", "Invalid input"


class RateLimited(DomainError):
    status, slug, title = 429, "rate-limited", "Too many requests"

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        super().__init__(detail or "Too many requests; try again later", retry_after=retry_after)
        self.headers["Retry-After"] = str(max(1, retry_after))


class ServiceUnavailable(DomainError):
    status, slug, title = 503, "service-unavailable", "Service unavailable"


class Problem(BaseModel):
    """An RFC 9457 problem document; extensions appear as extra members."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str


RESERVED_MEMBERS = frozenset({"type", "title", "status", "detail", "instance"})


def problem_response(
    status: int,
    slug: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    /,
    **extensions: Any,
) -> Response:
    # Positional-only, so an extension may be called anything; the standard members always win.
    body = {key: value for key, value in extensions.items() if key not in RESERVED_MEMBERS}
    body.update(type=PROBLEM_TYPE_BASE + slug, title=title, status=status, detail=detail)
    return Response(dumps(body), status, headers=headers, media_type=PROBLEM_CONTENT_TYPE)


_HTTP_SLUGS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    429: ("rate-limited", "Too many requests"),
}


async def _domain_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    return problem_response(
        exc.status, exc.slug, exc.title, exc.detail, exc.headers or None, **exc.extensions
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    slug, title = _HTTP_SLUGS.get(exc.status_code, ("http-error", "HTTP error"))
    detail = exc.detail if isinstance(exc.detail, str) else title
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Starlette names the methods of the first route matching the path; one path is often
        # several routes (GET and POST /orders), so `Allow` is built from all of them.
        headers["Allow"] = ", ".join(allowed_methods(request))
    return problem_response(exc.status_code, slug, title, detail, headers or None)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route answers for this path (asked of the routes themselves)."""
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in request.app.router.routes
        )
    ]


async def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": [str(part) for part in error.get("loc", ())], "msg": str(error.get("msg", ""))}
        for error in exc.errors()
    ]
    return problem_response(
        422, "validation-error", "Invalid input", "The request is not valid", errors=errors
    )


async def _database_error(request: Request, exc: Exception) -> Response:
    """A connection lost under a request (the database restarted: without pool pre-ping the
    first request on each dead pooled connection finds out) or no connection free in time:
    nothing was committed, SQLAlchemy has already replaced the dead pool, and a retry will
    work, so the client is told to retry instead of "internal error"."""
    if is_undefined_table(exc):
        # The code is ahead of the database: a deploy whose `shopkeeper migrate` has not run.
        log.error("database_not_migrated", path=request.url.path)
        return problem_response(
            503,
            "migrations-pending",
            "Database not migrated",
            "The database schema is behind this version; an operator must run `shopkeeper migrate`",
            {"Retry-After": "30"},
        )
    lost = isinstance(exc, DBAPIError) and exc.connection_invalidated
    if not lost and not isinstance(exc, PoolTimeout):
        return await _unexpected_error(request, exc)
    log.warning("database_unavailable", path=request.url.path, error=type(exc).__name__)
    return problem_response(
        503,
        "database-unavailable",
        "Database unavailable",
        "The database connection was lost or is busy; nothing was changed, retry shortly",
        {"Retry-After": "1"},
    )


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    # The trace goes to the log with the request id; the client sees neither it nor any SQL.
    log.exception("unhandled_error", path=request.url.path, exc_info=exc)
    return problem_response(500, "internal-error", "Internal error", "Something went wrong")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(PoolTimeout, _database_error)
    app.add_exception_handler(Exception, _unexpected_error)


_STANDARD_DESCRIPTIONS = {
    400: "Malformed request",
    401: "Missing or invalid access token",
    403: "Authenticated but not allowed (staff only)",
    404: "Not found, or not yours to see",
    409: "Conflicts with the current state",
    413: "Request body over the size limit",
    422: "Invalid input",
    429: "Rate limited; see Retry-After",
    503: "A dependency is down (`database-unavailable`) or the database is not migrated "
    "(`migrations-pending`)",
}


def problem_responses(*statuses: int, **described: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for a route: each status documented as a problem+json body.

    `described` maps `"s409"`-style keys to a description naming the slugs a route can return.
    """
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        description = described.get(f"s{status}", _STANDARD_DESCRIPTIONS.get(status, "Error"))
        responses[status] = {
            "description": description,
            "model": Problem,
            "content": {PROBLEM_CONTENT_TYPE: {}},
        }
    return responses
