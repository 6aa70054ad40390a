"""The frontier in the relational database: SQLite when embedded, PostgreSQL in production.

PostgreSQL: a lease is one statement. Ready hosts are locked `FOR UPDATE SKIP LOCKED` (two
leasers never reserve the same host's slot; neither waits for the other), their due URLs too,
and the same statement marks the URLs leased and moves each host's `next_start_at` and
`in_flight`. Statements that free slots (complete, retry, reap) lock host rows in host order, so
two of them cannot deadlock. SQLite: every write transaction holds the database's write lock
(`BEGIN IMMEDIATE`, see core.db), so the same conditional updates run one transaction at a time.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from shopkeeper.core.db import Database, affected_rows, table_of
from shopkeeper.crawl.frontier.base import (
    DEFAULT_POLICY_DELAY_MS,
    DEFAULT_POLICY_MAX_INFLIGHT,
    FrontierCounts,
    HostPolicy,
    HostState,
    Lease,
    NewURL,
)
from shopkeeper.crawl.frontier.models import (
    DONE,
    LEASED,
    QUEUED,
    CrawlHost,
    CrawlHostPolicy,
    CrawlURL,
    FrontierCrawl,
)

URLS = table_of(CrawlURL)
HOSTS = table_of(CrawlHost)
POLICIES = table_of(CrawlHostPolicy)
CRAWLS = table_of(FrontierCrawl)

INSERT_CHUNK = 1000
REAP_BATCH = 1000

_PG_NOW = text("SELECT extract(epoch FROM clock_timestamp())::float8")

# One statement reserves hosts and leases their URLs. Hosts are walked in `next_start_at` order
# through a partial index holding only hosts with queued URLs (`queued` counts them over all
# crawls), and locked as they are reached, so a call touches only the hosts it uses. The CASE: a
# host with a delay gives one URL per call (its next start is `delay` away), a host without one
# as many as its free slots. A host whose queued URLs are not leasable now (inactive crawls,
# retries not yet due) moves to the back of the order (`idle`), which changes no politeness:
# its next start was already due.
_PG_LEASE = text("""
WITH clock AS MATERIALIZED (SELECT extract(epoch FROM clock_timestamp())::float8 AS now),
active AS MATERIALIZED (SELECT crawl_id FROM crawl_frontier_crawls WHERE active),
ready AS (
    SELECT h.host, h.delay_ms, h.max_inflight - h.in_flight AS free
    FROM crawl_hosts h, clock
    WHERE h.queued > 0 AND h.next_start_at <= clock.now AND h.paused_until <= clock.now
      AND h.in_flight < h.max_inflight
    ORDER BY h.next_start_at
    LIMIT :limit
    FOR UPDATE OF h SKIP LOCKED
),
picked AS (
    SELECT r.host, p.crawl_id, p.fingerprint
    FROM ready r LEFT JOIN LATERAL (
        SELECT u.crawl_id, u.fingerprint FROM crawl_urls u, clock
        WHERE u.host = r.host AND u.state = 'queued' AND u.not_before <= clock.now
          AND u.crawl_id IN (SELECT crawl_id FROM active)
        ORDER BY u.not_before
        LIMIT CASE WHEN r.delay_ms = 0 THEN r.free ELSE 1 END
        FOR UPDATE OF u SKIP LOCKED
    ) p ON true
    LIMIT :limit
),
leased AS (
    UPDATE crawl_urls u
    SET state = 'leased', lease_token = gen_random_uuid()::text,
        lease_expires_at = clock.now + :lease_seconds, worker = :worker
    FROM picked p, clock
    WHERE p.fingerprint IS NOT NULL
      AND u.crawl_id = p.crawl_id AND u.fingerprint = p.fingerprint
    RETURNING u.crawl_id, u.url, u.fingerprint, u.host, u.depth, u.attempts,
              u.lease_token, u.lease_expires_at
),
per_host AS (SELECT host, count(*) AS n FROM leased GROUP BY host),
reserved AS (
    UPDATE crawl_hosts h
    SET in_flight = h.in_flight + per_host.n, queued = h.queued - per_host.n,
        next_start_at = clock.now + h.delay_ms / 1000.0
    FROM per_host, clock
    WHERE h.host = per_host.host
),
idle AS (
    UPDATE crawl_hosts h SET next_start_at = clock.now
    FROM picked p, clock
    WHERE p.fingerprint IS NULL AND h.host = p.host
)
SELECT * FROM leased
""")

# One crawl's URLs only, active or not: its hosts are those with a due URL of the crawl.
_PG_LEASE_CRAWL = text(
    _PG_LEASE.text.replace(
        "active AS MATERIALIZED (SELECT crawl_id FROM crawl_frontier_crawls WHERE active),",
        "active AS MATERIALIZED (SELECT CAST(:crawl_id AS uuid) AS crawl_id),",
    ).replace(
        "      AND h.in_flight < h.max_inflight\n",
        "      AND h.in_flight < h.max_inflight\n"
        "      AND EXISTS (SELECT 1 FROM crawl_urls q WHERE q.host = h.host\n"
        "                  AND q.crawl_id = CAST(:crawl_id AS uuid) AND q.state = 'queued'\n"
        "                  AND q.not_before <= clock.now)\n",
    )
)
assert _PG_LEASE_CRAWL.text.count(":crawl_id") == 2, "_PG_LEASE changed: update its one-crawl form"

# complete, retry and reap free their hosts' slots in the same statement, locking the host rows
# in host order first (two such statements could otherwise lock two hosts in opposite orders).
# A lease is found by primary key and token only (a token is set exactly while the URL is leased):
# a `state = 'leased'` condition would let the planner scan every leased URL through the partial
# index, once per URL of the batch, which it did with the prepared (generic) plan.
_PG_COMPLETE = text("""
WITH targets AS MATERIALIZED (
    SELECT u.crawl_id, u.fingerprint, t.token
    FROM unnest(CAST(:crawl_ids AS uuid[]), CAST(:fingerprints AS bigint[]),
                CAST(:tokens AS text[])) AS t(crawl_id, fingerprint, token)
    CROSS JOIN LATERAL (
        SELECT u.crawl_id, u.fingerprint FROM crawl_urls u
        WHERE u.crawl_id = t.crawl_id AND u.fingerprint = t.fingerprint
          AND u.lease_token = t.token
        FOR UPDATE
    ) u
),
changed AS (
    UPDATE crawl_urls u
    SET state = 'done', lease_token = NULL, lease_expires_at = NULL, worker = NULL
    FROM targets
    WHERE u.crawl_id = targets.crawl_id AND u.fingerprint = targets.fingerprint
    RETURNING u.host, targets.token
),
per_host AS (SELECT host, count(*) AS n FROM changed GROUP BY host),
locked AS (
    SELECT h.host FROM crawl_hosts h
    WHERE h.host IN (SELECT host FROM per_host) ORDER BY h.host FOR UPDATE
),
released AS (
    UPDATE crawl_hosts h SET in_flight = greatest(h.in_flight - per_host.n, 0)
    FROM per_host, locked WHERE h.host = per_host.host AND locked.host = per_host.host
)
SELECT token FROM changed
""")

_PG_RETRY = text("""
WITH changed AS (
    UPDATE crawl_urls u
    SET state = 'queued', lease_token = NULL, lease_expires_at = NULL, worker = NULL,
        attempts = u.attempts + :spent, not_before = :not_before
    WHERE u.crawl_id = :crawl_id AND u.fingerprint = :fingerprint AND u.lease_token = :token
    RETURNING u.host
),
per_host AS (SELECT host, count(*) AS n FROM changed GROUP BY host),
locked AS (
    SELECT h.host FROM crawl_hosts h
    WHERE h.host IN (SELECT host FROM per_host) ORDER BY h.host FOR UPDATE
),
released AS (
    UPDATE crawl_hosts h
    SET in_flight = greatest(h.in_flight - per_host.n, 0), queued = h.queued + per_host.n
    FROM per_host, locked WHERE h.host = per_host.host AND locked.host = per_host.host
)
SELECT count(*) FROM changed
""")

_PG_REAP = text("""
WITH clock AS MATERIALIZED (SELECT extract(epoch FROM clock_timestamp())::float8 AS now),
expired AS (
    SELECT u.crawl_id, u.fingerprint FROM crawl_urls u, clock
    WHERE u.state = 'leased' AND u.lease_expires_at <= clock.now
    ORDER BY u.lease_expires_at
    LIMIT :batch
    FOR UPDATE OF u SKIP LOCKED
),
changed AS (
    UPDATE crawl_urls u
    SET state = 'queued', lease_token = NULL, lease_expires_at = NULL, worker = NULL,
        attempts = u.attempts + 1, not_before = clock.now
    FROM expired e, clock
    WHERE u.crawl_id = e.crawl_id AND u.fingerprint = e.fingerprint
    RETURNING u.host
),
per_host AS (SELECT host, count(*) AS n FROM changed GROUP BY host),
locked AS (
    SELECT h.host FROM crawl_hosts h
    WHERE h.host IN (SELECT host FROM per_host) ORDER BY h.host FOR UPDATE
),
released AS (
    UPDATE crawl_hosts h
    SET in_flight = greatest(h.in_flight - per_host.n, 0), queued = h.queued + per_host.n
    FROM per_host, locked WHERE h.host = per_host.host AND locked.host = per_host.host
)
SELECT count(*) FROM changed
""")

_PG_RENEW = text("""
WITH targets AS MATERIALIZED (
    SELECT u.crawl_id, u.fingerprint, t.token
    FROM unnest(CAST(:crawl_ids AS uuid[]), CAST(:fingerprints AS bigint[]),
                CAST(:tokens AS text[])) AS t(crawl_id, fingerprint, token)
    CROSS JOIN LATERAL (
        SELECT u.crawl_id, u.fingerprint FROM crawl_urls u
        WHERE u.crawl_id = t.crawl_id AND u.fingerprint = t.fingerprint
          AND u.lease_token = t.token
        FOR UPDATE
    ) u
)
UPDATE crawl_urls u
SET lease_expires_at = extract(epoch FROM clock_timestamp())::float8 + :lease_seconds
FROM targets
WHERE u.crawl_id = targets.crawl_id AND u.fingerprint = targets.fingerprint
RETURNING targets.token
""")

# Adding on PostgreSQL binds whole arrays: one prepared statement whatever the batch size (a
# multi-row VALUES of a thousand rows is compiled and planned afresh every time: 1,700 URLs/s).
_PG_ENSURE_HOSTS = text("""
INSERT INTO crawl_hosts
    (host, delay_ms, max_inflight, in_flight, queued, next_start_at, paused_until)
