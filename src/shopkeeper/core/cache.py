"""Two-level cache of pre-serialized bytes: an in-process L1 and, when `redis_url` is set, a
shared Redis L2. Entries carry tags; `invalidate(tags)` reaches every process before it returns.

How a write stays visible to the next read on any process:

- L2 entries remember the generation of each of their tags; invalidation increments the
  generations, so an entry written before it no longer matches and reads as a miss.
- Every fill (L1 and L2) is dropped when any invalidation happened while it was loading, so a
  slow reader cannot put back what a writer just removed.
- Invalidation is published on a Redis channel; each process drops its L1 entries and
  acknowledges. `invalidate` waits (bounded) for as many acknowledgements as there were
  subscribers, so when the write's response leaves, no process still holds the stale bytes.
- A process that loses its subscription stops using L1 until it has resubscribed and cleared it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any

import structlog

from shopkeeper.core.jsonutil import dumps, loads

log = structlog.get_logger(__name__)

Loader = Callable[[], Awaitable[tuple[bytes, Collection[str]]]]
"""Produces the bytes to cache and the tags that invalidate them."""

_GET = """
local epoch = redis.call('GET', ARGV[1]) or '0'
local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then return {epoch} end
local body, etag
local tags = {}
for i = 1, #h, 2 do
  local f, v = h[i], h[i + 1]
  if f == 'b' then body = v
  elseif f == 'e' then etag = v
  else
    local tag = string.sub(f, 3)
    if (redis.call('GET', ARGV[2] .. tag) or '0') ~= v then return {epoch} end
    table.insert(tags, tag)
  end
end
local out = {epoch, body, etag}
for _, tag in ipairs(tags) do table.insert(out, tag) end
return out
"""

_SET = """
if (redis.call('GET', ARGV[1]) or '0') ~= ARGV[3] then return 0 end
redis.call('DEL', KEYS[1])
local fields = {'b', ARGV[5], 'e', ARGV[6]}
for i = 7, #ARGV do
  table.insert(fields, 't:' .. ARGV[i])
  table.insert(fields, redis.call('GET', ARGV[2] .. ARGV[i]) or '0')
end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""

_INVALIDATE = """
for i = 6, #ARGV do
  redis.call('INCR', ARGV[2] .. ARGV[i])
  redis.call('EXPIRE', ARGV[2] .. ARGV[i], ARGV[5])
end
redis.call('INCR', ARGV[1])
return redis.call('PUBLISH', ARGV[3], ARGV[4])
"""


@dataclass(frozen=True, slots=True)
class CacheEntry:
    body: bytes
    etag: str
    tags: frozenset[str]
    expires_at: float


def cache_namespace(database_url: str) -> str:
    """Processes serving one database share a namespace; other shops (or test databases) on the
    same Redis never read each other's entries."""
    return "shopkeeper:cache:" + hashlib.sha256(database_url.encode()).hexdigest()[:12]


