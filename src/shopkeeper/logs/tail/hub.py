"""The tail hub of a process: takes what the writer has just stored, decodes it once per batch
(only for tenants someone tails) and hands it to the matching sessions, here and, through
Redis pub/sub, in every other process.

The writer calls `stored` after each INSERT: it queues and returns, whatever the sessions do.
Past `OUTBOX_BYTES` of undelivered batches (Redis slow, a flood the decoder cannot keep up
with), new ones are not tailed and counted in `missed_batches`; storage and ingest are never
held up by a tail. The feed's own work (decoding, matching) is held to `CPU_SHARE` of the
event loop's time: after each chunk of lines it sleeps in proportion, so a flood of tailed lines
costs ingest at most that share and the rest of the flood is shed, not queued; a batch that
waited past `MAX_WAIT_SECONDS` is shed too. In one process the feed decodes only the lines some
session may match: each session's query gives byte strings its lines must hold (`needles`), and
one regex pass over a batch finds the lines holding them."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shopkeeper.core.settings import Settings
from shopkeeper.logs.query.pipeline import Entry
from shopkeeper.logs.store import Batch
from shopkeeper.logs.tail.decode import Row, line_rows
from shopkeeper.logs.tail.session import TailSession, row_entries

log = structlog.get_logger(__name__)

OUTBOX_BYTES = 4 * 1024 * 1024
CHUNK_LINES = 200
"""Lines decoded and offered between two pauses (ingest shares the event loop)."""
CPU_SHARE = 0.1
"""Of the event loop's time, the most the feed takes (issue 14: tails cost ingest <= 10%)."""
SLICE_SECONDS = 0.1
"""With other batches waiting, one batch is fed this long at most and the rest of it reported
dropped: in a flood the newer lines (a single line someone is waiting to see) go first."""
MAX_WAIT_SECONDS = 0.5
"""A stored batch still waiting for the feed after this long is shed (reported dropped): a
flooded feed keeps the lines it does deliver under a second late."""
WATCH_SECONDS = 30
"""A process tailing a tenant marks it watched in Redis for this long, renewed every third."""
WATCH_CACHE_SECONDS = 1.0
"""How long a publisher trusts its answer to "is this tenant watched anywhere?"."""


async def _yield_share(spent: float) -> None:
    """Gives the rest of the event loop (ingest) its share after `spent` seconds of tail work."""
    await asyncio.sleep(spent * (1 / CPU_SHARE - 1))


_ANY_ESCAPE = re.escape(b"\\u")
"""A `\\u` escape can spell any needle: a line holding one is always a candidate."""


@functools.lru_cache(maxsize=256)
def _scanner(needles: frozenset[bytes]) -> re.Pattern[bytes]:
    return re.compile(b"|".join([*map(re.escape, sorted(needles)), _ANY_ESCAPE]))


def candidate_lines(batch: Batch, sessions: Sequence[TailSession]) -> list[bytes]:
    """The lines of `batch` that may match one of `sessions`: those holding the longest needle
    of some session, found by one regex pass over the whole payload (in C), so a line no
    session can match costs next to nothing. All lines when a session has no needle (it may
    match anything) or when lines may not be what their bytes say."""
    payload = batch.payload
    if batch.extra_attributes or b"\r" in payload or not all(s.filter.needles for s in sessions):
        return payload.splitlines()
    scanner = _scanner(frozenset(s.filter.needles[0] for s in sessions))
    lines: list[bytes] = []
    position = 0
    while (found := scanner.search(payload, position)) is not None:
        start = payload.rfind(b"\n", 0, found.start()) + 1
        end = payload.find(b"\n", found.end())
        if end < 0:
            end = len(payload)
        lines.append(payload[start:end])
        position = end + 1
    return lines


@dataclass(frozen=True, slots=True)
class _Missed:
    tenant: str