SELECT host, :delay_ms, :max_inflight, 0, 0, 0, 0 FROM unnest(CAST(:hosts AS text[])) AS host
ON CONFLICT DO NOTHING
""")
_PG_ADD = text("""
INSERT INTO crawl_urls
    (crawl_id, fingerprint, url, host, depth, state, attempts, not_before)
SELECT :crawl_id, t.fingerprint, t.url, t.host, t.depth, 'queued', 0, 0
FROM unnest(CAST(:fingerprints AS bigint[]), CAST(:urls AS text[]), CAST(:hosts AS text[]),
            CAST(:depths AS integer[])) AS t(fingerprint, url, host, depth)
ON CONFLICT DO NOTHING
RETURNING host
""")
_PG_LOCK_HOSTS = text("""
SELECT host FROM crawl_hosts WHERE host = ANY(CAST(:hosts AS text[])) ORDER BY host FOR UPDATE
""")
_PG_COUNT_QUEUED = text("""
UPDATE crawl_hosts h SET queued = h.queued + t.n
FROM unnest(CAST(:hosts AS text[]), CAST(:counts AS integer[])) AS t(host, n)
WHERE h.host = t.host
""")

# The effective policy of the hosts a crawl has policies for: the largest delay and smallest
# in-flight limit among active crawls; unchanged when no active crawl has the host.
_RECOMPUTE = """
UPDATE crawl_hosts SET
    delay_ms = COALESCE((
        SELECT max(p.delay_ms) FROM crawl_host_policies p
        JOIN crawl_frontier_crawls c ON c.crawl_id = p.crawl_id
        WHERE c.active AND p.host = crawl_hosts.host), delay_ms),
    max_inflight = COALESCE((
        SELECT min(p.max_inflight) FROM crawl_host_policies p
        JOIN crawl_frontier_crawls c ON c.crawl_id = p.crawl_id
        WHERE c.active AND p.host = crawl_hosts.host), max_inflight)
