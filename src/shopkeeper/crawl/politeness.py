"""Politeness rules that do not live in the frontier: robots.txt, Retry-After, backoff, and what
to do with each fetch's outcome.

The frontier enforces the per-host gap and in-flight limit; this module decides the inputs to
it: a host's Crawl-delay, when a host is paused and why, when a URL comes back and whether that
costs it an attempt. Everything here but `RobotsCache` is pure, so the worker loop is a thin
`match` over the values these functions return.

robots.txt (RFC 9309 and API.md): 2xx rules apply, matched on the user agent's product token;
4xx (but 429) means allow all; 5xx, 429 or no answer means nothing is fetched from the host until
robots.txt answers, asked again after a growing backoff (or the server's Retry-After). A
Crawl-delay over 30 s skips the host.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from protego import Protego
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from shopkeeper.core.db import Database
from shopkeeper.crawl.fetch import FetchError, FetchResult
from shopkeeper.crawl.robots_models import CrawlRobots

ROBOTS_TTL_S = 24 * 3600
MAX_CRAWL_DELAY_MS = 30_000
RETRY_AFTER_CAP_S = 3600.0
ROBOTS_MAX_BYTES = 500 * 1024
"""RFC 9309 section 2.5: crawlers parse at least the first 500 KiB; we keep that much."""
THROTTLE_PAUSE_S = 60.0
"""How long a host answering 429 without Retry-After is left alone."""
ROBOTS_BACKOFF_BASE_S = 1.0
ROBOTS_BACKOFF_CAP_S = 600.0

# Outcomes that will not improve by asking again: the page is `failed` at once.
_FINAL_ERRORS = frozenset(
    {
        FetchError.PRIVATE_ADDRESS,
        FetchError.INVALID_URL,
        FetchError.REDIRECT_OUT_OF_SCOPE,
        FetchError.TOO_MANY_REDIRECTS,
        FetchError.TOO_LARGE,
    }
)


def product_token(user_agent: str) -> str:
    """`shopkeeper-crawler/1.0 (+https://...)` -> `shopkeeper-crawler` (RFC 9309 section 2.2.1)."""
    return user_agent.split("/", 1)[0].split(" ", 1)[0].strip() or user_agent


# --- robots.txt -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RobotsEntry:
    host: str
    status: int | None
    """robots.txt's HTTP status; None when it did not answer."""
    body: str
    fetched_at: float
    expires_at: float
    crawl_delay_ms: int | None
    failures: int
    """Consecutive unanswered fetches; grows the wait before the next one."""
    error: str | None

    @property
    def usable(self) -> bool:
        """Rules are known: robots.txt answered 2xx, or 4xx other than 429 (allow all)."""
        return self.status is not None and self.status < 500 and self.status != 429

    def allows(self, url: str, user_agent: str) -> bool:
        if not self.usable:
            return False
        if not (200 <= (self.status or 0) < 300):
            return True
        return bool(_parse(self.body).can_fetch(url, product_token(user_agent)))


@lru_cache(maxsize=1024)
def _parse(body: str) -> Protego:
    return Protego.parse(body)


