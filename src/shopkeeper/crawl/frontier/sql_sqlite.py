"""The SQL frontier's procedures on SQLite (see `sql`): several statements each, inside a
transaction that holds the database's write lock (`BEGIN IMMEDIATE`, see core.db), so the same
conditional updates as PostgreSQL's single statements run one transaction at a time."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, bindparam, func, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from shopkeeper.core.db import affected_rows, table_of
from shopkeeper.crawl.frontier.base import Lease, NewURL
from shopkeeper.crawl.frontier.models import (
    LEASED,
    QUEUED,
    CrawlHost,
    CrawlURL,
    FrontierCrawl,
)

URLS = table_of(CrawlURL)
HOSTS = table_of(CrawlHost)
CRAWLS = table_of(FrontierCrawl)

INSERT_CHUNK = 1000


async def insert_urls(
    connection: AsyncConnection, crawl_id: uuid.UUID, urls: Sequence[NewURL]
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


async def lease_locked(
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


async def release(
    engine: AsyncEngine,
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
    async with engine.begin() as connection:
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
                await connection.execute(release_slots(host, 1, state == QUEUED))
            outcome.append(host is not None)
    return outcome


def release_slots(host: str, count: int, requeued: bool) -> Any:
    return (
        update(HOSTS)
        .where(HOSTS.c.host == host)
        .values(
            in_flight=func.max(HOSTS.c.in_flight - count, 0),
            queued=HOSTS.c.queued + (count if requeued else 0),
        )
    )
