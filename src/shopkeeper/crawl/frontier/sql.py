"""The frontier in the relational database: SQLite when embedded, PostgreSQL in production.

PostgreSQL: a lease is one statement. Ready hosts are locked `FOR UPDATE SKIP LOCKED` (two
leasers never reserve the same host's slot; neither waits for the other), their due URLs too,
and the same statement marks the URLs leased and moves each host's `next_start_at` and
`in_flight`. Statements that free slots (complete, retry, reap) lock host rows in host order, so
two of them cannot deadlock. SQLite: every write transaction holds the database's write lock
(`BEGIN IMMEDIATE`, see core.db), so the same conditional updates run one transaction at a time.
The statements of each are in `sql_postgres` and `sql_sqlite`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import structlog
from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from shopkeeper.core.db import Database, table_of
from shopkeeper.crawl.frontier import sql_postgres as pg
from shopkeeper.crawl.frontier import sql_sqlite as sqlite
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

REAP_BATCH = 1000
WATCH_RETRY_S = 1.0

log = structlog.get_logger(__name__)

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
            return float((await connection.execute(pg.NOW)).scalar_one())

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
            inserted = self._insert_urls_pg if self._postgres else sqlite.insert_urls
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
        return list((await connection.execute(pg.ADD, params)).scalars())

    async def _count_queued(self, connection: AsyncConnection, per_host: dict[str, int]) -> None:
        """Add to the hosts' queued counts (negative numbers take away)."""
        if not per_host:
            return
        hosts = sorted(per_host)
        if self._postgres:
            # Host rows in host order, as the statements that free slots lock them.
            await connection.execute(pg.LOCK_HOSTS, {"hosts": hosts})
            counts = [per_host[host] for host in hosts]
            started = await connection.execute(pg.COUNT_QUEUED, {"hosts": hosts, "counts": counts})
            if any(started.scalars()):
                # Delivered at commit, to every worker listening.
                await connection.execute(pg.NOTIFY_WORK)
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
                pg.ENSURE_HOSTS,
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
            if active and self._postgres:
                await connection.execute(pg.NOTIFY_WORK)

    async def watch_work(self, wake: Callable[[], None]) -> None:
        if not self._postgres:
            return  # one process: its own flushes wake its lease loop
        while True:
            try:
                await self._listen(wake)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("crawl_frontier_watch_failed", exc_info=True)
            await asyncio.sleep(WATCH_RETRY_S)

    async def _listen(self, wake: Callable[[], None]) -> None:
        """LISTEN on one connection of the pool until it closes."""
        async with self._engine.connect() as connection:
            raw = await connection.get_raw_connection()
            listener = raw.driver_connection
            assert listener is not None
            closed = asyncio.Event()

            def heard(*_: Any) -> None:
                wake()

            listener.add_termination_listener(lambda *_: closed.set())
            await listener.add_listener(pg.WORK_CHANNEL, heard)
            try:
                # Whatever was added while not listening is found by the next lease.
                wake()
                await closed.wait()
            finally:
                if not listener.is_closed():
                    await listener.remove_listener(pg.WORK_CHANNEL, heard)

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
            lock = pg.LOCK_POLICY_HOSTS.replace("ORDER BY", narrow + " ORDER BY")
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
                        pg.LEASE if crawl_id is None else pg.LEASE_CRAWL, params
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
            return await sqlite.lease_locked(
                connection,
                now=time.time(),
                worker=worker,
                limit=limit,
                lease_seconds=lease_seconds,
                crawl_id=crawl_id,
            )

    async def complete(self, leases: Sequence[Lease]) -> list[bool]:
        if not leases:
            return []
        if self._postgres:
            async with self._autocommit.connect() as connection:
                done = set((await connection.execute(pg.COMPLETE, _lease_arrays(leases))).scalars())
            return [item.token in done for item in leases]
        return await sqlite.release(self._engine, leases, state=DONE)

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
                return bool((await connection.execute(pg.RETRY, params)).scalar_one())
        freed = await sqlite.release(
            self._engine, [lease], state=QUEUED, not_before=not_before, spend_attempt=spend_attempt
        )
        return freed[0]

    async def renew(self, leases: Sequence[Lease], lease_seconds: float) -> list[bool]:
        if not leases:
            return []
        if self._postgres:
            params = _lease_arrays(leases) | {"lease_seconds": lease_seconds}
            async with self._autocommit.connect() as connection:
                renewed = set((await connection.execute(pg.RENEW, params)).scalars())
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
                        (await connection.execute(pg.REAP, {"batch": REAP_BATCH})).scalar_one()
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
                await connection.execute(sqlite.release_slots(host, count, True))
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


def _lease_arrays(leases: Sequence[Lease]) -> dict[str, list[Any]]:
    return {
        "crawl_ids": [item.crawl_id for item in leases],
        "fingerprints": [item.fingerprint for item in leases],
        "tokens": [item.token for item in leases],
    }
