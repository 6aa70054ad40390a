"""Prometheus metrics of the logs system: what ingest accepted, what the store wrote and how
long it took, how long queries take. Alert and retention metrics live beside their code.

Refused ingest requests are counted by the HTTP metrics every route has
(`shopkeeper_http_requests_total{route=~"/api/v1/logs/.*", status=~"4..|5.."}`)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from prometheus_client import Counter, Histogram

from shopkeeper.logs.ingest.writer import BatchSink
from shopkeeper.logs.store import Batch
from shopkeeper.logs.store.metrics import INSERT_SECONDS, LINES_STORED

__all__ = ["BYTES_ACCEPTED", "INSERT_SECONDS", "LINES_ACCEPTED", "LINES_STORED", "QUERY_SECONDS"]

LINES_ACCEPTED = Counter(
    "shopkeeper_logs_lines_accepted_total",
    "Lines acknowledged to senders (stored, or confirmed by the buffer), by protocol",
    ["source"],
)
BYTES_ACCEPTED = Counter(
    "shopkeeper_logs_bytes_accepted_total",
    "Bytes of the accepted lines as handed to storage, by protocol",
    ["source"],
)
QUERY_SECONDS = Histogram(
    "shopkeeper_logs_query_seconds",
    "Time to answer a LogQL query, by type",
    ["type"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)

P = ParamSpec("P")
R = TypeVar("R")


class MeteredSink:
    """Counts what a sink took (it raises when it did not take it: nothing is counted then)."""

    def __init__(self, inner: BatchSink) -> None:
        self.inner = inner

    async def write(self, batches: list[Batch]) -> None:
        await self.inner.write(batches)
        for batch in batches:
            LINES_ACCEPTED.labels(batch.source).inc(batch.lines)
            BYTES_ACCEPTED.labels(batch.source).inc(len(batch.payload))


def timed_query(kind: str) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Observe a query function's duration under `type=kind`, failures included."""
    observe = QUERY_SECONDS.labels(kind).observe

    def decorate(function: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @wraps(function)
        async def timed(*args: P.args, **kwargs: P.kwargs) -> R:
            started = time.perf_counter()
            try:
                return await function(*args, **kwargs)
            finally:
                observe(time.perf_counter() - started)

        return timed

    return decorate
