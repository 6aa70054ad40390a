"""The crawler's HTTP/1.1 client: GET only, pooled keep-alive connections, httptools' parser.

httpx over httpcore cost a crawl worker 0.41 ms of CPU per small page (its request and response
models, httpcore's pool walking its connections, h11's pure-Python state machine): a third of
all the CPU a crawled page costs, site and databases included. A crawler needs a narrow slice of
HTTP: one GET, its status, headers and (bounded, decompressed) body, no cookies, no auth, no
proxies. This is that slice over an `asyncio.Protocol`, parsed by httptools (llhttp, the C
parser uvicorn uses): about 0.03 ms per page.

It also decides where a connection may go: the host is resolved here, every resolved address
must pass `address_allowed`, and the socket connects to the address that passed, so neither a
redirect nor a DNS answer that changes between check and use reaches a refused network.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import SplitResult

import httptools

try:  # brotli bodies are decoded when the module is there, as httpx did
    import brotli
except ImportError:  # pragma: no cover - brotli is installed with the dev extras
    brotli = None

ACCEPT_ENCODING = "gzip, deflate, br" if brotli is not None else "gzip, deflate"
KEEPALIVE_S = 30.0


class HTTPError(Exception):
    """A fetch that got no (complete) answer; `kind` says which."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        """One of "timeout", "connection", "private-address", "invalid-url"."""
        self.detail = detail


@dataclass(slots=True)
class Response:
    status: int
    headers: dict[str, str]
    """Names lower-cased; a repeated header's last value."""
    body: bytes
    """Decoded; empty when not read."""
    too_large: bool = False
    """The body passed the limit (decoded) and was abandoned."""


class _Decoder(Protocol):
    def __call__(self, data: bytes, room: int) -> bytes: ...


def _zlib_decoder(wbits: int) -> _Decoder:
    state = zlib.decompressobj(wbits)

    def decode(data: bytes, room: int) -> bytes:
        # Never more than `room` + 1 bytes out of one call: a small bomb cannot inflate in
        # memory past the body limit before the limit is seen.
        out = state.decompress(data, room + 1)
        while state.unconsumed_tail and len(out) <= room:
            out += state.decompress(state.unconsumed_tail, room + 1 - len(out))
        return out

    return decode


def _deflate_decoder() -> _Decoder:
    """ "deflate" is meant to be zlib-wrapped, but some servers send raw deflate."""
    chosen: list[_Decoder] = []

    def decode(data: bytes, room: int) -> bytes:
        if not chosen:
            wrapped = _zlib_decoder(zlib.MAX_WBITS)
            try:
                out = wrapped(data, room)
            except zlib.error:
                chosen.append(_zlib_decoder(-zlib.MAX_WBITS))
                return chosen[0](data, room)
            chosen.append(wrapped)
            return out
        return chosen[0](data, room)

    return decode


def _brotli_decoder() -> _Decoder:
    state = brotli.Decompressor()

    def decode(data: bytes, room: int) -> bytes:
        return bytes(state.process(data))

    return decode


