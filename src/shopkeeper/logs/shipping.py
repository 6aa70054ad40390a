"""The process's own logs, stored in-process under service `shopkeeper`, tenant `default`,
source `internal`: structlog events (request logs with route, status, duration and request id;
application logs) and stdlib logging records.

Logging never waits on storage: events land in a bounded buffer (the oldest are dropped, and
counted, when storage falls behind) that a background task flushes every half second."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

from shopkeeper.core.observability import add_log_tap, remove_log_tap
from shopkeeper.logs.auth import DEFAULT_TENANT
from shopkeeper.logs.ingest.writer import BatchSink
from shopkeeper.logs.records import LogRecord, normalize_level
from shopkeeper.logs.store import records_batch

SERVICE = "shopkeeper"
FLUSH_SECONDS = 0.5
MAX_BUFFERED = 20_000
_OWN_FIELDS = frozenset({"event", "level", "timestamp", "trace_id", "span_id", "service"})


class OwnLogBuffer:
    """Thread-safe, bounded: any thread may log; the event loop drains."""

    def __init__(self, max_records: int = MAX_BUFFERED, service: str = SERVICE) -> None:
        self.host = socket.gethostname()
        self.service = service
        self.records: deque[LogRecord] = deque(maxlen=max_records)
        self.dropped = 0
        self._lock = threading.Lock()

    def add(self, record: LogRecord) -> None:
        with self._lock:
            if len(self.records) == self.records.maxlen:
                self.dropped += 1
            self.records.append(record)

    def take(self) -> list[LogRecord]:
        with self._lock:
            records = list(self.records)
            self.records.clear()
        return records

    def structlog_event(self, event: Mapping[str, Any]) -> None:
        attributes = {
            key: value if isinstance(value, str) else str(value)
            for key, value in event.items()
            if key not in _OWN_FIELDS and value is not None
        }
        self.add(
            LogRecord(
                message=str(event.get("event", "")),
                timestamp_ns=_iso_to_ns(event.get("timestamp")),
                # An event may name its own service (crawl jobs log as `crawl`).
                service=str(event.get("service") or self.service),
                host=self.host,
                level=normalize_level(event.get("level")),
                trace_id=str(event.get("trace_id", "")),
                span_id=str(event.get("span_id", "")),
                attributes=attributes,
            )
        )


class _StdlibHandler(logging.Handler):
    def __init__(self, buffer: OwnLogBuffer) -> None:
        super().__init__(logging.INFO)
        self.buffer = buffer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + self.format(record).split("\n", 1)[-1]
            self.buffer.add(
                LogRecord(
                    message=message,
                    timestamp_ns=int(record.created * 1e9),
                    service=self.buffer.service,
                    host=self.buffer.host,
                    level=normalize_level(record.levelname),
                    attributes={"logger": record.name},
                )
            )
        except Exception:  # a log handler must never raise into the code that logs
            self.handleError(record)


def _iso_to_ns(value: object) -> int:
    if not isinstance(value, str):
        return time.time_ns()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return time.time_ns()
    return int(moment.timestamp()) * 10**9 + moment.microsecond * 1000


async def flush(buffer: OwnLogBuffer, sink: BatchSink) -> int:
    """Store what is buffered; on failure those records are dropped, never retried forever."""
    records = buffer.take()
    if not records:
        return 0
    try:
        await sink.write([records_batch(records, tenant=DEFAULT_TENANT, source="internal")])
    except Exception:
        buffer.dropped += len(records)
        return 0
    return len(records)


@contextlib.asynccontextmanager
async def shipping_own_logs(sink: BatchSink, service: str = SERVICE) -> AsyncIterator[OwnLogBuffer]:
    buffer = OwnLogBuffer(service=service)
    handler = _StdlibHandler(buffer)
    add_log_tap(buffer.structlog_event)
    logging.getLogger().addHandler(handler)

    async def run() -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            await flush(buffer, sink)

    task = asyncio.create_task(run(), name="logs-own-shipping")
    try:
        yield buffer
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        logging.getLogger().removeHandler(handler)
        remove_log_tap(buffer.structlog_event)
        await flush(buffer, sink)
