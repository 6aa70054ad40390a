"""Syslog over UDP and TCP: asyncio servers feeding one collector, which hands batches of
frames to the ingest sink (the store's group commit, or the production buffer), which ClickHouse
parses.

Syslog has no acknowledgement, so durability is what back-pressure can give: while too many
lines wait to be stored, TCP connections stop being read (senders such as rsyslog then queue
on their side) and UDP datagrams are dropped and counted. A batch the sink refuses is retried
under the same batch id, so a retry that races a slow success is not stored twice."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import structlog

from shopkeeper.core.errors import DomainError
from shopkeeper.core.settings import Settings
from shopkeeper.logs.ingest.syslog import frame_row, take_rows
from shopkeeper.logs.ingest.writer import BatchSink
from shopkeeper.logs.store import Batch
from shopkeeper.logs.store.syslog_transform import row_prefix

log = structlog.get_logger(__name__)

SOURCE = "syslog"
MAX_TCP_BUFFER = 1024 * 1024
"""A TCP frame longer than this is cut: no real syslog message is, and memory stays bounded."""


@dataclass
class SyslogCollector:
    """Accumulates frames (as chunks of `SYSLOG_STRUCTURE` rows, parsed later by ClickHouse)
    and flushes them to the sink every `flush_seconds` or every `batch_lines` lines, up to
    `concurrent_flushes` writes at a time (under load, each INSERT takes what waits, up to
    `batch_lines`: fewer, larger inserts are what keeps up; two at once overlap one's query
    analysis with the other's parsing)."""

    sink: BatchSink
    tenant: str = "default"
    batch_lines: int = 50_000
    flush_seconds: float = 0.2
    max_pending_lines: int = 200_000
    concurrent_flushes: int = 2
    pending: list[tuple[bytes, int]] = field(default_factory=list)
    """Chunks of rows and how many rows each holds."""
    pending_lines: int = 0
    dropped: int = 0
    stored: int = 0
    _paused: set[asyncio.Transport] = field(default_factory=set)
    _readers: set[asyncio.Transport] = field(default_factory=set)
    _in_flight: int = 0
    _full: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _flushes: set[asyncio.Task[None]] = field(default_factory=set)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="logs-syslog-flush")

    async def stop(self) -> None:
        """Flushes what was received, then stops."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for flush in list(self._flushes):
            with contextlib.suppress(asyncio.CancelledError):
                await flush
        while self.pending:
            await self._write(self._take())

    @property
    def waiting(self) -> int:
        return self.pending_lines + self._in_flight

    def add(self, rows: bytes, lines: int, reader: asyncio.Transport | None = None) -> bool:
        """Queues rows; False (and nothing queued) when a datagram must be dropped."""
        if reader is None and self.waiting >= self.max_pending_lines:
            self.dropped += lines
            return False
        self.pending.append((rows, lines))
        self.pending_lines += lines
        if self.pending_lines >= self.batch_lines:
            self._full.set()
        if reader is not None and self.waiting >= self.max_pending_lines:
            reader.pause_reading()
            self._paused.add(reader)
        return True

    def forget(self, reader: asyncio.Transport) -> None:
        self._paused.discard(reader)

    async def _run(self) -> None:
        slots = asyncio.Semaphore(max(1, self.concurrent_flushes))
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), self.flush_seconds)
            self._full.clear()
            while self.pending:
                await slots.acquire()
                if not self.pending:
                    slots.release()
                    break
                flush = asyncio.create_task(self._write(self._take()), name="logs-syslog-write")
                self._flushes.add(flush)
                flush.add_done_callback(self._flushes.discard)
                flush.add_done_callback(lambda _: slots.release())
                if self.pending_lines < self.batch_lines:
                    break

    def _take(self) -> Batch:
        """The oldest waiting chunks, up to `batch_lines` rows (one chunk at least)."""
        taken, lines = 0, 0
        while taken < len(self.pending) and (
            taken == 0 or lines + self.pending[taken][1] <= self.batch_lines
        ):
            lines += self.pending[taken][1]
            taken += 1
        chunks, self.pending = self.pending[:taken], self.pending[taken:]
        self.pending_lines -= lines
        self._in_flight += lines
        return Batch(
            tenant=self.tenant,
            source=SOURCE,
            format="syslog",
            payload=b"".join(rows for rows, _ in chunks),
            lines=lines,
        )

    async def _write(self, batch: Batch) -> None:
        delay = 0.1
        try:
            while True:
                try:
                    await self.sink.write([batch])
                    break
                except DomainError as exc:  # overloaded or storage down: keep it, retry
                    log.warning("logs_syslog_write_retry", error=exc.slug, lines=batch.lines)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
        finally:
            self._in_flight -= batch.lines
        self.stored += batch.lines
        if self._paused and self.waiting < self.max_pending_lines // 2:
            for reader in self._paused:
                if not reader.is_closing():
                    reader.resume_reading()
            self._paused.clear()


def _peer_host(address: object) -> str:
    if isinstance(address, tuple) and address:
        return str(address[0])
    return ""


class SyslogDatagram(asyncio.DatagramProtocol):
    """One message per datagram (RFC 5426)."""

    def __init__(self, collector: SyslogCollector) -> None:
        self.collector = collector

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        prefix = row_prefix(_peer_host(addr), time.time_ns())
        self.collector.add(frame_row(data, prefix), 1)


class SyslogStream(asyncio.Protocol):
    """A TCP connection carrying framed messages (RFC 6587)."""

    def __init__(self, collector: SyslogCollector) -> None:
        self.collector = collector
        self.buffer = bytearray()
        self.peer = ""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports (uvicorn's loop) are not asyncio.Transport subclasses.
        self.transport = cast(asyncio.Transport, transport)
        self.peer = _peer_host(transport.get_extra_info("peername"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        prefix = row_prefix(self.peer, time.time_ns())
        rows, lines = take_rows(self.buffer, prefix)
        if len(self.buffer) > MAX_TCP_BUFFER:
            rows += frame_row(bytes(self.buffer), prefix)
            lines += 1
            self.buffer.clear()
        if lines:
            self.collector.add(rows, lines, self.transport)

    def eof_received(self) -> bool | None:
        # A last message without a trailing delimiter is still a message.
        if self.buffer.strip(b"\r\n\x00 "):
            prefix = row_prefix(self.peer, time.time_ns())
            self.collector.add(frame_row(bytes(self.buffer), prefix), 1, self.transport)
        self.buffer.clear()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.collector.forget(self.transport)


@dataclass
class SyslogServers:
    """The running UDP and TCP servers of one process and their collector."""

    collector: SyslogCollector
    udp: asyncio.DatagramTransport
    tcp: asyncio.Server

    @property
    def port(self) -> int:
        return int(self.tcp.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        self.udp.close()
        self.tcp.close()
        await self.tcp.wait_closed()
        await self.collector.stop()


async def start_syslog(
    sink: BatchSink,
    *,
    host: str = "127.0.0.1",
    port: int = 5514,
    tenant: str = "default",
    batch_lines: int = 50_000,
    flush_seconds: float = 0.2,
    max_pending_lines: int = 200_000,
) -> SyslogServers:
    """UDP and TCP syslog on one port number (port 0: a free one, the same for both)."""
    collector = SyslogCollector(
        sink,
        tenant=tenant,
        batch_lines=batch_lines,
        flush_seconds=flush_seconds,
        max_pending_lines=max_pending_lines,
    )
    loop = asyncio.get_running_loop()
    protocol: Callable[[], SyslogStream] = lambda: SyslogStream(collector)  # noqa: E731
    tcp = await loop.create_server(protocol, host, port, reuse_address=True)
    bound_port = int(tcp.sockets[0].getsockname()[1])
    family = tcp.sockets[0].family
    try:
        udp, _ = await loop.create_datagram_endpoint(
            lambda: SyslogDatagram(collector), local_addr=(host, bound_port), family=family
        )
    except OSError:
        tcp.close()
        raise
    with contextlib.suppress(OSError):  # a larger receive buffer rides out bursts
        udp.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    collector.start()
    log.info("logs_syslog_listening", host=host, port=bound_port)
    return SyslogServers(collector, udp, tcp)


async def start_syslog_from_settings(settings: Settings, sink: BatchSink) -> SyslogServers | None:
    """The servers `SHOPKEEPER_LOGS_SYSLOG_*` ask for, or None when the port is 0."""
    if not settings.logs_syslog_port:
        return None
    return await start_syslog(
        sink,
        host=settings.logs_syslog_host,
        port=settings.logs_syslog_port,
        tenant=settings.logs_syslog_tenant,
        batch_lines=settings.logs_batch_lines,
        max_pending_lines=settings.logs_max_pending_lines,
    )