def robots_entry(
    host: str,
    result: FetchResult,
    *,
    user_agent: str,
    now: float,
    previous: RobotsEntry | None = None,
    ttl_s: float = ROBOTS_TTL_S,
    rng: random.Random | None = None,
) -> RobotsEntry:
    """The cache row for a robots.txt fetch of `host`; `previous` is the stored row, expired or
    not (`RobotsCache.latest`), whose failure count grows the wait after another failure."""
    status = result.status
    if result.error is None and status is not None and 200 <= status < 300:
        body = result.body[:ROBOTS_MAX_BYTES].decode("utf-8", errors="replace")
        delay = _parse(body).crawl_delay(product_token(user_agent))
        return RobotsEntry(
            host=host,
            status=status,
            body=body,
            fetched_at=now,
            expires_at=now + ttl_s,
            crawl_delay_ms=None if delay is None else round(float(delay) * 1000),
            failures=0,
            error=None,
        )
    unavailable = result.error in {FetchError.TIMEOUT, FetchError.CONNECTION} or (
        status is not None and (status >= 500 or status == 429)
    )
    if not unavailable:
        # 4xx, or a robots.txt we will never be able to read (redirect loop, refused address,
        # too large): RFC 9309 treats these as "unavailable", which means allow all. A page of
        # a host on a refused address still fails at its own fetch.
        return RobotsEntry(
            host=host,
            status=status if status is not None and status < 500 else 404,
            body="",
            fetched_at=now,
            expires_at=now + ttl_s,
            crawl_delay_ms=None,
            failures=0,
            error=None if result.error is None else f"{result.error}: {result.detail}",
        )
    failures = (previous.failures if previous is not None else 0) + 1
    wait = None
    if status in {429, 503}:
        wait = parse_retry_after(result.headers.get("retry-after"), now=now)
    if wait is None:
        wait = backoff_s(
            failures - 1, base_s=ROBOTS_BACKOFF_BASE_S, cap_s=ROBOTS_BACKOFF_CAP_S, rng=rng
        )
    reason = f"robots.txt {status}" if status is not None else f"robots.txt {result.error}"
    return RobotsEntry(
        host=host,
        status=status,
        body="",
        fetched_at=now,
        expires_at=now + wait,
        crawl_delay_ms=None,
        failures=failures,
        error=reason,
    )


@dataclass(frozen=True, slots=True)
class RobotsAllow:
    delay_ms: int | None
    """robots.txt Crawl-delay to fold into the host's policy (None: it sets none)."""


@dataclass(frozen=True, slots=True)
class RobotsDeny:
    """The page is `robots_denied`; nothing is fetched."""


@dataclass(frozen=True, slots=True)
class RobotsSkipHost:
    reason: str
    """Every URL of the host is `dead` with this error; the host's row shows it."""


@dataclass(frozen=True, slots=True)
class RobotsUnavailable:
    until: float
    reason: str
    """pause_host(host, until, reason), and the URL back without spending an attempt."""


RobotsVerdict = RobotsAllow | RobotsDeny | RobotsSkipHost | RobotsUnavailable


def robots_verdict(entry: RobotsEntry, url: str, user_agent: str, *, now: float) -> RobotsVerdict:
    if not entry.usable:
        return RobotsUnavailable(
            until=max(entry.expires_at, now), reason=entry.error or "robots.txt unavailable"
        )
    if entry.crawl_delay_ms is not None and entry.crawl_delay_ms > MAX_CRAWL_DELAY_MS:
        seconds = entry.crawl_delay_ms / 1000
        return RobotsSkipHost(reason=f"crawl-delay over 30 s (robots.txt asks {seconds:g} s)")
    if not entry.allows(url, user_agent):
        return RobotsDeny()
    return RobotsAllow(delay_ms=entry.crawl_delay_ms)


class RobotsCache:
    """The `crawl_robots` table, with a per-process memo of rows until they expire (the worker
    asks for every URL it leases; rows only change when they expire)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._memo: dict[str, RobotsEntry] = {}

    async def get(self, host: str, *, now: float) -> RobotsEntry | None:
        """The host's entry, or None when there is none or it expired (fetch robots.txt)."""
        entry = self._memo.get(host)
        if entry is None or entry.expires_at <= now:
            entry = await self._load(host)
            if entry is None:
                return None
            self._memo[host] = entry
        return entry if entry.expires_at > now else None

    async def latest(self, host: str) -> RobotsEntry | None:
        """The stored entry, expired or not (its failure count carries into the next one)."""
        return await self._load(host)

    async def put(self, entry: RobotsEntry) -> None:
        values = {
            "host": entry.host,
            "status": entry.status,
            "body": entry.body,
            "fetched_at": entry.fetched_at,
            "expires_at": entry.expires_at,
            "crawl_delay_ms": entry.crawl_delay_ms,
            "failures": entry.failures,
            "error": None if entry.error is None else entry.error[:500],
        }
        insert = (postgresql.insert if not self._db.is_sqlite else sqlite.insert)(CrawlRobots)
        statement = insert.values(values).on_conflict_do_update(
            index_elements=["host"], set_={k: v for k, v in values.items() if k != "host"}
        )
        async with self._db.session() as session:
            await session.execute(statement)
            await session.commit()
        self._memo[entry.host] = entry

    async def many(self, hosts: Sequence[str]) -> dict[str, RobotsEntry]:
        """Stored entries of these hosts, expired ones included (for the hosts listing)."""
        if not hosts:
            return {}
        async with self._db.session() as session:
            rows = await session.scalars(select(CrawlRobots).where(CrawlRobots.host.in_(hosts)))
            return {row.host: _entry(row) for row in rows}

    async def _load(self, host: str) -> RobotsEntry | None:
        async with self._db.session() as session:
            row = await session.get(CrawlRobots, host)
            return None if row is None else _entry(row)


