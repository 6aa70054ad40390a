"""The gateway's side of the buffer: a request's batches go to the stream as one message and
the request is answered only after the broker confirms it (all of its lines, or none)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import aio_pika
import structlog
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection

from shopkeeper.core.settings import Settings
from shopkeeper.logs.buffer.codec import encode
from shopkeeper.logs.buffer.stream import connect, open_stream
from shopkeeper.logs.ingest.errors import IngestOverloaded
from shopkeeper.logs.store import Batch

log = structlog.get_logger(__name__)

BROKER_ERRORS = (aio_pika.exceptions.AMQPError, ConnectionError, OSError, TimeoutError)


class BufferPublisher:
    """A `BatchSink` publishing to the RabbitMQ stream with publisher confirms."""

    def __init__(
        self,
        url: str,
        *,
        stream: str,
        max_bytes: int,
        max_in_flight_lines: int,
        confirm_timeout: float,
    ) -> None:
        self.url = url
        self.stream = stream
        self.max_bytes = max_bytes
        self.max_in_flight_lines = max_in_flight_lines
        self.confirm_timeout = confirm_timeout
        self.in_flight_lines = 0
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> BufferPublisher:
        assert settings.logs_buffer_url is not None
        return cls(
            settings.logs_buffer_url,
            stream=settings.logs_buffer_stream,
            max_bytes=settings.logs_buffer_max_bytes,
            max_in_flight_lines=settings.logs_buffer_max_in_flight_lines,
            confirm_timeout=settings.logs_buffer_confirm_timeout,
        )

    async def start(self) -> None:
        """Connects now if it can; a broker down at start-up is retried on each request."""
        try:
            await self._ready()
        except IngestOverloaded:
            log.warning("logs_buffer_unreachable_at_start", stream=self.stream)

    async def stop(self) -> None:
        connection, self._connection, self._exchange = self._connection, None, None
        if connection is not None:
            with contextlib.suppress(*BROKER_ERRORS):
                await connection.close()

    async def write(self, batches: list[Batch]) -> None:
        lines = sum(batch.lines for batch in batches)
        if lines == 0:
            return
        # One request larger than the whole bound is still taken when nothing else waits.
        if self.in_flight_lines and self.in_flight_lines + lines > self.max_in_flight_lines:
            raise IngestOverloaded(retry_after=1, detail="The ingest buffer is full; retry")
        self.in_flight_lines += lines
        try:
            await self.publish(batches)
        finally:
            self.in_flight_lines -= lines

    async def publish(self, batches: Sequence[Batch]) -> None:
        exchange = await self._ready()
        body, headers = encode(batches)
        message = aio_pika.Message(
            body,
            headers=headers,
            message_id=batches[0].batch_id,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        try:
            await exchange.publish(message, self.stream, timeout=self.confirm_timeout)
        except BROKER_ERRORS as exc:
            # Not confirmed, so not acknowledged: the client resends the request. Should the
            # broker have kept this copy after all, both are stored (at least once at the HTTP
            # edge, as with any push protocol without request ids); from here on, exactly once.
            log.warning("logs_buffer_publish_failed", error=repr(exc)[:300])
            raise IngestOverloaded(
                retry_after=1, detail="The ingest buffer did not confirm the lines; retry"
            ) from exc

    async def _ready(self) -> AbstractExchange:
        exchange = self._exchange
        if exchange is not None and self._channel is not None and not self._channel.is_closed:
            return exchange
        async with self._lock:
            if self._exchange is not None and self._channel and not self._channel.is_closed:
                return self._exchange
            try:
                if self._connection is None or self._connection.is_closed:
                    self._connection = await connect(self.url, within=self.confirm_timeout)
                self._channel, _ = await open_stream(
                    self._connection, self.stream, self.max_bytes, publisher_confirms=True
                )
                self._exchange = self._channel.default_exchange
            except BROKER_ERRORS as exc:
                log.warning("logs_buffer_unreachable", error=repr(exc)[:300])
                raise IngestOverloaded(
                    retry_after=2, detail="The ingest buffer is unreachable; retry"
                ) from exc
            return self._exchange