WHERE host IN (SELECT host FROM crawl_host_policies WHERE crawl_id = :crawl_id)
"""
_LOCK_POLICY_HOSTS = """
SELECT host FROM crawl_hosts
WHERE host IN (SELECT host FROM crawl_host_policies WHERE crawl_id = :crawl_id)
ORDER BY host FOR UPDATE
"""


class SQLFrontier:
    """The frontier on the database of `Database` (tables from migration 0009)."""

    def __init__(self, db: Database, *, owns_database: bool = False) -> None:
        self._db = db
        self._owns_database = owns_database
        self._engine = db.engine
        # PostgreSQL's lease, complete, retry, renew and reap are single statements: run alone
        # (autocommit) they cost one round trip instead of BEGIN, statement, COMMIT.
        self._autocommit = db.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._postgres = not db.is_sqlite
        self._insert = pg_insert if self._postgres else sqlite_insert

    async def close(self) -> None:
        if self._owns_database:
            await self._db.dispose()

    async def now(self) -> float:
        if not self._postgres:
            return time.time()
        async with self._engine.connect() as connection:
            return float((await connection.execute(_PG_NOW)).scalar_one())

    def _crawl_param(self, crawl_id: uuid.UUID) -> Any:
        # Raw statements bind the column's stored form: a uuid for asyncpg, hex text for SQLite.
        return crawl_id if self._postgres else crawl_id.hex

    # --- adding URLs and policies -------------------------------------------------------------

    async def add(self, crawl_id: uuid.UUID, urls: Sequence[NewURL]) -> int:
        unique = {new.fingerprint: new for new in urls}
        if not unique:
            return 0
        # Sorted inserts: two concurrent adds of overlapping URLs wait for each other in one
        # order instead of deadlocking.
        ordered = [unique[fingerprint] for fingerprint in sorted(unique)]
        per_host: dict[str, int] = {}
        async with self._engine.begin() as connection:
            await self._ensure_hosts(connection, sorted({new.host for new in ordered}))
            inserted = self._insert_urls_pg if self._postgres else self._insert_urls_sqlite
            for host in await inserted(connection, crawl_id, ordered):
                per_host[host] = per_host.get(host, 0) + 1
            await self._count_queued(connection, per_host)
        return sum(per_host.values())

    async def _insert_urls_pg(
        self, connection: AsyncConnection, crawl_id: uuid.UUID, urls: Sequence[NewURL]
    ) -> list[str]:
        """The hosts of the URLs that were new."""
        params = {
            "crawl_id": crawl_id,
            "fingerprints": [new.fingerprint for new in urls],
            "urls": [new.url for new in urls],
            "hosts": [new.host for new in urls],
            "depths": [new.depth for new in urls],
        }
        return list((await connection.execute(_PG_ADD, params)).scalars())

    async def _insert_urls_sqlite(
        self, connection: AsyncConnection, crawl_id: uuid.UUID, urls: Sequence[NewURL]
    ) -> list[str]:
        hosts: list[str] = []
        for start in range(0, len(urls), INSERT_CHUNK):
            rows = [
                {
                    "crawl_id": crawl_id,
                    "fingerprint": new.fingerprint,
                    "url": new.url,
                    "host": new.host,
                    "depth": new.depth,
                    "state": QUEUED,
                    "attempts": 0,
                    "not_before": 0.0,
                }
                for new in urls[start : start + INSERT_CHUNK]
            ]
            statement = (
                sqlite_insert(URLS)
                .values(rows)
                .on_conflict_do_nothing(index_elements=["crawl_id", "fingerprint"])
                .returning(URLS.c.host)
            )
            hosts += (await connection.execute(statement)).scalars()
        return hosts

    async def _count_queued(self, connection: AsyncConnection, per_host: dict[str, int]) -> None:
        """Add to the hosts' queued counts (negative numbers take away)."""
        if not per_host:
            return
        hosts = sorted(per_host)
        if self._postgres:
            # Host rows in host order, as the statements that free slots lock them.
            await connection.execute(_PG_LOCK_HOSTS, {"hosts": hosts})
            counts = [per_host[host] for host in hosts]
            await connection.execute(_PG_COUNT_QUEUED, {"hosts": hosts, "counts": counts})
            return
        await connection.execute(
            update(HOSTS)
            .where(HOSTS.c.host == bindparam("b_host"))
            .values(queued=HOSTS.c.queued + bindparam("b_count")),
            [{"b_host": host, "b_count": per_host[host]} for host in hosts],
        )

    async def _ensure_hosts(
        self, connection: AsyncConnection, hosts: Iterable[str], policy: HostPolicy | None = None
    ) -> None:
        if self._postgres:
            await connection.execute(
                _PG_ENSURE_HOSTS,
                {
                    "hosts": list(hosts),
                    "delay_ms": policy.delay_ms if policy else DEFAULT_POLICY_DELAY_MS,
                    "max_inflight": (
                        policy.max_inflight if policy else DEFAULT_POLICY_MAX_INFLIGHT
                    ),
                },
            )
            return
        rows = [
            {
                "host": host,
                "delay_ms": policy.delay_ms if policy else DEFAULT_POLICY_DELAY_MS,
                "max_inflight": policy.max_inflight if policy else DEFAULT_POLICY_MAX_INFLIGHT,
                "in_flight": 0,
                "queued": 0,
                "next_start_at": 0.0,
                "paused_until": 0.0,
            }
            for host in hosts
        ]
        if rows:
            await connection.execute(
                self._insert(HOSTS).values(rows).on_conflict_do_nothing(index_elements=["host"])
            )

    async def set_host_policy(self, crawl_id: uuid.UUID, host: str, policy: HostPolicy) -> None:
        upsert = self._insert(POLICIES).values(
            crawl_id=crawl_id,
            host=host,
            delay_ms=policy.delay_ms,
            max_inflight=policy.max_inflight,
        )
        upsert = upsert.on_conflict_do_update(
            index_elements=["crawl_id", "host"],
            set_={"delay_ms": policy.delay_ms, "max_inflight": policy.max_inflight},
        )
        async with self._engine.begin() as connection:
            await self._ensure_hosts(connection, [host], policy)
            await connection.execute(upsert)
            await self._recompute(connection, crawl_id, only_host=host)

    async def set_crawl_active(self, crawl_id: uuid.UUID, active: bool) -> None:
        upsert = self._insert(CRAWLS).values(crawl_id=crawl_id, active=active)
        upsert = upsert.on_conflict_do_update(index_elements=["crawl_id"], set_={"active": active})
        async with self._engine.begin() as connection:
            await connection.execute(upsert)
            await self._recompute(connection, crawl_id)

    async def _recompute(
        self, connection: AsyncConnection, crawl_id: uuid.UUID, only_host: str | None = None
    ) -> None:
        # Both statements are plain constants; a single host narrows them with one more clause.
        narrow = " AND host = :host" if only_host is not None else ""
        params: dict[str, Any] = {"crawl_id": self._crawl_param(crawl_id)}
        if only_host is not None:
            params["host"] = only_host
        if self._postgres:
            # Host rows in host order, as the statements that free slots lock them.
            lock = _LOCK_POLICY_HOSTS.replace("ORDER BY", narrow + " ORDER BY")
            await connection.execute(text(lock), params)
        await connection.execute(text(_RECOMPUTE.rstrip() + narrow), params)

    # --- leases -----------------------------------------------------------------------------

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
        if self._postgres:
            params: dict[str, Any] = {
                "limit": limit,
                "lease_seconds": lease_seconds,
                "worker": worker,
            }
            if crawl_id is not None:
                params["crawl_id"] = crawl_id
            async with self._autocommit.connect() as connection:
                rows = (
                    await connection.execute(
                        _PG_LEASE if crawl_id is None else _PG_LEASE_CRAWL, params
                    )
                ).all()
            return [
                Lease(
                    crawl_id=row.crawl_id,
                    url=row.url,
                    fingerprint=row.fingerprint,
                    host=row.host,
                    depth=row.depth,
                    attempts=row.attempts,
                    token=row.lease_token,
                    expires_at=row.lease_expires_at,
                )
                for row in rows
            ]
        return await self._sqlite_lease(
            worker=worker, limit=limit, lease_seconds=lease_seconds, crawl_id=crawl_id
        )

    async def _sqlite_lease(
        self, *, worker: str, limit: int, lease_seconds: float, crawl_id: uuid.UUID | None
    ) -> list[Lease]:
        async with self._engine.begin() as connection:
            # The clock is read once the write lock is held: a time read while waiting for it
            # would reserve the host's next slot too early.
            return await self._sqlite_lease_locked(
                connection,
                now=time.time(),
                worker=worker,
                limit=limit,
                lease_seconds=lease_seconds,
                crawl_id=crawl_id,
            )

    async def _sqlite_lease_locked(
        self,
        connection: AsyncConnection,
        *,
        now: float,
        worker: str,
        limit: int,
        lease_seconds: float,
        crawl_id: uuid.UUID | None = None,
    ) -> list[Lease]:
        wanted_crawls: ColumnElement[bool]
        if crawl_id is None:
            wanted_crawls = URLS.c.crawl_id.in_(select(CRAWLS.c.crawl_id).where(CRAWLS.c.active))
        else:
            wanted_crawls = URLS.c.crawl_id == crawl_id
        due = and_(URLS.c.state == QUEUED, URLS.c.not_before <= now, wanted_crawls)
        ready = (
            select(HOSTS.c.host, HOSTS.c.delay_ms, HOSTS.c.max_inflight - HOSTS.c.in_flight)
            .where(
                HOSTS.c.queued > 0,
                HOSTS.c.next_start_at <= now,
                HOSTS.c.paused_until <= now,
                HOSTS.c.in_flight < HOSTS.c.max_inflight,
                select(URLS.c.fingerprint).where(due, URLS.c.host == HOSTS.c.host).exists(),
            )
            .order_by(HOSTS.c.next_start_at)
            .limit(limit)
        )
        mark = (
            update(URLS)
            .where(
                URLS.c.crawl_id == bindparam("b_crawl_id"),
                URLS.c.fingerprint == bindparam("b_fingerprint"),
                URLS.c.state == QUEUED,
            )
            .values(
                state=LEASED,
                lease_token=bindparam("b_token"),
                lease_expires_at=now + lease_seconds,
                worker=worker,
            )
        )
        leases: list[Lease] = []
        for host, delay_ms, free in (await connection.execute(ready)).all():
            wanted = min(free if delay_ms == 0 else 1, limit - len(leases))
            if wanted <= 0:
                break
            picked = (
                await connection.execute(
                    select(
                        URLS.c.crawl_id,
                        URLS.c.fingerprint,
                        URLS.c.url,
                        URLS.c.depth,
                        URLS.c.attempts,
                    )
                    .where(due, URLS.c.host == host)
                    .order_by(URLS.c.not_before)
                    .limit(wanted)
                )
            ).all()
            batch = [
                Lease(
                    crawl_id=row.crawl_id,
                    url=row.url,
                    fingerprint=row.fingerprint,
                    host=host,
                    depth=row.depth,
                    attempts=row.attempts,
                    token=secrets.token_hex(16),
                    expires_at=now + lease_seconds,
                )
                for row in picked
            ]
            if not batch:
                continue
            reserved = await connection.execute(
                update(HOSTS)
                .where(
                    HOSTS.c.host == host,
                    HOSTS.c.in_flight + len(batch) <= HOSTS.c.max_inflight,
                    HOSTS.c.next_start_at <= now,
                )
                .values(
                    in_flight=HOSTS.c.in_flight + len(batch),
                    queued=HOSTS.c.queued - len(batch),
                    next_start_at=now + HOSTS.c.delay_ms / 1000.0,
                )
            )
            if affected_rows(reserved) != 1:
                continue
            await connection.execute(
                mark,
                [
                    {
                        "b_crawl_id": item.crawl_id,
                        "b_fingerprint": item.fingerprint,
                        "b_token": item.token,
                    }
                    for item in batch
                ],
            )
            leases.extend(batch)
        return leases

    async def complete(self, leases: Sequence[Lease]) -> list[bool]:
        if not leases:
            return []
        if self._postgres:
            async with self._autocommit.connect() as connection:
                done = set(
                    (await connection.execute(_PG_COMPLETE, _lease_arrays(leases))).scalars()
                )
            return [item.token in done for item in leases]
        return await self._sqlite_release(leases, state=DONE)

    async def retry(self, lease: Lease, *, not_before: float, spend_attempt: bool) -> bool:
        if self._postgres:
            params = {
                "crawl_id": lease.crawl_id,
                "fingerprint": lease.fingerprint,
                "token": lease.token,
                "spent": 1 if spend_attempt else 0,
                "not_before": not_before,
            }
            async with self._autocommit.connect() as connection:
                return bool((await connection.execute(_PG_RETRY, params)).scalar_one())
        freed = await self._sqlite_release(
            [lease], state=QUEUED, not_before=not_before, spend_attempt=spend_attempt
        )
        return freed[0]

    async def _sqlite_release(
        self,
        leases: Sequence[Lease],
        *,
        state: str,
        not_before: float = 0.0,
        spend_attempt: bool = False,
    ) -> list[bool]:
        values: dict[str, Any] = {
            "state": state,
            "lease_token": None,
            "lease_expires_at": None,
            "worker": None,
        }
        if state == QUEUED:
            values["not_before"] = not_before
            values["attempts"] = URLS.c.attempts + (1 if spend_attempt else 0)
        outcome: list[bool] = []
        async with self._engine.begin() as connection:
            for item in leases:
                changed = await connection.execute(
                    update(URLS)
                    .where(
                        URLS.c.crawl_id == item.crawl_id,
                        URLS.c.fingerprint == item.fingerprint,
                        URLS.c.lease_token == item.token,
                        URLS.c.state == LEASED,
                    )
                    .values(**values)
                    .returning(URLS.c.host)
                )
                host = changed.scalar_one_or_none()
                if host is not None:
                    await connection.execute(_sqlite_release_slots(host, 1, state == QUEUED))
                outcome.append(host is not None)
        return outcome

    async def renew(self, leases: Sequence[Lease], lease_seconds: float) -> list[bool]:
        if not leases:
            return []
        if self._postgres:
            params = _lease_arrays(leases) | {"lease_seconds": lease_seconds}
            async with self._autocommit.connect() as connection:
                renewed = set((await connection.execute(_PG_RENEW, params)).scalars())
            return [item.token in renewed for item in leases]
        outcome: list[bool] = []
        async with self._engine.begin() as connection:
            expires = time.time() + lease_seconds
            for item in leases:
                changed = await connection.execute(
                    update(URLS)
                    .where(
                        URLS.c.crawl_id == item.crawl_id,
                        URLS.c.fingerprint == item.fingerprint,
                        URLS.c.lease_token == item.token,
                        URLS.c.state == LEASED,
                    )
                    .values(lease_expires_at=expires)
                    .returning(URLS.c.fingerprint)
                )
                outcome.append(changed.first() is not None)
        return outcome

    async def reap(self) -> int:
        if self._postgres:
            reaped = 0
            while True:
                async with self._autocommit.connect() as connection:
                    count = int(
                        (await connection.execute(_PG_REAP, {"batch": REAP_BATCH})).scalar_one()
                    )
                reaped += count
                if count < REAP_BATCH:
                    return reaped
        async with self._engine.begin() as connection:
            now = time.time()
            hosts = (
                await connection.execute(
                    update(URLS)
                    .where(URLS.c.state == LEASED, URLS.c.lease_expires_at <= now)
                    .values(
                        state=QUEUED,
                        lease_token=None,
                        lease_expires_at=None,
                        worker=None,
                        attempts=URLS.c.attempts + 1,
                        not_before=now,
                    )
                    .returning(URLS.c.host)
                )
            ).scalars()
            per_host: dict[str, int] = {}
            for host in hosts:
                per_host[host] = per_host.get(host, 0) + 1
            for host, count in per_host.items():
                await connection.execute(_sqlite_release_slots(host, count, True))
        return sum(per_host.values())

    # --- hosts ------------------------------------------------------------------------------

    async def pause_host(self, host: str, until: float, reason: str) -> None:
        latest = func.greatest if self._postgres else func.max
        async with self._engine.begin() as connection:
            await self._ensure_hosts(connection, [host])
            await connection.execute(
                update(HOSTS)
                .where(HOSTS.c.host == host, HOSTS.c.paused_until < until)
                .values(paused_until=latest(HOSTS.c.paused_until, until), reason=reason)
            )

    async def hosts(self, crawl_id: uuid.UUID) -> list[HostState]:
        queued = (
            select(func.count())
            .select_from(URLS)
            .where(
                URLS.c.crawl_id == crawl_id,
                URLS.c.host == HOSTS.c.host,
                URLS.c.state == QUEUED,
            )
            .scalar_subquery()
        )
        of_crawl = (
            select(POLICIES.c.host)
            .where(POLICIES.c.crawl_id == crawl_id)
            .union(select(URLS.c.host).where(URLS.c.crawl_id == crawl_id).distinct())
        )
        statement = (
            select(HOSTS, queued.label("crawl_queued"))
            .where(HOSTS.c.host.in_(of_crawl))
            .order_by(HOSTS.c.host)
        )
        now = await self.now()
        async with self._engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
        return [
            HostState(
                host=row.host,
                delay_ms=row.delay_ms,
                max_inflight=row.max_inflight,
                in_flight=row.in_flight,
                next_start_at=row.next_start_at,
                paused_until=row.paused_until if row.paused_until > now else None,
                reason=row.reason if row.paused_until > now else None,
                queued=row.crawl_queued,
            )
            for row in rows
        ]

    async def counts(self, crawl_id: uuid.UUID) -> FrontierCounts:
        statement = (
            select(URLS.c.state, func.count())
            .where(URLS.c.crawl_id == crawl_id)
            .group_by(URLS.c.state)
        )
        async with self._engine.connect() as connection:
            by_state = {state: int(n) for state, n in (await connection.execute(statement)).all()}
        return FrontierCounts(
            seen=sum(by_state.values()),
            queued=by_state.get(QUEUED, 0),
            in_flight=by_state.get(LEASED, 0),
            done=by_state.get(DONE, 0),
        )

    async def discard_host(self, crawl_id: uuid.UUID, host: str) -> list[NewURL]:
        async with self._engine.begin() as connection:
            rows = (
                await connection.execute(
                    update(URLS)
                    .where(
                        URLS.c.crawl_id == crawl_id,
                        URLS.c.host == host,
                        URLS.c.state == QUEUED,
                    )
                    .values(state=DONE)
                    .returning(URLS.c.url, URLS.c.fingerprint, URLS.c.host, URLS.c.depth)
                )
            ).all()
            if rows:
                await self._count_queued(connection, {host: -len(rows)})
        return [
            NewURL(url=row.url, fingerprint=row.fingerprint, host=row.host, depth=row.depth)
            for row in rows
        ]

    async def drop_crawl(self, crawl_id: uuid.UUID) -> None:
        await self.set_crawl_active(crawl_id, False)
        async with self._engine.begin() as connection:
            hosts = (
                await connection.execute(
                    update(URLS)
                    .where(URLS.c.crawl_id == crawl_id, URLS.c.state == QUEUED)
                    .values(state=DONE)
                    .returning(URLS.c.host)
                )
            ).scalars()
            per_host: dict[str, int] = {}
            for host in hosts:
                per_host[host] = per_host.get(host, 0) - 1
            await self._count_queued(connection, per_host)


def _sqlite_release_slots(host: str, count: int, requeued: bool) -> Any:
    return (
        update(HOSTS)
        .where(HOSTS.c.host == host)
        .values(
            in_flight=func.max(HOSTS.c.in_flight - count, 0),
            queued=HOSTS.c.queued + (count if requeued else 0),
        )
    )


def _lease_arrays(leases: Sequence[Lease]) -> dict[str, list[Any]]:
    return {
        "crawl_ids": [item.crawl_id for item in leases],
        "fingerprints": [item.fingerprint for item in leases],
        "tokens": [item.token for item in leases],
    }