def _entry(row: CrawlRobots) -> RobotsEntry:
    return RobotsEntry(
        host=row.host,
        status=row.status,
        body=row.body,
        fetched_at=row.fetched_at,
        expires_at=row.expires_at,
        crawl_delay_ms=row.crawl_delay_ms,
        failures=row.failures,
        error=row.error,
    )


# --- Retry-After and backoff ------------------------------------------------------------------


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from `now`: delta-seconds or an HTTP date (RFC 9110 section 10.2.3),
    capped at one hour; None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), RETRY_AFTER_CAP_S)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return min(max(when.timestamp() - now, 0.0), RETRY_AFTER_CAP_S)


def backoff_s(
    attempts: int,
    *,
    base_s: float = 2.0,
    cap_s: float = 300.0,
    rng: random.Random | None = None,
) -> float:
    """`base * 2^attempts` capped, drawn uniformly from its upper half: retries of many URLs
    that failed together spread out instead of returning together ("equal jitter")."""
    ceiling = min(cap_s, base_s * (2 ** min(attempts, 30)))
    return (rng or random).uniform(ceiling / 2, ceiling)


# --- what to do with a fetch ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Complete:
    state: Literal["fetched", "failed", "dead"]
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Retry:
    not_before: float
    spend_attempt: bool
    error: str


@dataclass(frozen=True, slots=True)
class PauseHost:
    """pause_host(host, until, reason) for all crawls, and this URL back at `until` without
    spending an attempt."""

    until: float
    reason: str


Decision = Complete | Retry | PauseHost


def decide(
    outcome: FetchResult,
    attempts: int,
    max_attempts: int,
    *,
    now: float | None = None,
    rng: random.Random | None = None,
    retry_base_s: float = 2.0,
    retry_max_s: float = 300.0,
) -> Decision:
    """What becomes of a leased URL after its fetch. `attempts` were spent before this one."""
    now = time.time() if now is None else now
    status = outcome.status
    if outcome.error in _FINAL_ERRORS:
        return Complete("failed", f"{outcome.error}: {outcome.detail}")
    if outcome.error is not None:
        error = f"{outcome.error}: {outcome.detail}"
    elif status == 429 or status == 503:
        wait = parse_retry_after(outcome.headers.get("retry-after"), now=now)
        if status == 429 or wait is not None:
            if wait is None:
                # A 429 without Retry-After spends no attempt, so a backoff on attempts would
                # never grow: wait long enough for a rate limiter's window to pass instead.
                wait = min(THROTTLE_PAUSE_S, retry_max_s)
            return PauseHost(until=now + wait, reason=f"HTTP {status}, retry after {wait:g} s")
        error = f"HTTP {status}"
    elif status is not None and (status >= 500 or status == 408):
        error = f"HTTP {status}"
    elif status is not None and status < 400:
        return Complete("fetched")
    else:
        return Complete("failed", f"HTTP {status}")
    if attempts + 1 >= max_attempts:
        return Complete("dead", error)
    delay = backoff_s(attempts, base_s=retry_base_s, cap_s=retry_max_s, rng=rng)
    return Retry(not_before=now + delay, spend_attempt=True, error=error)
