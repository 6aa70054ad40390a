"""Structured JSON logs with request ids, and Prometheus metrics by route template and status."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIServer

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client import multiprocess as prometheus_multiprocess
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shopkeeper.core.errors import problem_response

if TYPE_CHECKING:
    from shopkeeper.core.settings import Settings

REQUESTS = Counter("shopkeeper_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "shopkeeper_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
ORDERS_CREATED = Counter("shopkeeper_orders_created_total", "Orders placed")
PAYMENTS_SUCCEEDED = Counter(
    "shopkeeper_payments_succeeded_total", "Payments that succeeded", ["provider"]
)
CALLBACKS_REJECTED = Counter(
    "shopkeeper_callbacks_rejected_total", "Provider callbacks rejected", ["provider", "reason"]
)
EVENTS_PUBLISHED = Counter("shopkeeper_outbox_published_total", "Outbox events published")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")


LogTap = Callable[[Mapping[str, Any]], None]
_log_taps: list[LogTap] = []


def add_log_tap(tap: LogTap) -> None:
    """Also hand every structured log event to `tap` (which must not block or raise); how a
    system collects the process's own logs without the core knowing it."""
    _log_taps.append(tap)


def remove_log_tap(tap: LogTap) -> None:
    with contextlib.suppress(ValueError):
        _log_taps.remove(tap)


ProcessLogShipper = Callable[["Settings", str], contextlib.AbstractAsyncContextManager[None]]
_process_log_shippers: list[ProcessLogShipper] = []


def add_process_log_shipper(shipper: ProcessLogShipper) -> None:
    """Register `shipper(settings, service)`, an async context manager a standalone process
    (worker, scheduler, crawl worker) runs for its whole life to ship its own logs. The
    composition root registers the logs system's; the core and the other systems only call
    `process_logs_shipped`, so none of them imports the logs system."""
    if shipper not in _process_log_shippers:
        _process_log_shippers.append(shipper)


@contextlib.asynccontextmanager
async def process_logs_shipped(settings: Settings, service: str) -> AsyncIterator[None]:
    """The process's logs go where the registered shippers send them, while this is open."""
    async with contextlib.AsyncExitStack() as stack:
        for shipper in _process_log_shippers:
            await stack.enter_async_context(shipper(settings, service))
        yield


def _run_log_taps(_logger: Any, _method: str, event: structlog.typing.EventDict) -> Any:
    for tap in _log_taps:
        with contextlib.suppress(Exception):
            tap(event)
    return event


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        _run_log_taps,
    ]
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


def metrics_payload() -> tuple[bytes, str]:
    """All workers' metrics when gunicorn runs several (multiprocess mode), else this process's."""
    return generate_latest(_process_registry()), CONTENT_TYPE_LATEST


def _process_registry() -> CollectorRegistry:
    """This process's registry, or one merging every worker's files in multiprocess mode."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    # prometheus_client ships this constructor without annotations.
    prometheus_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def start_metrics_server(host: str, port: int) -> WSGIServer:
    """Serve `/metrics` from a daemon thread, for processes without an HTTP app of their own
    (`worker`, `scheduler`). Merges the files of PROMETHEUS_MULTIPROC_DIR when it is set, like
    `metrics_payload`, since counters then live in those files rather than in this process."""
    server, _ = start_http_server(port, addr=host, registry=_process_registry())
    return server


class RequestContextMiddleware:
    """Request id in and out, one access log line, and the HTTP metrics. Pure ASGI: no overhead
    of BaseHTTPMiddleware, and it sees the matched route template FastAPI puts in the scope."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = structlog.get_logger("shopkeeper.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            template = route_template(scope)
            method = scope["method"]
            REQUESTS.labels(method, template, str(status)).inc()
            LATENCY.labels(method, template).observe(elapsed)
            self.log.info(
                "request",
                method=method,
                path=scope["path"],
                route=template,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
            )
            structlog.contextvars.unbind_contextvars("request_id")


def route_template(scope: Scope) -> str:
    """The matched path template ("/api/v1/orders/{order_id}"), so metrics do not explode into one
    series per id. FastAPI records the prefixed path of an included router's route in its own
    scope entry; a plain Starlette route is in `route`."""
    if "shopkeeper.route" in scope:
        return str(scope["shopkeeper.route"])
    context = (scope.get("fastapi") or {}).get("effective_route_context")
    path = getattr(context, "path", None) or getattr(scope.get("route"), "path", None)
    return str(path) if path else "unmatched"


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _REQUEST_ID.match(text) else None
    return None


class BodySizeLimitMiddleware:
    """Refuse bodies over the limit with 413, whether announced by Content-Length or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int, exempt_prefixes: tuple[str, ...] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt_prefixes = exempt_prefixes  # their routes enforce limits of their own

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt_prefixes):
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not response_started:
                await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            413,
            "payload-too-large",
            "Payload too large",
            f"Request bodies are limited to {self.max_bytes} bytes",
        )
        await response(scope, receive, send)


class _BodyTooLarge(StarletteHTTPException):
    # An HTTPException, so the framework's error handler answers 413 problem+json when the
    # overflow is found while a route reads its body.
    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"Request bodies are limited to {max_bytes} bytes")
