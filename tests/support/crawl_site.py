"""A local web site with several hosts for crawler tests and benches, recording every request.

Each role below is served on its own loopback address (127.0.0.2, 127.0.0.3, ...; Linux routes
all of 127/8 to `lo`) and its own port, so each is a separate host authority for politeness.
Tests assert on what the site saw (`requests()`: host, path, arrival time, how many requests of
that host were in flight at arrival, user agent), never on the crawler's own account.

Roles:
- `shop`: home page, paginated product list, 12 product pages in JSON-LD, microdata and Open
  Graph markup (USD, EUR, JPY), a sitemap, redirects (one hop, chains, a loop, one leaving the
  site), duplicate links with tracking parameters and fragments, pages robots.txt disallows
  (`/private/`, and `/hidden-from-shopkeeper/` for our product token only), an endless calendar
  trap, 404/410/500 pages, a large page, a gzip page, a non-HTML file. `shop_crawl_delay`
  adds a robots.txt Crawl-delay.
- `slow`: every page answers after `slow_delay_s`.
- `throttle`: each page answers 429 with `Retry-After: <throttle_retry_after>` the first time it
  is requested (or always while `throttle_always`), 200 afterwards.
- `robots404`, `robots503` (robots.txt 503 until `recover("robots503")`), `robots_timeout`
  (robots.txt never answers until `recover("robots_timeout")`).
- `big`: an N-page site (`big_pages`) shaped as a tree, page i linking to 10i+1 .. 10i+10.
- `bench`: `bench_pages` fixed pages with `bench_links` links each, answered from memory.

Run in-process (`CrawlSite().start()`, a thread running uvicorn), in a child process driven over a
control address (`tests.support.crawl_site_remote.RemoteCrawlSite`), or by hand:
`python -m tests.support.crawl_site --bench-pages 1000` prints the roles' base URLs as JSON.
Pages and products are in `tests.support.crawl_pages`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gzip
import json
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import uvicorn

from tests.support.crawl_pages import (
    PRODUCTS,
    PRODUCTS_PER_LIST_PAGE,
    SiteProduct,
    http_date,
    page_html,
    product_html,
)

__all__ = [
    "PRODUCTS",
    "ROLES",
    "CrawlSite",
    "SiteProduct",
    "SiteRequest",
    "http_date",
    "product_html",
]

ROLES = (
    "shop",
    "slow",
    "throttle",
    "robots404",
    "robots503",
    "robots_timeout",
    "big",
    "bench",
)
ALLOW_ALL = b"User-agent: *\nDisallow:\n"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class SiteRequest:
    role: str
    host: str
    """Authority `address:port` the request arrived at."""
    method: str
    path: str
    """Path with its query string, as sent."""
    at: float
    """`time.monotonic()` at arrival (the site's process)."""
    in_flight: int
    """Requests of this host in flight at arrival, this one included."""
    user_agent: str
    client: str = ""
    """The client's `address:port`: requests sharing it came over one connection."""


@dataclass(slots=True)
class _Answer:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


class CrawlSite:
    """The site; `start()` serves it from a thread, `stop()` ends it."""

    def __init__(
        self,
        *,
        big_pages: int = 2000,
        bench_pages: int = 1000,
        bench_links: int = 20,
        slow_delay_s: float = 0.5,
        throttle_retry_after: str = "1",
        robots_timeout_s: float = 120.0,
        shop_crawl_delay: float | None = None,
        first_address: int = 2,
    ) -> None:
        self.big_pages = big_pages
        self.bench_pages = bench_pages
        self.bench_links = bench_links
        self.slow_delay_s = slow_delay_s
        self.throttle_retry_after = throttle_retry_after
        self.throttle_always = False
        self.robots_timeout_s = robots_timeout_s
        self.shop_crawl_delay = shop_crawl_delay
        self.robots_override: dict[str, tuple[int, bytes]] = {}
        self.pages: dict[tuple[str, str], tuple[int, bytes]] = {}
        """(role, path) -> (status, HTML) served instead of the role's own page: a test's page
        whose content it changes (a competitor's price). Robots.txt is not affected."""
        """role -> (status, body) replacing that role's robots.txt."""
        self.products = PRODUCTS
        self._initial = {
            "slow_delay_s": slow_delay_s,
            "throttle_retry_after": throttle_retry_after,
            "robots_timeout_s": robots_timeout_s,
            "shop_crawl_delay": shop_crawl_delay,
        }
        self.addresses = {role: f"127.0.0.{first_address + i}" for i, role in enumerate(ROLES)}
        self.ports: dict[str, int] = {}
        self._records: list[SiteRequest] = []
        self._in_flight = dict.fromkeys(ROLES, 0)
        self._role_by_address = {address: role for role, address in self.addresses.items()}
        self.control_address = f"127.0.0.{first_address + len(ROLES)}"
        """Where `RemoteCrawlSite` reads records and turns knobs (never recorded itself)."""
        self.control_port = 0
        self._throttled_paths: set[str] = set()
        self._recovered: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._generation = 0
        """Bumped by reset() and stop(): hanging answers of an earlier generation end."""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._bench_cache = [self._benchpage_html(i) for i in range(bench_pages)]

    # --- control, from any thread -------------------------------------------------------------

    def start(self) -> CrawlSite:
        sockets = []
        for role in ROLES:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.addresses[role], 0))
            sock.listen(1024)
            sock.setblocking(False)
            self.ports[role] = sock.getsockname()[1]
            sockets.append(sock)
        control = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        control.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        control.bind((self.control_address, 0))
        control.listen(64)
        control.setblocking(False)
        self.control_port = control.getsockname()[1]
        sockets.append(control)
        config = uvicorn.Config(
            self._app,
            interface="asgi3",
            lifespan="off",
            proxy_headers=False,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
            timeout_keep_alive=30,
            backlog=1024,
        )
        self._server = uvicorn.Server(config)
        started = threading.Event()

        def run() -> None:
            loop = _new_event_loop()
            self._loop = loop
            loop.call_soon(started.set)
            assert self._server is not None
            loop.run_until_complete(self._server.serve(sockets=sockets))
            loop.close()

        self._thread = threading.Thread(target=run, name="crawl-site", daemon=True)
        self._thread.start()
        started.wait(10)
        deadline = time.monotonic() + 10
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self._server.started:
            raise RuntimeError("the crawl site did not start")
        return self

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._generation += 1
        self._server.should_exit = True
        self._thread.join(15)
        self._server = None

    def __enter__(self) -> CrawlSite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def base(self, role: str) -> str:
        return f"http://{self.authority(role)}"

    def url(self, role: str, path: str = "/") -> str:
        return self.base(role) + path

    def authority(self, role: str) -> str:
        return f"{self.addresses[role]}:{self.ports[role]}"

    def requests(self, role: str | None = None) -> list[SiteRequest]:
        records = list(self._records)
        return records if role is None else [r for r in records if r.role == role]

    def clear(self) -> None:
        """Forget the records and the throttle's memory, and make failing robots.txt fail again."""
        self._records.clear()
        self._throttled_paths.clear()
        self._recovered.clear()

    def reset(self) -> None:
        """Every knob back to how the site was built, hanging answers ended, in-flight requests
        finished, records cleared: a shared site as good as new for the next test."""
        self._generation += 1
        deadline = time.monotonic() + 5
        while any(self._in_flight.values()) and time.monotonic() < deadline:
            time.sleep(0.01)
        self.clear()
        for name, value in self._initial.items():
            setattr(self, name, value)
        self.throttle_always = False
        self.robots_override.clear()
        self.pages.clear()

    def recover(self, role: str) -> None:
        """robots.txt of `robots503` / `robots_timeout` answers 200 from now on."""
        self._recovered.add(role)

    # --- serving ---------------------------------------------------------------------------

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["server"][0] == self.control_address:
            await self._control(scope, receive, send)
            return
        role = self._role_by_address.get(scope["server"][0], "shop")
        at = time.monotonic()
        self._in_flight[role] += 1
        query = scope["query_string"].decode("latin-1")
        path = scope["path"] + (f"?{query}" if query else "")
        user_agent = ""
        for name, value in scope["headers"]:
            if name == b"user-agent":
                user_agent = value.decode("latin-1")
        self._records.append(
            SiteRequest(
                role=role,
                host=self.authority(role),
                method=scope["method"],
                path=path,
                at=at,
                in_flight=self._in_flight[role],
                user_agent=user_agent,
                client="{}:{}".format(*(scope.get("client") or ("", 0))),
            )
        )
        try:
            answer = await self._answer(role, scope["path"], parse_qs(query))
            headers = [(b"content-type", answer.content_type.encode()), *answer.headers]
            headers.append((b"content-length", str(len(answer.body)).encode()))
            await send({"type": "http.response.start", "status": answer.status, "headers": headers})
            await send({"type": "http.response.body", "body": answer.body})
        finally:
            self._in_flight[role] -= 1

    async def _control(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The knobs and records over HTTP, for a site running in another process."""
        path = scope["path"]
        query = parse_qs(scope["query_string"].decode("latin-1"))
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        answer: Any = {"ok": True}
        if path == "/records":
            role = (query.get("role") or [None])[0]
            answer = [dataclasses.asdict(r) for r in self.requests(role)]
        elif path == "/clear":
            self.clear()
        elif path == "/reset":
            # reset() waits for in-flight requests, which this loop is serving: not here.
            self._generation += 1
            self.clear()
            for name, value in self._initial.items():
                setattr(self, name, value)
            self.throttle_always = False
            self.robots_override.clear()
        elif path.startswith("/recover/"):
            self.recover(path.removeprefix("/recover/"))
        elif path == "/set":
            for name, value in json.loads(body or b"{}").items():
                if name not in {*self._initial, "throttle_always"}:
                    raise ValueError(f"unknown knob {name}")
                setattr(self, name, value)
        elif path.startswith("/robots/"):
            status = int((query.get("status") or ["200"])[0])
            self.robots_override[path.removeprefix("/robots/")] = (status, body)
        elif path == "/in-flight":
            answer = dict(self._in_flight)
        else:
            answer = {"error": "unknown control path"}
        payload = json.dumps(answer).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def _answer(self, role: str, path: str, query: dict[str, list[str]]) -> _Answer:
        if path == "/robots.txt":
            return await self._robots(role)
        if (role, path) in self.pages:
            status, body = self.pages[(role, path)]
            return _Answer(status, body)
        if role == "bench":
            return self._bench(path)
        if role == "slow":
            await asyncio.sleep(self.slow_delay_s)
        if role == "throttle" and (self.throttle_always or path not in self._throttled_paths):
            self._throttled_paths.add(path)
            return _Answer(
                429,
                b"slow down",
                "text/plain",
                [(b"retry-after", self.throttle_retry_after.encode())],
            )
        if role == "big":
            return self._big(path)
        if role == "shop":
            return self._shop(path, query)
        return self._chain(role, path)

    async def _robots(self, role: str) -> _Answer:
        if role in self.robots_override:
            status, body = self.robots_override[role]
            return _Answer(status, body, "text/plain")
        if role == "robots404":
            return _Answer(404, b"not found", "text/plain")
        if role == "robots503" and role not in self._recovered:
            return _Answer(503, b"unavailable", "text/plain")
        if role == "robots_timeout" and role not in self._recovered:
            generation = self._generation
            deadline = time.monotonic() + self.robots_timeout_s
            while (
                role not in self._recovered
                and generation == self._generation
                and time.monotonic() < deadline
            ):
                await asyncio.sleep(0.02)
            if role not in self._recovered:
                return _Answer(503, b"gave up", "text/plain")
        if role == "shop":
            delay = ""
            if self.shop_crawl_delay is not None:
                delay = f"Crawl-delay: {self.shop_crawl_delay}\n"
            text = (
                f"User-agent: *\nDisallow: /private/\n{delay}\n"
                f"User-agent: shopkeeper-crawler\nDisallow: /private/\n"
                f"Disallow: /hidden-from-shopkeeper/\n{delay}\n"
                f"User-agent: otherbot\nDisallow: /\n\n"
                f"Sitemap: {self.url('shop', '/sitemap.xml')}\n"
            )
            return _Answer(200, text.encode(), "text/plain")
        return _Answer(200, ALLOW_ALL, "text/plain")

    def _chain(self, role: str, path: str) -> _Answer:
        """Ten pages linking to the next: enough to see delays and concurrency on a host."""
        number = _number(path, "/c/")
        if path == "/" or number is not None:
            current = number or 0
            links = [f"/c/{n}" for n in range(current + 1, min(current + 4, 10))]
            return _Answer(body=page_html(f"{role} {current}", links))
        return _Answer(404, page_html("not found", []))

    def _big(self, path: str) -> _Answer:
        number = 0 if path == "/" else _number(path, "/p/")
        if number is None or number >= self.big_pages:
            return _Answer(404, page_html("not found", []))
        children = range(10 * number + 1, min(10 * number + 11, self.big_pages))
        return _Answer(body=page_html(f"big {number}", [f"/p/{child}" for child in children]))

    def _benchpage_html(self, number: int) -> bytes:
        links = [
            f"/b/{(number * self.bench_links + k + 1) % self.bench_pages}"
            for k in range(self.bench_links)
        ]
        return page_html(f"bench {number}", links, body="<p>" + "lorem ipsum " * 40 + "</p>")

    def _bench(self, path: str) -> _Answer:
        number = 0 if path == "/" else _number(path, "/b/")
        if number is None or number >= self.bench_pages:
            return _Answer(404, b"not found")
        return _Answer(body=self._bench_cache[number])

    def _shop(self, path: str, query: dict[str, list[str]]) -> _Answer:
        base = self.base("shop")
        if path == "/":
            links = [
                "/products?page=1",
                "/product/1?utm_source=home&utm_medium=web",
                "/product/1#reviews",
                f"{base.upper()}/product/1?fbclid=abc",
                "/old/product/2",
                "/calendar/2026/01",
                "/private/secret",
                "/hidden-from-shopkeeper/page",
                "/missing",
            ]
            return _Answer(body=page_html("Shop home", links))
        if path == "/products":
            page = int((query.get("page") or ["1"])[0])
            pages = -(-len(PRODUCTS) // PRODUCTS_PER_LIST_PAGE)
            listed = PRODUCTS[(page - 1) * PRODUCTS_PER_LIST_PAGE : page * PRODUCTS_PER_LIST_PAGE]
            links = [p.path for p in listed]
            # Tracking parameters on listing links make duplicates of every product.
            links += [f"{p.path}?utm_campaign=list&gclid=x{page}" for p in listed]
            if page < pages:
                links.append(f"/products?page={page + 1}")
            return _Answer(body=page_html(f"Products, page {page}", links))
        number = _number(path, "/product/")
        if number is not None and 1 <= number <= len(PRODUCTS):
            return _Answer(body=product_html(PRODUCTS[number - 1]))
        if path == "/sitemap.xml":
            urls = "".join(f"<url><loc>{base}{p.path}</loc></url>" for p in PRODUCTS)
            xml = (
                '<?xml version="1.0" encoding="UTF-8"?>'
                f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'
            )
            return _Answer(body=xml.encode(), content_type="application/xml")
        if path.startswith("/old/product/"):
            return _redirect(301, "/product/" + path.removeprefix("/old/product/"))
        hops = _number(path, "/redirect-chain/")
        if hops is not None:
            return _redirect(302, f"/redirect-chain/{hops - 1}" if hops > 1 else "/product/1")
        if path == "/redirect-loop":
            return _redirect(302, "/redirect-loop")
        if path == "/redirect-away":
            return _redirect(302, self.url("bench", "/b/1"))
        if path == "/redirect-private":
            return _redirect(302, "http://10.255.255.1/")
        if path.startswith("/calendar/"):
            return self._calendar(path)
        if path.startswith(("/private/", "/hidden-from-shopkeeper/")):
            return _Answer(body=page_html("You should not be here", []))
        if path == "/gone":
            return _Answer(410, page_html("gone", []))
        if path == "/error":
            return _Answer(500, page_html("error", []))
        if path == "/large":
            kib = int((query.get("kib") or ["2048"])[0])
            return _Answer(body=page_html("large", [], body="x" * (kib * 1024)))
        if path == "/gzip":
            body = gzip.compress(page_html("compressed", ["/product/3"]))
            return _Answer(body=body, headers=[(b"content-encoding", b"gzip")])
        if path == "/image.png":
            return _Answer(body=b"\x89PNG\r\n\x1a\n" + b"\0" * 64, content_type="image/png")
        return _Answer(404, page_html("not found", []))

    def _calendar(self, path: str) -> _Answer:
        try:
            year, month = (int(part) for part in path.removeprefix("/calendar/").split("/")[:2])
        except ValueError:
            return _Answer(404, page_html("not found", []))
        following = (year + 1, 1) if month == 12 else (year, month + 1)
        previous = (year - 1, 12) if month == 1 else (year, month - 1)
        links = [f"/calendar/{y}/{m:02d}" for y, m in (previous, following)]
        return _Answer(body=page_html(f"Calendar {year}-{month:02d}", links))


def _new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _redirect(status: int, location: str) -> _Answer:
    return _Answer(status, b"", "text/plain", [(b"location", location.encode())])


def _number(path: str, prefix: str) -> int | None:
    if not path.startswith(prefix):
        return None
    rest = path.removeprefix(prefix)
    return int(rest) if rest.isdigit() else None


@contextlib.contextmanager
def running_site(**options: Any) -> Iterator[CrawlSite]:
    site = CrawlSite(**options).start()
    try:
        yield site
    finally:
        site.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big-pages", type=int, default=2000)
    parser.add_argument("--bench-pages", type=int, default=1000)
    parser.add_argument("--bench-links", type=int, default=20)
    parser.add_argument("--first-address", type=int, default=2)
    args = parser.parse_args(argv)
    site = CrawlSite(
        big_pages=args.big_pages,
        bench_pages=args.bench_pages,
        bench_links=args.bench_links,
        first_address=args.first_address,
    ).start()
    bases = {role: site.base(role) for role in ROLES}
    bases["control"] = f"http://{site.control_address}:{site.control_port}"
    print(json.dumps(bases), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        site.stop()
        sys.exit(0)


if __name__ == "__main__":
    main()