def etag_for(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


class Cache:
    """See the module docstring. Without `redis_url` it is L1 only (one process)."""

    def __init__(
        self,
        *,
        redis_url: str | None = None,
        ttl_seconds: float = 300,
        max_entries: int = 20_000,
        max_bytes: int = 64 * 1024 * 1024,
        namespace: str = "shopkeeper:cache",
        ack_timeout: float = 2.0,
    ) -> None:
        self.redis_url = redis_url
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._bytes = 0
        self.ack_timeout = ack_timeout
        self._ns = namespace
        self._entries: OrderedDict[str, CacheEntry] = OrderedDict()
        self._by_tag: dict[str, set[str]] = {}
        self._epoch = 0
        self._redis: Any = None
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._acks: dict[str, tuple[int, list[int], asyncio.Event]] = {}
        self._scripts: dict[str, Any] = {}

    @property
    def shared(self) -> bool:
        return self.redis_url is not None

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.redis_url is None or self._listener is not None:
            return
        import redis.asyncio as redis

        self._redis = redis.from_url(self.redis_url)
        self._scripts = {
            name: self._redis.register_script(source)
            for name, source in (("get", _GET), ("set", _SET), ("invalidate", _INVALIDATE))
        }
        self._listener = asyncio.create_task(self._listen(), name="cache-invalidation-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), timeout=5)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    # --- reads ----------------------------------------------------------------------------------

    def peek(self, key: str) -> CacheEntry | None:
        """The L1 entry for `key`, if fresh; synchronous so the response-cache middleware can
        answer without awaiting anything."""
        if self.shared and not self._subscribed.is_set():
            return None
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at < time.monotonic():
            self._drop(key)
            return None
        return entry

    async def get_or_load(self, key: str, load: Loader, *, shared: bool = True) -> CacheEntry:
        """The entry for `key`: from L1, else L2, else `load()` (stored in both). With
        `shared=False` L2 is skipped both ways: for long-tailed keys (search URLs) that are
        rarely read twice, whose two Redis round trips per miss cost more than they save.
        Invalidation still reaches the entry in every process's L1."""
        entry = self.peek(key)
        if entry is not None:
            return entry
        if self.redis_url is not None and self._listener is None:
            await self.start()
        local_epoch = self._epoch
        shared_epoch = "0"
        redis = self._redis if shared else None
        if redis is not None:
            try:
                found = await self._scripts["get"](
                    keys=[self._key(key)], args=[self._epoch_key, self._gen_prefix]
                )
                shared_epoch = found[0].decode()
                if len(found) >= 3:
                    entry = self._make_entry(
                        found[1], found[2].decode(), (t.decode() for t in found[3:])
                    )
                    self._store_local(key, entry, local_epoch)
                    return entry
            except Exception as exc:  # Redis down: serve from the database
                log.warning("cache_l2_unavailable", error=str(exc))
        body, tags = await load()
        entry = self._make_entry(body, etag_for(body), tags)
        if redis is not None:
            try:
                await self._scripts["set"](
                    keys=[self._key(key)],
                    args=[
                        self._epoch_key,
                        self._gen_prefix,
                        shared_epoch,
                        max(1, int(self.ttl_seconds)),
                        body,
                        entry.etag,
                        *sorted(entry.tags),
                    ],
                )
            except Exception as exc:
                log.warning("cache_l2_unavailable", error=str(exc))
        self._store_local(key, entry, local_epoch)
        return entry

    # --- invalidation ---------------------------------------------------------------------------

    async def invalidate(self, tags: Collection[str]) -> None:
        """Drop every entry carrying any of `tags`, here and (with Redis) in every process."""
        tags = sorted(set(tags))
        if not tags:
            return
        self._invalidate_local(tags)
        if self.redis_url is not None and self._listener is None:
            # A worker process that never served a read still has to tell the servers.
            await self.start()
        if self._redis is None:
            return
        message_id = uuid.uuid4().hex
        done = asyncio.Event()
        received: list[int] = [0]
        self._acks[message_id] = (0, received, done)
        try:
            receivers = await self._scripts["invalidate"](
                args=[
                    self._epoch_key,
                    self._gen_prefix,
                    self._channel,
                    dumps({"id": message_id, "tags": tags}),
                    max(2, int(self.ttl_seconds * 2)),
                    *tags,
                ]
            )
            self._acks[message_id] = (int(receivers), received, done)
            if received[0] >= int(receivers):
                return
            await asyncio.wait_for(done.wait(), timeout=self.ack_timeout)
        except TimeoutError:
            log.warning("cache_invalidation_unacknowledged", tags=tags)
        except Exception as exc:
            log.error("cache_invalidation_failed", tags=tags, error=str(exc))
        finally:
            self._acks.pop(message_id, None)

    def clear_local(self) -> None:
        self._epoch += 1
        self._entries.clear()
        self._by_tag.clear()
        self._bytes = 0

    # --- internals ------------------------------------------------------------------------------

    @property
    def _channel(self) -> str:
        return f"{self._ns}:invalidations"

    @property
    def _ack_channel(self) -> str:
        return f"{self._ns}:acks"

    @property
    def _epoch_key(self) -> str:
        return f"{self._ns}:epoch"

    @property
    def _gen_prefix(self) -> str:
        return f"{self._ns}:gen:"

    def _key(self, key: str) -> str:
        return f"{self._ns}:entry:{key}"

    def _make_entry(self, body: bytes, etag: str, tags: Any) -> CacheEntry:
        return CacheEntry(
            body=body,
            etag=etag,
            tags=frozenset(tags),
            expires_at=time.monotonic() + self.ttl_seconds,
        )

    def _store_local(self, key: str, entry: CacheEntry, epoch_at_start: int) -> None:
        if epoch_at_start != self._epoch:
            return  # an invalidation ran while this was loading: the bytes may be stale
        if self.shared and not self._subscribed.is_set():
            return
        self._drop(key)
        self._entries[key] = entry
        self._bytes += len(entry.body)
        for tag in entry.tags:
            self._by_tag.setdefault(tag, set()).add(key)
        # Oldest first, until both bounds hold: entries vary from bytes to hundreds of KiB.
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self._bytes -= len(entry.body)
        for tag in entry.tags:
            keys = self._by_tag.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_tag[tag]

    def _invalidate_local(self, tags: Collection[str]) -> None:
        self._epoch += 1
        for tag in tags:
            for key in list(self._by_tag.get(tag, ())):
                self._drop(key)

    async def _listen(self) -> None:
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._channel, self._ack_channel)
                # Anything published while we were not listening is lost: start from empty.
                self.clear_local()
                self._subscribed.set()
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    await self._on_message(message["channel"].decode(), message["data"])
            except asyncio.CancelledError:
                self._subscribed.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                raise
            except Exception as exc:
                self._subscribed.clear()
                self.clear_local()
                log.warning("cache_subscription_lost", error=str(exc))
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                await asyncio.sleep(0.5)

    async def _on_message(self, channel: str, data: bytes) -> None:
        if channel == self._channel:
            message = loads(data)
            self._invalidate_local(message["tags"])
            try:
                await self._redis.publish(self._ack_channel, message["id"])
            except Exception as exc:
                log.warning("cache_ack_failed", error=str(exc))
            return
        pending = self._acks.get(data.decode())
        if pending is None:
            return
        expected, received, done = pending
        received[0] += 1
        if expected and received[0] >= expected:
            done.set()