def _decoders(encoding: str) -> list[_Decoder] | None:
    """The decoders of a Content-Encoding, in the order to apply them; None: identity."""
    decoders: list[_Decoder] = []
    for name in reversed([part.strip().lower() for part in encoding.split(",")]):
        if name in {"gzip", "x-gzip"}:
            decoders.append(_zlib_decoder(16 + zlib.MAX_WBITS))
        elif name == "deflate":
            decoders.append(_deflate_decoder())
        elif name == "br" and brotli is not None:
            decoders.append(_brotli_decoder())
        # identity and encodings we did not offer are passed through, as httpx did
    return decoders or None


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one response at a time, parsed as its bytes arrive."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.error: BaseException | None = None
        self.idle_since = 0.0
        self.reused = False
        self._reset()

    def _reset(self) -> None:
        self.parser: Any = None
        self.status = 0
        self.header_list: list[tuple[bytes, bytes]] = []
        self.headers: dict[str, str] | None = None
        self.chunks: list[bytes] = []
        self.size = 0
        self.limit = 0
        self.decoders: list[_Decoder] | None = None
        self.reading: bool | None = None
        """None until the client decides, on the headers, whether to read the body."""
        self.early: list[bytes] = []
        self.too_large = False
        self.complete = False
        self.keep_alive = False
        self.started = False
        self.last_data = 0.0
        self.waiter: asyncio.Future[None] | None = None

    # --- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.last_data = self.loop.time()
        if self.parser is None:
            # Bytes nobody asked for (a server talking out of turn): the connection is unusable.
            self.closed = True
            if self.transport is not None:
                self.transport.close()
            return
        self.started = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(HTTPError("connection", "RemoteProtocolError: unexpected upgrade"))
        except httptools.HttpParserError as exc:
            self._fail(self.error or HTTPError("connection", f"RemoteProtocolError: {exc}"))
        else:
            if self.error is not None:
                self._fail(self.error)

    def eof_received(self) -> bool:
        if self._ends_with_connection():
            # A body delimited by the connection's end (no length, not chunked) ends here.
            self.on_message_complete()
        self.closed = True
        self._wake()
        return False

    def _ends_with_connection(self) -> bool:
        if self.parser is None or self.headers is None or self.complete:
            return False
        chunked = "chunked" in (self.header_value("transfer-encoding") or "").lower()
        return self.header_value("content-length") is None and not chunked

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if exc is not None and self.error is None:
            self.error = exc
        self._wake()

    # --- httptools callbacks ------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_list.append((name, value))

    def on_headers_complete(self) -> None:
        # A repeated header's last value, as the fetcher kept it from httpx's headers.
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in self.header_list
        }
        self.status = self.parser.get_status_code()
        if 100 <= self.status < 200:
            # An interim answer (100 Continue, 103 Early Hints): the real one follows.
            self.header_list = []
            return
        self.headers = headers
        encoding = headers.get("content-encoding")
        self.decoders = _decoders(encoding) if encoding else None
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self.reading is None:
            # Arrived with the headers, before the client decided: kept for its decision.
            self.early.append(body)
        elif self.reading and not self.too_large:
            self._take(body)

    def read_body(self) -> None:
        self.reading = True
        early, self.early = self.early, []
        for body in early:
            if self.too_large or self.error is not None:
                return
            self._take(body)
        if self.error is not None:
            self._fail(self.error)

    def _take(self, body: bytes) -> None:
        if self.decoders is not None:
            try:
                for decoder in self.decoders:
                    body = decoder(body, self.limit - self.size)
            except Exception as exc:  # zlib.error, brotli.error: the body is not what it says
                self.reading = False
                self.error = HTTPError("connection", f"DecodingError: {exc}")
                return
        self.size += len(body)
        if self.size > self.limit:
            self.too_large = True
            self.chunks = []
            self._wake()
            return
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        if self.headers is None:
            return
        self.complete = True
        # Asked now: llhttp forgets the message's flags once the callback returns.
        self.keep_alive = bool(self.parser.should_keep_alive())
        self._wake()

    # --- used by the client -------------------------------------------------------------------

    def header_value(self, name: str) -> str | None:
        return None if self.headers is None else self.headers.get(name)

    def _fail(self, error: BaseException) -> None:
        self.error = error
        self.closed = True
        if self.transport is not None:
            self.transport.close()
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def send(self, request: bytes, limit: int) -> None:
        self._reset()
        self.parser = httptools.HttpResponseParser(self)
        self.limit = limit
        self.last_data = self.loop.time()
        assert self.transport is not None
        self.transport.write(request)

    async def wait(self, ready: Callable[[], bool], timeout: float) -> None:  # noqa: ASYNC109 -- a per-read timeout, re-armed by each arrival
        """Until `ready()` or the connection ends; `timeout` without a byte arriving fails."""
        while not ready():
            if self.error is not None:
                raise self.error
            if self.closed:
                raise HTTPError(
                    "connection",
                    "RemoteProtocolError: server disconnected without sending a response"
                    if not self.started
                    else "RemoteProtocolError: peer closed connection without sending "
                    "complete message body",
                )
            waiter = self.waiter = self.loop.create_future()
            deadline = self.last_data + timeout
            timer = self.loop.call_at(deadline, _resolve, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self.waiter = None
            if not ready() and self.loop.time() >= self.last_data + timeout:
                raise HTTPError("timeout", f"ReadTimeout after {timeout} s")

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Client:
    """GETs over pooled keep-alive connections: at most `max_connections` requests at once and
    that many connections open (an idle one of another origin is closed to make room)."""

    def __init__(
        self,
        *,
        headers: dict[str, str],
        timeout_s: float,
        max_connections: int,
        ssl_context: ssl.SSLContext,
        address_allowed: Callable[[str], bool] | None,
    ) -> None:
        """`address_allowed` None: connect anywhere (the embedded and test default)."""
        self._header_block = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self._timeout = timeout_s
        self._max = max_connections
        self._ssl = ssl_context
        self._address_allowed = address_allowed
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._open = 0
        self._slots: asyncio.Semaphore | None = None

    async def aclose(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()
        self._open = 0

    async def get(
        self, parts: SplitResult, *, limit: int, read_body: Callable[[Response], bool]
    ) -> Response:
        """GET the URL `parts` (http or https, with a host). `read_body(response)` decides, on
        the headers, whether the body is read; a body over `limit` bytes (decoded) is abandoned
        and the response marked `too_large`."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._max)
        if self._slots.locked():
            try:
                async with asyncio.timeout(self._timeout):
                    await self._slots.acquire()
            except TimeoutError as exc:
                raise HTTPError("timeout", f"PoolTimeout after {self._timeout} s") from exc
        else:
            await self._slots.acquire()
        try:
            scheme = parts.scheme.lower()
            host = parts.hostname or ""
            port = parts.port or (443 if scheme == "https" else 80)
            request = self._request(parts, host, port, scheme)
            origin = (scheme, host, port)
            while True:
                connection = await self._connection(origin)
                try:
                    return await self._exchange(connection, origin, request, limit, read_body)
                except HTTPError as exc:
                    # A kept-alive connection the server closed as we reused it: once more on a
                    # new one (a GET that got no answer is safe to repeat).
                    if not (connection.reused and not connection.started and exc.kind != "timeout"):
                        raise
        finally:
            self._slots.release()

    def _request(self, parts: SplitResult, host: str, port: int, scheme: str) -> bytes:
        target = parts.path or "/"
        if parts.query:
            target = f"{target}?{parts.query}"
        authority = f"[{host}]" if ":" in host else host
        if port != (443 if scheme == "https" else 80):
            authority = f"{authority}:{port}"
        text = f"GET {target} HTTP/1.1\r\nhost: {authority}\r\n{self._header_block}\r\n"
        try:
            return text.encode("ascii")
        except UnicodeEncodeError as exc:
            raise HTTPError("invalid-url", f"not an ASCII request target: {target!r}") from exc

    async def _exchange(
        self,
        connection: _Connection,
        origin: tuple[str, str, int],
        request: bytes,
        limit: int,
        read_body: Callable[[Response], bool],
    ) -> Response:
        keep = False
        try:
            connection.send(request, limit)
            await connection.wait(lambda: connection.headers is not None, self._timeout)
            assert connection.headers is not None
            response = Response(connection.status, connection.headers, b"")
            connection.reading = False
            if read_body(response):
                connection.read_body()
                await connection.wait(
                    lambda: connection.complete or connection.too_large, self._timeout
                )
                if connection.too_large:
                    response.too_large = True
                else:
                    response.body = b"".join(connection.chunks)
            # An unread body that has arrived whole leaves the connection reusable.
            keep = connection.complete and connection.keep_alive
            return response
        finally:
            if keep and not connection.closed:
                connection.parser = None
                connection.idle_since = connection.loop.time()
                self._idle.setdefault(origin, []).append(connection)
            else:
                connection.close()
                self._open -= 1

    async def _connection(self, origin: tuple[str, str, int]) -> _Connection:
        idle = self._idle.get(origin)
        loop = asyncio.get_running_loop()
        while idle:
            connection = idle.pop()
            if connection.closed or loop.time() - connection.idle_since > KEEPALIVE_S:
                connection.close()
                self._open -= 1
                continue
            connection.reused = True
            return connection
        if self._open >= self._max:
            self._evict_one()
        self._open += 1
        try:
            return await self._connect(origin)
        except BaseException:
            self._open -= 1
            raise

    def _evict_one(self) -> None:
        for connections in self._idle.values():
            if connections:
                connections.pop(0).close()
                self._open -= 1
                return

    async def _connect(self, origin: tuple[str, str, int]) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._timeout):
                address = await self._address(host, port)
                _, connection = await loop.create_connection(
                    lambda: _Connection(loop),
                    address,
                    port,
                    ssl=self._ssl if scheme == "https" else None,
                    server_hostname=host if scheme == "https" else None,
                )
        except TimeoutError as exc:
            raise HTTPError("timeout", f"ConnectTimeout after {self._timeout} s") from exc
        except ssl.SSLError as exc:
            raise HTTPError("connection", f"ConnectError: TLS: {exc}") from exc
        except OSError as exc:
            raise HTTPError(
                "connection", f"ConnectError: {host}:{port}: {exc.strerror or exc}"
            ) from exc
        return connection

    async def _address(self, host: str, port: int) -> str:
        if self._address_allowed is None:
            return host
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except socket.gaierror as exc:
            raise HTTPError("connection", f"ConnectError: cannot resolve {host}: {exc}") from exc
        addresses = [str(info[4][0]) for info in infos]
        # All of them, not the first: a name resolving to one public and one private address
        # would otherwise reach the private one whenever a connection falls back to it.
        refused = [address for address in addresses if not self._address_allowed(address)]
        if refused or not addresses:
            shown = refused[0] if refused else "nothing"
            raise HTTPError("private-address", f"{host} resolves to a non-public address ({shown})")
        return addresses[0]
