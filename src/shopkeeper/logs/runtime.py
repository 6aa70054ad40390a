"""The logs system's long-lived objects in one process: the store, the sink ingest writes to,
and the handler shipping this process's own logs. `app.py` starts them with the app."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

import structlog
from fastapi import Depends, Request

from shopkeeper.core.settings import Settings
from shopkeeper.logs.buffer.publisher import BufferPublisher
from shopkeeper.logs.ingest.errors import StorageUnavailable
from shopkeeper.logs.ingest.syslog_server import SyslogServers, start_syslog_from_settings
from shopkeeper.logs.ingest.writer import BatchSink, GroupCommitWriter
from shopkeeper.logs.metrics import MeteredSink
from shopkeeper.logs.store import LogStore, open_store
from shopkeeper.logs.tail.hub import TailHub

log = structlog.get_logger(__name__)


@dataclass
class LogsRuntime:
    settings: Settings
    store: LogStore
    sink: BatchSink
    """Embedded: a group-commit writer into the store. A production gateway may replace it by
    the ingest buffer's publisher (same `write(batches)` contract)."""
    tail: TailHub
    """Live tail sessions of this process, fed by the writer (here or, through Redis, in
    `logs writer`)."""
    _writer: GroupCommitWriter | None = field(default=None, repr=False)

    _publisher: BufferPublisher | None = field(default=None, repr=False)
    _syslog: SyslogServers | None = field(default=None, repr=False)

    @classmethod
    async def start(cls, settings: Settings) -> LogsRuntime:
        store = await open_store(settings)
        tail = TailHub(settings)
        await tail.start()
        if settings.logs_buffer_url:
            # A production gateway: batches go to the buffer; `logs writer` stores them.
            publisher = BufferPublisher.from_settings(settings)
            await publisher.start()
            runtime = cls(
                settings=settings, store=store, sink=publisher, tail=tail, _publisher=publisher
            )
        else:
            writer = GroupCommitWriter(
                store,
                max_pending_lines=settings.logs_max_pending_lines,
                batch_lines=settings.logs_batch_lines,
                concurrent_rounds=store.concurrent_inserts,
                on_stored=tail.stored,
            )
            tail.watch_ingest(writer.busy)
            await writer.start()
            runtime = cls(settings=settings, store=store, sink=writer, tail=tail, _writer=writer)
        # Everything that reaches storage or the buffer (HTTP, syslog, own logs) is counted.
        runtime.sink = MeteredSink(runtime.sink)
        try:
            runtime._syslog = await start_syslog_from_settings(settings, runtime.sink)
        except OSError as exc:  # the port is taken (another worker, another server): no syslog
            log.warning("logs_syslog_not_started", error=str(exc))
        return runtime

    async def stop(self) -> None:
        if self._syslog is not None:
            await self._syslog.stop()
        if self._writer is not None:
            await self._writer.stop()
        if self._publisher is not None:
            await self._publisher.stop()
        await self.tail.stop()
        await self.store.close()


@asynccontextmanager
async def logs_running(settings: Settings) -> AsyncIterator[LogsRuntime]:
    """The logs system for the life of an app; also ships the process's own logs into it."""
    from shopkeeper.logs.shipping import shipping_own_logs

    runtime = await LogsRuntime.start(settings)
    try:
        if settings.logs_ship_own_logs:
            async with shipping_own_logs(runtime.sink):
                yield runtime
        else:
            yield runtime
    finally:
        await runtime.stop()


@asynccontextmanager
async def standalone_process_logs(settings: Settings, service: str) -> AsyncIterator[None]:
    """A standalone process's own logs (`shopkeeper worker`, `scheduler`, `crawl worker`),
    shipped under `service` to the buffer (SHOPKEEPER_LOGS_BUFFER_URL) or straight to a
    ClickHouse server (SHOPKEEPER_LOGS_CLICKHOUSE_URL). With neither, the embedded chDB belongs
    to `serve`, which runs these in-process and ships their logs itself: nothing to do here.
    A log store that cannot be reached never stops the process: it logs to stdout only."""
    from shopkeeper.logs.shipping import shipping_own_logs

    wanted = settings.logs_enabled and settings.logs_ship_own_logs
    if not wanted or not (settings.logs_buffer_url or settings.logs_clickhouse_url):
        yield
        return
    sink: BatchSink
    close: list[Any] = []
    try:
        if settings.logs_buffer_url:
            publisher = BufferPublisher.from_settings(settings)
            await publisher.start()
            sink, close = publisher, [publisher.stop]
        else:
            store = await open_store(settings)
            writer = GroupCommitWriter(
                store,
                max_pending_lines=settings.logs_max_pending_lines,
                batch_lines=settings.logs_batch_lines,
            )
            await writer.start()
            sink, close = writer, [writer.stop, store.close]
    except Exception as exc:
        log.warning("own_logs_not_shipped", service=service, error=str(exc))
        yield
        return
    try:
        async with shipping_own_logs(sink, service=service):
            yield
    finally:
        for step in close:
            with contextlib.suppress(Exception):
                await step()


async def get_logs(request: Request) -> LogsRuntime:
    logs: LogsRuntime | None = getattr(request.app.state, "logs", None)
    if logs is None:
        raise StorageUnavailable("The log storage is not open in this process")
    return logs


async def get_store(request: Request) -> LogStore:
    return (await get_logs(request)).store


async def get_sink(request: Request) -> BatchSink:
    return (await get_logs(request)).sink


Logs = Annotated[LogsRuntime, Depends(get_logs)]
LogStoreDep = Annotated[LogStore, Depends(get_store)]
Sink = Annotated[BatchSink, Depends(get_sink)]
