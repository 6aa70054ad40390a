"""The HTTP client of a crawl worker: our own HTTP/1.1 GET client (http1.py), pooled, guarded and
bounded.

Every fetch ends in a `FetchResult`, never an exception for the network's troubles, so the worker
turns it into a decision (politeness.decide) without a try/except of its own. Guards:
- addresses: loopback, private, link-local and other non-global addresses are refused at connect
  time, after resolution (in the network backend), so neither a URL, a redirect nor a
  DNS answer changed between check and use (rebinding) can reach the network the crawler runs in;
- size: the body is streamed and abandoned past `max_body_bytes` (after decompression, so a
  gzip bomb is stopped too);
- time: per-operation timeouts (connect, each read) plus one deadline for the whole fetch, so a
  server dripping one byte a second cannot hold a worker slot forever;
- redirects: followed by hand, each hop checked against the crawl's scope and the address policy.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import ipaddress
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from w3lib.url import safe_url_string

from shopkeeper.core.settings import Settings
from shopkeeper.crawl.canonical import InvalidURL, canonicalize
from shopkeeper.crawl.http1 import ACCEPT_ENCODING, Client, HTTPError, Response
from shopkeeper.crawl.scope import Scope

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# Bodies worth reading: pages to parse, sitemaps, robots.txt. Anything else (images, archives)
# is recorded with its status and type, and its body is not downloaded.
READ_TYPES = HTML_TYPES | {"application/xml", "text/xml", "text/plain", "application/rss+xml"}
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024


class FetchError(StrEnum):
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    PRIVATE_ADDRESS = "private-address"
    TOO_LARGE = "too-large"
    TOO_MANY_REDIRECTS = "too-many-redirects"
    REDIRECT_OUT_OF_SCOPE = "redirect-out-of-scope"
    INVALID_URL = "invalid-url"


@dataclass(frozen=True, slots=True)
class FetchResult:
    url: str
    final_url: str
    """The last URL requested (== url without redirects followed)."""
    status: int | None
    """The last HTTP status; None when no answer came (time-out, connection, refused address)."""
    headers: dict[str, str] = field(default_factory=dict)
    """The last answer's headers, names lower-cased."""
    content_type: str | None = None
    """Media type only, lower-cased: "text/html"."""
    body: bytes = b""
    """Decompressed; empty for types not read (see READ_TYPES) and on errors."""
    error: FetchError | None = None
    detail: str | None = None
    elapsed_s: float = 0.0
    redirects: tuple[str, ...] = ()
    """Hops followed, in order."""
    location: str | None = None
    """An unfollowed redirect's target, absolute."""

    @property
    def is_html(self) -> bool:
        return self.content_type in HTML_TYPES

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and 200 <= self.status < 300

    @property
    def charset(self) -> str | None:
        """The Content-Type header's charset, if it names one."""
        for part in self.headers.get("content-type", "").split(";")[1:]:
            name, _, value = part.strip().partition("=")
            if name.lower() == "charset" and value.strip("\"' "):
                return value.strip("\"' ").lower()
        return None

    def text(self) -> str:
        try:
            return self.body.decode(self.charset or "utf-8", errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One for the process: loading the CA bundle takes a good part of a second."""
    return httpx.create_ssl_context()


class Fetcher:
    """One per worker process: its connection pool is what makes many small fetches cheap."""

    def __init__(
        self,
        *,
        user_agent: str,
        timeout_s: float = 10.0,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_redirects: int = 5,
        allow_private: bool = False,
        max_connections: int = 100,
        address_allowed: Callable[[str], bool] = is_public_address,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """`address_allowed` decides, when private addresses are refused, which resolved
        addresses may be connected to (tests narrow it to one loopback host); `ssl_context`
        replaces the system's CA bundle (tests trust their own certificate)."""
        self._ssl_context = ssl_context or _ssl_context()
        self.user_agent = user_agent
        self.timeout_s = timeout_s
        self.max_body_bytes = max_body_bytes
        self.max_redirects = max_redirects
        self.allow_private = allow_private
        self._client = Client(
            headers={
                "user-agent": user_agent,
                "accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                "accept-encoding": ACCEPT_ENCODING,
                "connection": "keep-alive",
            },
            timeout_s=timeout_s,
            max_connections=max_connections,
            ssl_context=self._ssl_context,
            address_allowed=None if allow_private else address_allowed,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Fetcher:
        return cls(
            user_agent=settings.crawl_user_agent,
            timeout_s=settings.crawl_fetch_timeout_seconds,
            max_body_bytes=settings.crawl_max_body_bytes,
            max_redirects=settings.crawl_max_redirects,
            allow_private=bool(settings.crawl_allow_private),
            max_connections=settings.crawl_max_connections,
        )

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def fetch_robots(self, host: str, scheme: str = "http") -> FetchResult:
        """`<scheme>://<host>/robots.txt`, redirects followed (RFC 9309 asks for at least five)."""
        return await self.fetch(f"{scheme}://{host}/robots.txt", follow_redirects=True)

    async def fetch(
        self, url: str, *, scope: Scope | None = None, follow_redirects: bool = True
    ) -> FetchResult:
        """GET `url`. Without `follow_redirects` a redirect comes back with its `location` (for
        the frontier to schedule politely); with it, up to `max_redirects` hops are followed."""
        started = time.monotonic()
        try:
            canonicalize(url)
        except InvalidURL as exc:
            return _failure(url, url, FetchError.INVALID_URL, str(exc), started)
        try:
            # Per-operation timeouts do not bound a body dripping in slowly; this does.
            async with asyncio.timeout(self.timeout_s * 3):
                return await self._fetch(url, scope, follow_redirects, started)
        except TimeoutError:
            return _failure(url, url, FetchError.TIMEOUT, "no complete answer in time", started)

    async def _fetch(
        self, url: str, scope: Scope | None, follow_redirects: bool, started: float
    ) -> FetchResult:
        current = url
        hops: list[str] = []
        while True:
            result = await self._get_once(url, current, started, tuple(hops))
            if result.status not in REDIRECT_STATUSES or result.error is not None:
                return result
            location = result.headers.get("location")
            if not location:
                return result
            target = urljoin(current, location.strip())
            problem = _check_hop(target, scope)
            if problem is not None:
                error, detail = problem
                return _replace(result, error=error, detail=detail, location=target)
            if not follow_redirects:
                return _replace(result, location=target)
            if len(hops) >= self.max_redirects:
                return _replace(
                    result,
                    error=FetchError.TOO_MANY_REDIRECTS,
                    detail=f"more than {self.max_redirects} redirects",
                    location=target,
                )
            hops.append(target)
            current = target

    async def _get_once(
        self, url: str, current: str, started: float, hops: tuple[str, ...]
    ) -> FetchResult:
        try:
            # As httpx did: a target with spaces or non-ASCII characters is percent-encoded
            # (and an international host name IDNA-encoded) before it is requested.
            parts = urlsplit(current if _plain(current) else safe_url_string(current))
            parts.port  # noqa: B018 -- raises ValueError on a port that is not a number in range
        except ValueError as exc:
            return _failure(url, current, FetchError.INVALID_URL, str(exc), started, hops)
        if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
            detail = f"not an absolute http(s) URL: {current!r}"
            return _failure(url, current, FetchError.INVALID_URL, detail, started, hops)
        too_large: str | None = None

        def read_body(response: Response) -> bool:
            nonlocal too_large
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.max_body_bytes:
                too_large = f"declared {declared} bytes"
                return False
            media_type = _media_type(response.headers.get("content-type"))
            return response.status not in REDIRECT_STATUSES and (
                media_type is None or media_type in READ_TYPES
            )

        try:
            response = await self._client.get(parts, limit=self.max_body_bytes, read_body=read_body)
        except HTTPError as exc:
            return _failure(url, current, _ERRORS[exc.kind], exc.detail, started, hops)
        if response.too_large:
            too_large = f"body over {self.max_body_bytes} bytes"
        return FetchResult(
            url=url,
            final_url=current,
            status=response.status,
            headers=response.headers,
            content_type=_media_type(response.headers.get("content-type")),
            body=response.body,
            error=None if too_large is None else FetchError.TOO_LARGE,
            detail=too_large,
            elapsed_s=time.monotonic() - started,
            redirects=hops,
        )


_ERRORS = {
    "timeout": FetchError.TIMEOUT,
    "connection": FetchError.CONNECTION,
    "private-address": FetchError.PRIVATE_ADDRESS,
    "invalid-url": FetchError.INVALID_URL,
}


def _plain(url: str) -> bool:
    return url.isascii() and " " not in url and url.isprintable()


def _check_hop(target: str, scope: Scope | None) -> tuple[FetchError, str] | None:
    try:
        canonical = canonicalize(target)
    except InvalidURL:
        return FetchError.INVALID_URL, f"redirect to {target!r}"
    if scope is not None and not scope.allows(canonical):
        return FetchError.REDIRECT_OUT_OF_SCOPE, f"redirect to {canonical} is out of scope"
    return None


def _media_type(header: str | None) -> str | None:
    if not header:
        return None
    return header.split(";", 1)[0].strip().lower() or None


def _replace(result: FetchResult, **changes: Any) -> FetchResult:
    return dataclasses.replace(result, **changes)


def _failure(
    url: str,
    current: str,
    error: FetchError,
    detail: str,
    started: float,
    hops: tuple[str, ...] = (),
) -> FetchResult:
    return FetchResult(
        url=url,
        final_url=current,
        status=None,
        error=error,
        detail=detail,
        elapsed_s=time.monotonic() - started,
        redirects=hops,
    )
