"""Cached public GET responses answered before the framework's routing.

A route that serves a public read caches its pre-serialized body under `response_cache_key` in
the runtime's `Cache` (see `cached_json_response`). Once the bytes are in this process's L1, the
middleware answers the same path and query straight from them, ETag and 304 included, without
routing, dependency injection or validation; invalidation (core.cache) removes them everywhere.
"""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import Counter
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from shopkeeper.core.cache import Cache, CacheEntry, Loader

# Answered here, these requests never reach the request metrics middleware; they count here.
CACHED_RESPONSES = Counter(
    "shopkeeper_response_cache_hits_total",
    "Public reads answered from the response cache before routing",
    ["status"],
)
_HIT_200 = CACHED_RESPONSES.labels(status="200")
_HIT_304 = CACHED_RESPONSES.labels(status="304")

PUBLIC_CACHE_CONTROL = "public, max-age=0, must-revalidate"
_CACHE_CONTROL = PUBLIC_CACHE_CONTROL.encode()
_JSON = b"application/json"


def response_cache_key(scope: Scope) -> str:
    query: bytes = scope.get("query_string", b"")
    path: str = scope["path"]
    return f"http:{path}?{query.decode('latin-1')}" if query else f"http:{path}"


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    candidates = (part.strip().removeprefix("W/") for part in if_none_match.split(","))
    return etag in candidates


def entry_response(entry: CacheEntry, if_none_match: str | None) -> Response:
    headers = {"ETag": entry.etag, "Cache-Control": PUBLIC_CACHE_CONTROL}
    if etag_matches(if_none_match, entry.etag):
        return Response(status_code=304, headers=headers)
    return Response(entry.body, media_type="application/json", headers=headers)


async def cached_json_response(
    cache: Cache, request: Request, load: Loader, *, shared: bool = True
) -> Response:
    """Answer a public read from the cache, loading (and caching) it on a miss; `shared=False`
    keeps it out of Redis (see `Cache.get_or_load`)."""
    entry = await cache.get_or_load(response_cache_key(request.scope), load, shared=shared)
    return entry_response(entry, request.headers.get("if-none-match"))


class CachedReadsApp(FastAPI):
    """The FastAPI application with one fast path in front of everything else: a public GET
    whose bytes are in this process's L1 is answered before Starlette builds a request, runs
    its middleware stack or routes. Everything else takes the ordinary way."""

    cached_prefixes: tuple[str, ...] = ()
    answer_cached_for_cors: bool = True
    """False when CORS is on: a request with an `Origin` then takes the ordinary way, through
    the CORS middleware, so its answer carries the headers the browser needs."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in ("GET", "HEAD")
            and scope["path"].startswith(self.cached_prefixes)
            and (self.answer_cached_for_cors or not _has_origin(scope))
        ):
            runtime = getattr(self.state, "runtime", None)
            if runtime is not None and await answer_from_cache(runtime.cache, scope, send):
                return
        await super().__call__(scope, receive, send)


def _has_origin(scope: Scope) -> bool:
    return any(name == b"origin" for name, _ in scope["headers"])


async def answer_from_cache(cache: Cache, scope: Scope, send: Send) -> bool:
    """Send the cached response for this GET/HEAD if L1 holds it; False when it does not."""
    entry = cache.peek(response_cache_key(scope))
    if entry is None:
        return False
    if_none_match = None
    for name, value in scope["headers"]:
        if name == b"if-none-match":
            if_none_match = value.decode("latin-1")
            break
    etag = entry.etag.encode()
    if etag_matches(if_none_match, entry.etag):
        headers = [(b"etag", etag), (b"cache-control", _CACHE_CONTROL)]
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        _HIT_304.inc()
        return True
    headers = [
        (b"content-type", _JSON),
        (b"content-length", str(len(entry.body)).encode()),
        (b"etag", etag),
        (b"cache-control", _CACHE_CONTROL),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    body = b"" if scope["method"] == "HEAD" else entry.body
    await send({"type": "http.response.body", "body": body})
    _HIT_200.inc()
    return True
