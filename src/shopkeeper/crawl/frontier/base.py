"""The frontier's interface, shared by the SQL (SQLite, PostgreSQL) and Redis adapters.

Times are epoch seconds on the frontier's own clock (PostgreSQL `clock_timestamp()`, Redis
`TIME`; SQLite, being in-process, the local clock), so workers on many machines agree on them:
use `Frontier.now()` to compute `not_before` and `until` values rather than the worker's clock.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

DEFAULT_POLICY_DELAY_MS = 1000
DEFAULT_POLICY_MAX_INFLIGHT = 1


@dataclass(frozen=True, slots=True)
class NewURL:
    url: str
    """Canonical URL."""
    fingerprint: int
    """Signed 64-bit fingerprint of the canonical URL: the dedup key within a crawl."""
    host: str
    """Authority with an explicit port: "127.0.0.2:8080", "example.com:443"."""
    depth: int


@dataclass(frozen=True, slots=True)
class HostPolicy:
    delay_ms: int
    """Minimum gap between request starts on the host (already the larger of the crawl's delay
    and robots.txt Crawl-delay)."""
    max_inflight: int


@dataclass(frozen=True, slots=True)
class Lease:
    crawl_id: uuid.UUID
    url: str
    fingerprint: int
    host: str
    depth: int
    attempts: int
    """Attempts already spent before this lease."""
    token: str
    """Identifies this lease: once the URL is reaped (and maybe leased again) the token is stale
    and `complete`/`retry`/`renew` with it do nothing and answer False."""
    expires_at: float


@dataclass(frozen=True, slots=True)
class HostState:
    host: str
    delay_ms: int
    """Effective delay: the largest among the active crawls having the host."""
    max_inflight: int
    """Effective limit: the smallest among the active crawls having the host."""
    in_flight: int
    next_start_at: float
    paused_until: float | None
    reason: str | None
    queued: int
    """This crawl's URLs of the host waiting in the frontier."""


@dataclass(frozen=True, slots=True)
class FrontierCounts:
    seen: int
    """Distinct URLs ever added to the crawl."""
    queued: int
    """Waiting, including those held back by a retry's `not_before`."""
    in_flight: int
    done: int


class Frontier(Protocol):
    async def now(self) -> float:
        """The frontier's clock (epoch seconds)."""
        ...

    async def add(self, crawl_id: uuid.UUID, urls: Sequence[NewURL]) -> int:
        """Queue the URLs not seen before in this crawl (exact dedup on fingerprint); return how
        many were new."""
        ...

    async def set_host_policy(self, crawl_id: uuid.UUID, host: str, policy: HostPolicy) -> None:
        """This crawl's policy for the host. The host's effective policy is the largest delay and
        the smallest in-flight limit among the active crawls having one."""
        ...

    async def set_crawl_active(self, crawl_id: uuid.UUID, active: bool) -> None:
        """Only active crawls' URLs are leased (a new crawl is inactive until activated)."""
        ...

    async def lease(
        self,
        *,
        worker: str,
        limit: int,
        lease_seconds: float,
        crawl_id: uuid.UUID | None = None,
    ) -> list[Lease]:
        """Up to `limit` URLs of active crawls, due (`not_before` passed), on ready hosts (not
        paused, below their in-flight limit, start slot reached). Each lease reserves its host's
        start slot (`next_start_at = now + delay`, `in_flight += 1`) atomically; one URL per
        host per call unless the host's delay is 0. Global across workers and crawls.

        `crawl_id`: that crawl's URLs only, active or not. A crawl kept inactive is leased by
        its own client alone (a Scrapy process, `crawl.scrapy`), under the same host slots."""
        ...

    async def complete(self, leases: Sequence[Lease]) -> list[bool]:
        """The URLs are done (their outcome is recorded elsewhere); frees their hosts' slots."""
        ...

    async def retry(self, lease: Lease, *, not_before: float, spend_attempt: bool) -> bool:
        """Back to the queue, not leased before `not_before`; frees the host's slot."""
        ...

    async def renew(self, leases: Sequence[Lease], lease_seconds: float) -> list[bool]:
        """Extend live leases to now + `lease_seconds` (long fetches)."""
        ...

    async def reap(self) -> int:
        """Expired leases back to the queue, spending an attempt (a URL that crashes its
        workers must end up dead); return how many."""
        ...

    async def pause_host(self, host: str, until: float, reason: str) -> None:
        """No request starts on the host before `until`, for every crawl (Retry-After, robots.txt
        answering 5xx). A later pause never shortens an earlier one."""
        ...

    async def hosts(self, crawl_id: uuid.UUID) -> list[HostState]:
        """The hosts this crawl has URLs or a policy for."""
        ...

    async def counts(self, crawl_id: uuid.UUID) -> FrontierCounts: ...

    async def discard_host(self, crawl_id: uuid.UUID, host: str) -> list[NewURL]:
        """Take this crawl's queued URLs of the host out of the frontier (marked done) and return
        them, e.g. to record them dead when robots.txt asks for a Crawl-delay over 30 s."""
        ...

    async def drop_crawl(self, crawl_id: uuid.UUID) -> None:
        """Cancel: deactivate and forget queued URLs; the seen set stays until the crawl is
        deleted, outstanding leases still complete normally."""
        ...

    async def watch_work(self, wake: Callable[[], None]) -> None:
        """Call `wake()` whenever another process may have made work leasable (a host's queue
        went from empty to not, a crawl was activated), until cancelled. A hint only, so that
        idle workers need not poll often: a missed one costs latency, never a URL. Returns at
        once where there is no other process to hear from (SQLite)."""
        ...

    async def close(self) -> None:
        """Release what the adapter opened itself (not the database or Redis it was given)."""
        ...