class _Outbox:
    """A FIFO of stored batches (with the time each was queued) and shed notices, from which
    the oldest batch can also be taken out to make room."""

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

    def pop_oldest_batch(self) -> Batch | None:
        for index, item in enumerate(self._items):
            if not isinstance(item, _Missed):
                del self._items[index]
                return item[1]
        return None


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
        self.missed_batches = 0

    @property
    def distributed(self) -> bool:
        return self.settings.redis_url is not None

    async def start(self) -> None:
        if self.distributed:
            assert self.settings.redis_url is not None
            self._redis = Redis.from_url(self.settings.redis_url)
        self._tasks.append(asyncio.create_task(self._deliver_stored(), name="logs-tail-feed"))
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

    def stored(self, batches: Sequence[Batch]) -> None:
        """Hand over batches that have just been stored; never waits."""
        for batch in batches:
            if not self.distributed and batch.tenant not in self._sessions:
                continue
            # Full: the oldest waiting batches go first (live tail wants the newest lines).
            while self._outbox_bytes + len(batch.payload) > OUTBOX_BYTES:
                oldest = self._outbox.pop_oldest_batch()
                if oldest is None:
                    break
                self._outbox_bytes -= len(oldest.payload)
                self._shed(oldest)
            if self._outbox_bytes + len(batch.payload) > OUTBOX_BYTES:
                self._shed(batch)
                continue
            self._outbox_bytes += len(batch.payload)
            self._outbox.put_nowait((time.monotonic(), batch))

    def _shed(self, batch: Batch) -> None:
        """A batch the feed cannot take: its lines reach the sessions as dropped, unexamined."""
        self.missed_batches += 1
        log.info("logs_tail_missed_batch", tenant=batch.tenant, lines=batch.lines)
        if not self.distributed:
            for session in tuple(self._sessions.get(batch.tenant, ())):
                session.missed(batch.lines)
            return
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
                if self.distributed:
                    if await self._is_watched(batch.tenant):
                        await self._publish(batch)
                else:
                    await self._feed_local(batch, queued_at)
            except RedisError as exc:
                log.warning("logs_tail_publish_failed", error=str(exc)[:200])
            except Exception:  # a batch we cannot decode is not worth stopping the feed for
                log.exception("logs_tail_feed_failed", tenant=batch.tenant)
            finally:
                self._outbox_bytes -= len(batch.payload)

    async def _publish(self, batch: Batch) -> None:
        """Every line, decoded, to the other processes (their sessions' filters are theirs)."""
        assert self._redis is not None
        lines = batch.payload.splitlines()
        for first in range(0, len(lines), CHUNK_LINES):
            began = time.perf_counter()
            rows = line_rows(batch, lines[first : first + CHUNK_LINES])
            await self._redis.publish(self._prefix + batch.tenant, orjson.dumps(rows))
            await _yield_share(time.perf_counter() - began)

    async def _feed_local(self, batch: Batch, queued_at: float) -> None:
        """The lines some session of this process may match, decoded once and offered to the
        sessions whose needles they hold; the other lines are never decoded. Past
        `MAX_WAIT_SECONDS` the rest of the batch is reported dropped, not examined."""
        sessions = tuple(self._sessions.get(batch.tenant, ()))
        if not sessions:
            return
        began = time.perf_counter()
        fed_since = time.monotonic()
        lines = candidate_lines(batch, sessions)
        for first in range(0, len(lines), CHUNK_LINES):
            now = time.monotonic()
            late = now - queued_at > MAX_WAIT_SECONDS
            if first and (late or (now - fed_since > SLICE_SECONDS and self._outbox.qsize())):
                self.missed_batches += 1
                for session in sessions:
                    session.missed(len(lines) - first)
                return
            wanted: dict[TailSession, list[Entry]] = {}
            picked: list[bytes] = []
            wanting: list[list[TailSession]] = []
            for line in lines[first : first + CHUNK_LINES]:
                if line.strip() and (some := [s for s in sessions if s.filter.may_match(line)]):
                    picked.append(line)
                    wanting.append(some)
            for entry, some in zip(row_entries(line_rows(batch, picked)), wanting, strict=True):
                for session in some:
                    wanted.setdefault(session, []).append(entry)
            for session, entries in wanted.items():
                session.offer(entries)
            await _yield_share(time.perf_counter() - began)
            began = time.perf_counter()
        if not lines:
            await _yield_share(time.perf_counter() - began)

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

    def _offer(self, tenant: str, rows: list[Row]) -> None:
        entries = row_entries(rows)
        for session in tuple(self._sessions.get(tenant, ())):
            session.offer(entries)

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
                    message = orjson.loads(item["data"])
                    if isinstance(message, dict):  # {"missed": lines} shed by a writer
                        for session in tuple(self._sessions.get(tenant, ())):
                            session.missed(int(message.get("missed", 0)))
                    else:
                        self._offer(tenant, message)
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
