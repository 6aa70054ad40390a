"""Cached public GET responses answered before the framework's routing.

A route that serves a public read caches its pre-serialized body under `response_cache_key` in
the runtime's `Cache` (see `cached_json_response`). Once the bytes are in this process's L1, the
middleware answers the same path and query straight from them, ETag and 304 included, without
routing, dependency injection or validation; invalidation (core.cache) removes them everywhere.
"""

from __future__ import annotations

from collections.abc import Collection

from prometheus_client import Counter
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

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


async def cached_json_response(cache: Cache, request: Request, load: Loader) -> Response:
    """Answer a public read from the cache, loading (and caching) it on a miss."""
    entry = await cache.get_or_load(response_cache_key(request.scope), load)
    return entry_response(entry, request.headers.get("if-none-match"))


class ResponseCacheMiddleware:
    def __init__(self, app: ASGIApp, prefixes: Collection[str]) -> None:
        self.app = app
        self.prefixes = tuple(prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in ("GET", "HEAD")
            or not scope["path"].startswith(self.prefixes)
        ):
            await self.app(scope, receive, send)
            return
        runtime = getattr(scope["app"].state, "runtime", None) if "app" in scope else None
        entry = runtime.cache.peek(response_cache_key(scope)) if runtime is not None else None
        if entry is None:
            await self.app(scope, receive, send)
            return
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
            return
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
