"""The tail hub of a process: takes what the writer has just stored and hands it to the
matching sessions, here and, through Redis pub/sub, in every other process.

The writer calls `stored` after each INSERT: it queues and returns, whatever the sessions do.
Every process feeds its own sessions with its `LocalFeed` (`feed.py`): fairly between them,
decoding only the lines some session may match, within a share of its event loop. Distributed,
the writer's process publishes each watched tenant's stored batches as they are (raw bytes, in
pieces of whole lines; nothing decoded there), and every listening process hands what it
receives to its own feed. Past `OUTBOX_BYTES` of unpublished batches (Redis slow) the oldest are
not tailed and counted in `missed_batches`, and a batch that waited past `MAX_WAIT_SECONDS` is
shed too. Storage and ingest are never held up by a tail."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import orjson
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shopkeeper.core.settings import Settings
from shopkeeper.logs.store import Batch
from shopkeeper.logs.tail.feed import MAX_WAIT_SECONDS, LocalFeed
from shopkeeper.logs.tail.session import TailSession, row_entries

log = structlog.get_logger(__name__)

OUTBOX_BYTES = 16 * 1024 * 1024
"""Stored bytes waiting to be published at most (distributed); past it the largest batch is
shed (a flood's megabytes, never a one-line batch behind them), reported to every session of
its tenant, since the writer does not know their filters. Publishing costs a copy, so this
fills only while Redis is slow, or when one round hands over more than this at once."""
MESSAGE_BYTES = 512 * 1024
"""A stored batch is published in pieces of about this many bytes, cut after a line: a
listener's feed sheds and serves them like batches, and no message nears Redis's output
buffer limit for pub/sub clients (32 MiB by default, past which it drops the subscriber)."""
WATCH_SECONDS = 30
"""A process tailing a tenant marks it watched in Redis for this long, renewed every third."""
WATCH_CACHE_SECONDS = 1.0
"""How long a publisher trusts its answer to "is this tenant watched anywhere?"."""


def batch_message(batch: Batch) -> bytes:
    """A stored batch as one pub/sub message: its description as a JSON line, then its bytes."""
    meta = {
        "source": batch.source,
        "format": batch.format,
        "lines": batch.lines,
        "extra": dict(batch.extra_attributes),
    }
    return orjson.dumps(meta) + b"\n" + batch.payload


def message_batch(tenant: str, data: bytes) -> Batch | int:
    """The batch a message carries, or the number of lines a writer reports it shed."""
    head, _, payload = data.partition(b"\n")
    meta = orjson.loads(head)
    if "missed" in meta:
        return int(meta["missed"])
    return Batch(
        tenant=tenant,
        source=str(meta["source"]),
        format=meta["format"],
        payload=payload,
        lines=int(meta["lines"]),
        extra_attributes={str(k): str(v) for k, v in meta["extra"].items()},
    )


def pieces(batch: Batch, size: int = MESSAGE_BYTES) -> list[Batch]:
    """`batch` cut after a line into pieces of about `size` bytes (one piece if it is small)."""
    payload = batch.payload
    if len(payload) <= size:
        return [batch]
    cut: list[Batch] = []
    start = 0
    while start < len(payload):
        newline = payload.find(b"\n", start + size)
        end = len(payload) if newline < 0 else newline + 1
        part = payload[start:end]
        lines = part.count(b"\n") + (not part.endswith(b"\n"))
        cut.append(
            Batch(
                tenant=batch.tenant,
                source=batch.source,
                format=batch.format,
                payload=part,
                lines=lines,
                extra_attributes=batch.extra_attributes,
            )
        )
        start = end
    return cut


@dataclass(frozen=True, slots=True)
class _Missed:
    tenant: str


class _Outbox:
    """A FIFO of stored batches (with the time each was queued) and shed notices, from which
    the largest batch can also be taken out to make room."""

    def __init__(self) -> None:
        self._items: deque[tuple[float, Batch] | _Missed] = deque()
        self._ready = asyncio.Event()

    def put_nowait(self, item: tuple[float, Batch] | _Missed) -> None:
        self._items.append(item)
        self._ready.set()

    async def get(self) -> tuple[float, Batch] | _Missed:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

    def qsize(self) -> int:
        return len(self._items)

    def pop_largest_batch(self, at_least: int) -> Batch | None:
        """The largest batch waiting (the oldest of equals), taken out, if it holds at least
        `at_least` bytes."""
        found: int | None = None
        for index, item in enumerate(self._items):
            if isinstance(item, _Missed):
                continue
            size = len(item[1].payload)
            if size >= at_least and (found is None or size > len(self._item(found).payload)):
                found = index
        if found is None:
            return None
        batch = self._item(found)
        del self._items[found]
        return batch

    def _item(self, index: int) -> Batch:
        item = self._items[index]
        assert not isinstance(item, _Missed)
        return item[1]


class TailHub:
    def __init__(self, settings: Settings, *, listen: bool = True) -> None:
        self.settings = settings
        self.listen = listen
        self._sessions: dict[str, set[TailSession]] = {}
        self._outbox = _Outbox()
        self._missed: dict[str, int] = {}
        self._outbox_bytes = 0
        self._watched: dict[str, tuple[float, bool]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._redis: Redis | None = None
        extra = f"{settings.redis_channel_prefix}:" if settings.redis_channel_prefix else ""
        self._prefix = f"{settings.redis_namespace}:{extra}logs-tail:"
        self._subscribed = asyncio.Event()
        self._local = LocalFeed(lambda tenant: self._sessions.get(tenant, set()))
        self._missed_batches = 0

    @property
    def missed_batches(self) -> int:
        """Stored batches (or their rests) shed unexamined, reported dropped to sessions."""
        return self._missed_batches + self._local.missed_batches

    @property
    def distributed(self) -> bool:
        return self.settings.redis_url is not None

    async def start(self) -> None:
        if self.distributed:
            assert self.settings.redis_url is not None
            self._redis = Redis.from_url(self.settings.redis_url)
        if self.distributed:
            self._tasks.append(asyncio.create_task(self._deliver_stored(), name="logs-tail-pub"))
        if self.listen or not self.distributed:
            self._tasks.append(asyncio.create_task(self._local.run(), name="logs-tail-feed"))
        if self.distributed and self.listen:
            self._tasks.append(asyncio.create_task(self._listen(), name="logs-tail-listen"))
            self._tasks.append(asyncio.create_task(self._keep_watching(), name="logs-tail-watch"))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._subscribed.wait(), 5)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    # -- the writer's side ---------------------------------------------------------------------

    def watch_ingest(self, busy: Callable[[], bool]) -> None:
        """Tells the local feed when the writer has work (it then takes less of the loop)."""
        self._local.ingest_busy = busy

    def stored(self, batches: Sequence[Batch]) -> None:
        """Hand over batches that have just been stored; never waits."""
        for batch in batches:
            if not self.distributed:
                if batch.tenant in self._sessions:  # a tenant nobody tails costs nothing
                    self._local.put(batch)
                continue
            # Full: the largest batches go first (of equals, the oldest), this one if every
            # batch waiting is smaller.
            while self._outbox_bytes + len(batch.payload) > OUTBOX_BYTES:
                largest = self._outbox.pop_largest_batch(len(batch.payload))
                if largest is None:
                    break
                self._outbox_bytes -= len(largest.payload)
                self._shed(largest)
            if self._outbox_bytes + len(batch.payload) > OUTBOX_BYTES:
                self._shed(batch)
                continue
            self._outbox_bytes += len(batch.payload)
            self._outbox.put_nowait((time.monotonic(), batch))

    def _shed(self, batch: Batch) -> None:
        """A batch the feed cannot take: its lines reach the sessions as dropped, unexamined."""
        self._missed_batches += 1
        log.info("logs_tail_missed_batch", tenant=batch.tenant, lines=batch.lines)
        pending = self._missed.get(batch.tenant, 0)
        self._missed[batch.tenant] = pending + batch.lines
        if not pending:  # one notice per tenant waits in the outbox, however many are shed
            self._outbox.put_nowait(_Missed(batch.tenant))

    async def _deliver_stored(self) -> None:
        while True:
            item = await self._outbox.get()
            if isinstance(item, _Missed):
                await self._publish_missed(item.tenant)
                continue
            queued_at, batch = item
            if time.monotonic() - queued_at > MAX_WAIT_SECONDS:
                # Too late to be live: shed with a marker rather than deliver it seconds late.
                self._outbox_bytes -= len(batch.payload)
                self._shed(batch)
                continue
            try:
                if await self._is_watched(batch.tenant):
                    await self._publish(batch)
            except RedisError as exc:
                log.warning("logs_tail_publish_failed", error=str(exc)[:200])
            except Exception:  # a batch we cannot decode is not worth stopping the feed for
                log.exception("logs_tail_feed_failed", tenant=batch.tenant)
            finally:
                self._outbox_bytes -= len(batch.payload)

    async def _publish(self, batch: Batch) -> None:
        """The batch's bytes to every listening process, whose feeds decode what their sessions
        may match: nothing is decoded here."""
        assert self._redis is not None
        for piece in pieces(batch):
            await self._redis.publish(self._prefix + batch.tenant, batch_message(piece))

    async def _publish_missed(self, tenant: str) -> None:
        lines = self._missed.pop(tenant, 0)
        assert self._redis is not None
        with contextlib.suppress(RedisError):
            if lines and await self._is_watched(tenant):
                await self._redis.publish(self._prefix + tenant, orjson.dumps({"missed": lines}))

    async def _is_watched(self, tenant: str) -> bool:
        now = time.monotonic()
        cached = self._watched.get(tenant)
        if cached is not None and now - cached[0] < WATCH_CACHE_SECONDS:
            return cached[1]
        assert self._redis is not None
        watched = bool(await self._redis.exists(self._watch_key(tenant)))
        self._watched[tenant] = (now, watched)
        return watched

    def _watch_key(self, tenant: str) -> str:
        return f"{self._prefix}watch:{tenant}"

    # -- the sessions' side --------------------------------------------------------------------

    async def subscribe(self, session: TailSession) -> None:
        """From now on `session` is offered every line stored for its tenant. Distributed, this
        returns once every publisher is sure to have noticed the tenant is watched."""
        self._sessions.setdefault(session.tenant, set()).add(session)
        if self.distributed:
            assert self._redis is not None
            try:
                await self._redis.set(self._watch_key(session.tenant), 1, ex=WATCH_SECONDS)
            except RedisError as exc:
                log.warning("logs_tail_watch_failed", error=str(exc)[:200])
            # A publisher may have cached "not watched" just before: let that answer expire.
            await asyncio.sleep(WATCH_CACHE_SECONDS)

    def unsubscribe(self, session: TailSession) -> None:
        sessions = self._sessions.get(session.tenant)
        if sessions is not None:
            sessions.discard(session)
            if not sessions:
                del self._sessions[session.tenant]

    def _received(self, tenant: str, data: bytes) -> None:
        """A message of a writer, for the sessions of `tenant` here."""
        if data.startswith(b"["):
            # Decoded rows, as a writer of the previous release publishes them (an upgrade
            # rolls through the processes one at a time).
            entries = row_entries(orjson.loads(data))
            for session in tuple(self._sessions.get(tenant, ())):
                session.offer(entries)
            return
        received = message_batch(tenant, data)
        if isinstance(received, int):  # lines a writer shed
            for session in tuple(self._sessions.get(tenant, ())):
                session.missed(received)
        else:
            self._local.put(received)

    async def _listen(self) -> None:
        assert self._redis is not None
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.psubscribe(self._prefix + "*")
                self._subscribed.set()
                async for item in pubsub.listen():
                    if item.get("type") != "pmessage":
                        continue
                    tenant = item["channel"].decode().removeprefix(self._prefix)
                    if tenant not in self._sessions:
                        continue
                    self._received(tenant, item["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis went away: sessions stay open, we retry
                log.warning("logs_tail_listener_failed", error=str(exc)[:200])
                self._subscribed.set()
                await asyncio.sleep(1)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _keep_watching(self) -> None:
        assert self._redis is not None
        while True:
            await asyncio.sleep(WATCH_SECONDS / 3)
            for tenant in tuple(self._sessions):
                with contextlib.suppress(RedisError):
                    await self._redis.set(self._watch_key(tenant), 1, ex=WATCH_SECONDS)
