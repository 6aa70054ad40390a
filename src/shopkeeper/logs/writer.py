"""`shopkeeper logs writer`: reads the ingest buffer's stream and stores its batches.

A group of messages (up to `batch_lines` lines, or what arrived within `flush_seconds`) is
recorded (its stream offsets), inserted, and only then acknowledged to the broker. A writer
killed at any point restarts from the recorded group and inserts it again under the same
deduplication tokens: no acknowledged line is lost, none is stored twice."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import aio_pika
import structlog
from aio_pika.abc import AbstractIncomingMessage

from shopkeeper.core.settings import Settings
from shopkeeper.logs.buffer import offsets
from shopkeeper.logs.buffer.codec import decode, line_count
from shopkeeper.logs.buffer.stream import open_stream
from shopkeeper.logs.store import Batch, LogStore, StoreUnavailable

log = structlog.get_logger(__name__)

OFFSET_HEADER = "x-stream-offset"


def message_offset(message: AbstractIncomingMessage) -> int:
    value = (message.headers or {}).get(OFFSET_HEADER)
    if not isinstance(value, int):
        raise ValueError("a stream message without its offset")
    return value


@dataclass
class BufferWriter:
    store: LogStore
    url: str
    stream: str
    max_bytes: int
    batch_lines: int = 50_000
    flush_seconds: float = 0.5
    prefetch: int = 2_000
    idle_exit_seconds: float | None = None
    """Return once the stream has been drained and silent this long (for batch jobs, tests)."""
    stored_lines: int = 0
    on_stored: Callable[[Sequence[Batch]], None] | None = None
    """Told of every stored group (live tail); must return at once."""
    _inbox: asyncio.Queue[AbstractIncomingMessage] = field(default_factory=asyncio.Queue)
    _next_offset: int = 0

    @classmethod
    def from_settings(cls, settings: Settings, store: LogStore) -> BufferWriter:
        if settings.logs_buffer_url is None:
            raise ValueError("SHOPKEEPER_LOGS_BUFFER_URL is not set: there is no buffer to read")
        return cls(
            store,
            settings.logs_buffer_url,
            settings.logs_buffer_stream,
            settings.logs_buffer_max_bytes,
            batch_lines=settings.logs_batch_lines,
        )

    async def run(self) -> None:
        """Consume until cancelled (or idle, with `idle_exit_seconds`)."""
        await offsets.create_table(self.store)
        resume = await offsets.last_group(self.store, self.stream)
        connection = await aio_pika.connect(self.url)
        try:
            _, queue = await open_stream(
                connection, self.stream, self.max_bytes, prefetch=self.prefetch
            )
            start: int | str = resume.first if resume is not None else "first"
            self._next_offset = resume.first if resume is not None else 0
            await queue.consume(self._inbox.put, arguments={"x-stream-offset": start})
            log.info("logs_writer_started", stream=self.stream, resume=resume)
            if resume is not None:
                # The recorded group again, exactly: stored already or not, it is stored once.
                messages = await self._collect(until=resume.last)
                await self._store(messages, record=False)
            while True:
                messages = await self._collect(until=None)
                if not messages:
                    return  # idle
                await self._store(messages, record=True)
        finally:
            with contextlib.suppress(Exception):
                await connection.close()

    async def _next_message(self, wait: float | None) -> AbstractIncomingMessage | None:
        while True:
            try:
                message = await asyncio.wait_for(self._inbox.get(), wait)
            except TimeoutError:
                return None
            # A stream consumer attached at an offset starts at the chunk holding it.
            if message_offset(message) >= self._next_offset:
                return message
            await message.ack()

    async def _collect(self, until: int | None) -> list[AbstractIncomingMessage]:
        """The next group: through offset `until`, or up to the line/prefetch/time bounds."""
        messages: list[AbstractIncomingMessage] = []
        lines = 0
        deadline: float | None = None
        while True:
            if until is not None:
                timeout = None
            elif deadline is None:
                timeout = self.idle_exit_seconds
            else:
                timeout = max(0.0, deadline - time.monotonic())
            message = await self._next_message(timeout)
            if message is None:
                return messages
            messages.append(message)
            if deadline is None:
                deadline = time.monotonic() + self.flush_seconds
            lines += _lines(message)
            if until is not None:
                if message_offset(message) >= until:
                    return messages
            elif lines >= self.batch_lines or len(messages) >= self.prefetch:
                return messages

    async def _store(self, messages: list[AbstractIncomingMessage], *, record: bool) -> None:
        if not messages:
            return
        group = offsets.Group(message_offset(messages[0]), message_offset(messages[-1]))
        batches: list[Batch] = []
        for message in messages:
            try:
                batches.extend(decode(message.body, dict(message.headers or {})))
            except (KeyError, ValueError, TypeError) as exc:  # not ours: skip, never block
                log.error("logs_writer_bad_message", offset=message_offset(message), error=str(exc))
        delay = 0.2
        while True:
            try:
                if record:
                    await offsets.record_group(self.store, self.stream, group)
                    record = False
                await self.store.insert_many(batches)
                break
            except StoreUnavailable as exc:
                log.warning("logs_writer_store_retry", error=str(exc)[:300], group=group)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        if self.on_stored is not None:
            self.on_stored(batches)
        # Only now does the broker hear that these are done (and send more).
        await messages[-1].ack(multiple=True)
        self._next_offset = group.last + 1
        lines = sum(batch.lines for batch in batches)
        self.stored_lines += lines
        log.debug("logs_writer_stored", lines=lines, first=group.first, last=group.last)


def _lines(message: AbstractIncomingMessage) -> int:
    try:
        return line_count(dict(message.headers or {}))
    except (KeyError, ValueError, TypeError):
        return 0


async def run_writer(settings: Settings, *, idle_exit_seconds: float | None = None) -> int:
    """Runs a writer on the configured store and buffer, reconnecting after broker failures;
    returns the lines stored (when idle exit is asked for)."""
    from shopkeeper.logs.store import open_store
    from shopkeeper.logs.tail.hub import TailHub

    store = await open_store(settings)
    # Stored lines reach the gateways' tail sessions through Redis.
    tail = TailHub(settings, listen=False)
    await tail.start()
    try:
        while True:
            writer = BufferWriter.from_settings(settings, store)
            writer.idle_exit_seconds = idle_exit_seconds
            writer.on_stored = tail.stored
            try:
                await writer.run()
                return writer.stored_lines
            except (aio_pika.exceptions.AMQPError, ConnectionError, OSError) as exc:
                log.warning("logs_writer_broker_lost", error=repr(exc)[:300])
                await asyncio.sleep(2)
    finally:
        await tail.stop()
        await store.close()
