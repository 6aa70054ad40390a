"""The frontier in Redis: every change is one Lua script (atomic, loaded once, run by EVALSHA).

Key design (docs/crawl.md, "Frontier"): a crawl's keys share the hash tag `{crawl:<id>}`
(`<ns>:{crawl:<id>}:...`): seen-set buckets `s:<hhhh>` (integer sets of the fingerprints whose top
16 bits are hhhh: 8 bytes per URL plus the key), host queues `q:<host>`, delayed retries `d`,
counters `n`, hosts `hosts`. Politeness is global across crawls and lives under `<ns>:frontier:`:
each host's state `host:<host>`, the ready set `ready` (hosts with work and a free slot, scored by
when they may start), which crawls have work per host `hc:<host>`, per-crawl policies
`pol:<host>`, the active crawls, and the leases (`leases` token -> URL, `expiry` token -> time).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from shopkeeper.crawl.frontier.base import (
    FrontierCounts,
    HostPolicy,
    HostState,
    Lease,
    NewURL,
)

log = structlog.get_logger(__name__)

ADD_CHUNK = 2000
WATCH_RETRY_S = 1.0
REAP_BATCH = 1000
BUCKET_SHIFT = 48
"""A fingerprint's top 16 bits pick its seen-set bucket: 65,536 integer sets per crawl, each under
Redis's 512-entry integer-set limit (`set-max-intset-entries`) up to about 30 million URLs."""

_SCRIPTS = (
    "add",
    "lease",
    "complete",
    "retry",
    "renew",
    "reap",
    "policy",
    "activate",
    "pause",
    "hosts",
    "discard",
    "drop",
)


def _load_scripts() -> dict[str, str]:
    folder = resources.files("shopkeeper.crawl.frontier") / "lua"
    common = (folder / "common.lua").read_text()
    return {name: common + "\n" + (folder / f"{name}.lua").read_text() for name in _SCRIPTS}


_SOURCES = _load_scripts()


def bucket_of(fingerprint: int) -> str:
    return format((fingerprint >> BUCKET_SHIFT) & 0xFFFF, "04x")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entry(new: NewURL, attempts: int = 0) -> str:
    return f"{new.fingerprint}\t{new.depth}\t{attempts}\t{new.url}"


def _parse_entry(entry: str, host: str) -> tuple[NewURL, int]:
    fingerprint, depth, attempts, url = entry.split("\t", 3)
    return NewURL(url=url, fingerprint=int(fingerprint), host=host, depth=int(depth)), int(attempts)


class RedisFrontier:
    """The frontier on one Redis (standalone or Sentinel-managed); keys under `namespace`."""

    def __init__(self, client: Redis, *, namespace: str, owns_client: bool = False) -> None:
        self._client = client
        self._owns_client = owns_client
        self._namespace = namespace
        self._global = f"{namespace}:frontier"
        self._crawl_stem = f"{namespace}:{{crawl:"
        self._scripts: dict[str, AsyncScript] = {
            name: client.register_script(source) for name, source in _SOURCES.items()
        }

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    def crawl_key(self, crawl_id: uuid.UUID, suffix: str) -> str:
        return f"{self._crawl_stem}{crawl_id}}}:{suffix}"

    async def _run(self, name: str, *args: Any) -> Any:
        return await self._scripts[name](args=[self._global, self._crawl_stem, *args])

    async def now(self) -> float:
        seconds, micros = await self._client.time()
        return float(seconds) + float(micros) / 1_000_000

    async def add(self, crawl_id: uuid.UUID, urls: Sequence[NewURL]) -> int:
        added = 0
        for start in range(0, len(urls), ADD_CHUNK):
            args: list[Any] = [str(crawl_id)]
            for new in urls[start : start + ADD_CHUNK]:
                args += [bucket_of(new.fingerprint), new.fingerprint, new.host, _entry(new)]
            added += int(await self._run("add", *args))
        return added

    async def set_host_policy(self, crawl_id: uuid.UUID, host: str, policy: HostPolicy) -> None:
        await self._run("policy", str(crawl_id), host, policy.delay_ms, policy.max_inflight)

    async def set_crawl_active(self, crawl_id: uuid.UUID, active: bool) -> None:
        await self._run("activate", str(crawl_id), 1 if active else 0)

    async def lease(
        self,
        *,
        worker: str,
        limit: int,
        lease_seconds: float,
        crawl_id: uuid.UUID | None = None,
    ) -> list[Lease]:
        if limit <= 0:
            return []
        only = "" if crawl_id is None else str(crawl_id)
        reply = await self._run("lease", limit, repr(float(lease_seconds)), worker, only)
        expires = float(_text(reply[1]))
        leases: list[Lease] = []
        lines = _text(reply[2])
        if not lines:
            return leases
        for line in lines.split("\n"):
            crawl, token, host, fingerprint, depth, attempts, url = line.split("\t", 6)
            leases.append(
                Lease(
                    crawl_id=uuid.UUID(crawl),
                    url=url,
                    fingerprint=int(fingerprint),
                    host=host,
                    depth=int(depth),
                    attempts=int(attempts),
                    token=token,
                    expires_at=expires,
                )
            )
        return leases

    async def complete(self, leases: Sequence[Lease]) -> list[bool]:
        if not leases:
            return []
        reply = _text(await self._run("complete", ",".join(item.token for item in leases)))
        return [flag == "1" for flag in reply]

    async def retry(self, lease: Lease, *, not_before: float, spend_attempt: bool) -> bool:
        reply = await self._run(
            "retry", lease.token, repr(float(not_before)), 1 if spend_attempt else 0
        )
        return bool(reply)

    async def renew(self, leases: Sequence[Lease], lease_seconds: float) -> list[bool]:
        if not leases:
            return []
        reply = await self._run(
            "renew", repr(float(lease_seconds)), *(item.token for item in leases)
        )
        return [bool(value) for value in reply[1:]]

    async def reap(self) -> int:
        reaped = 0
        while True:
            count = int(await self._run("reap", REAP_BATCH))
            reaped += count
            if count < REAP_BATCH:
                return reaped

    async def pause_host(self, host: str, until: float, reason: str) -> None:
        await self._run("pause", host, repr(float(until)), reason)

    async def hosts(self, crawl_id: uuid.UUID) -> list[HostState]:
        reply = await self._run("hosts", str(crawl_id))
        now = float(_text(reply[0]))
        states = []
        for i in range(1, len(reply), 8):
            paused_until = float(_text(reply[i + 5]))
            paused = paused_until > now
            states.append(
                HostState(
                    host=_text(reply[i]),
                    delay_ms=int(_text(reply[i + 1])),
                    max_inflight=int(_text(reply[i + 2])),
                    in_flight=int(_text(reply[i + 3])),
                    next_start_at=float(_text(reply[i + 4])),
                    paused_until=paused_until if paused else None,
                    reason=(_text(reply[i + 6]) or None) if paused else None,
                    queued=int(reply[i + 7]),
                )
            )
        return sorted(states, key=lambda state: state.host)

    async def counts(self, crawl_id: uuid.UUID) -> FrontierCounts:
        values = await self._client.hmget(
            self.crawl_key(crawl_id, "n"), ["seen", "queued", "leased", "done"]
        )
        seen, queued, leased, done = (int(value or 0) for value in values)
        return FrontierCounts(seen=seen, queued=queued, in_flight=leased, done=done)

    async def discard_host(self, crawl_id: uuid.UUID, host: str) -> list[NewURL]:
        reply = await self._run("discard", str(crawl_id), host)
        return [_parse_entry(_text(entry), host)[0] for entry in reply]

    async def drop_crawl(self, crawl_id: uuid.UUID) -> None:
        await self._run("drop", str(crawl_id))

    async def watch_work(self, wake: Callable[[], None]) -> None:
        channel = f"{self._global}:work"
        while True:
            try:
                async with self._client.pubsub() as pubsub:
                    await pubsub.subscribe(channel)
                    # Whatever was added while not subscribed is found by the next lease.
                    wake()
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            wake()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("crawl_frontier_watch_failed", exc_info=True)
            await asyncio.sleep(WATCH_RETRY_S)

    async def delete_namespace(self) -> int:
        """Delete every key of this namespace (tests, benches); not for a shared production one."""
        deleted = 0
        async for key in self._client.scan_iter(match=f"{self._namespace}:*", count=1000):
            deleted += int(await self._client.unlink(key))
        return deleted
