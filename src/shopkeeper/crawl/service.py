"""Crawl use cases: create, pause, resume, cancel, read with stats, hosts and workers.

The crawl row is the domain's; what is queued and leased lives in the frontier. A crawl is
`queued` until a worker leases its first URL (`running`), and `finished` when a worker sees
nothing of it queued or in flight.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shopkeeper.core.db import affected_rows, utcnow
from shopkeeper.core.errors import Conflict, InvalidInput, NotFound
from shopkeeper.crawl.canonical import InvalidURL, new_url
from shopkeeper.crawl.context import CrawlContext
from shopkeeper.crawl.frontier import FrontierCounts, HostPolicy, NewURL
from shopkeeper.crawl.jobs.service import live_job_crawls
from shopkeeper.crawl.models import Crawl, CrawlStatus, Page, PageState, Worker
from shopkeeper.crawl.politeness import MAX_CRAWL_DELAY_MS
from shopkeeper.crawl.schemas import CrawlCreate
from shopkeeper.crawl.scope import Scope

SAFETY_MARGIN_MS = 20
"""Added to every non-zero host delay the frontier enforces: what the host sees is the gap
between two request starts, and each start lags its reservation by a few varying milliseconds
(another worker process, a new connection, a busy server parsing the request)."""
ACTIVE = (CrawlStatus.QUEUED, CrawlStatus.RUNNING)
LIVE = (CrawlStatus.QUEUED, CrawlStatus.RUNNING, CrawlStatus.PAUSED)


class CrawlNotFound(NotFound):
    slug, title = "crawl-not-found", "Crawl not found"


class InvalidCrawl(InvalidInput):
    """422 in the shape of request validation errors: `errors: [{loc, msg}]`."""

    def __init__(self, loc: Sequence[str | int], msg: str) -> None:
        super().__init__(msg, errors=[{"loc": ["body", *map(str, loc)], "msg": msg}])


class CrawlStateConflict(Conflict):
    slug, title = "crawl-state-conflict", "The crawl cannot do that in its current status"


class InvalidCursor(InvalidInput):
    slug, title = "invalid-cursor", "Invalid cursor"


@dataclass(frozen=True, slots=True)
class CrawlView:
    crawl: Crawl
    stats: dict[str, Any]


# --- create ------------------------------------------------------------------------------------


def compile_scope(scope: dict[str, Any]) -> Scope:
    return Scope.from_rules(
        allow=scope["allow"], deny=scope.get("deny") or (), max_depth=scope.get("max_depth")
    )


def host_policy(politeness: dict[str, Any], robots_delay_ms: int | None = None) -> HostPolicy:
    delay = int(politeness["delay_ms"])
    if robots_delay_ms is not None and robots_delay_ms <= MAX_CRAWL_DELAY_MS:
        delay = max(delay, robots_delay_ms)
    if delay > 0:
        delay += SAFETY_MARGIN_MS
    return HostPolicy(delay_ms=delay, max_inflight=int(politeness["max_inflight_per_host"]))


async def create_crawl(context: CrawlContext, *, body: CrawlCreate) -> CrawlView:
    """Validate, store the crawl, queue its seeds with their hosts' policies, activate it."""
    scope_rules = body.scope.model_dump()
    try:
        scope = compile_scope(scope_rules)
    except ValueError as exc:
        raise InvalidCrawl(["scope"], str(exc)) from exc
    seeds: dict[int, NewURL] = {}
    for index, raw in enumerate(body.seeds):
        try:
            parts = new_url(raw, 0)
        except InvalidURL as exc:
            raise InvalidCrawl(["seeds", index], str(exc)) from exc
        if not scope.admits(parts.url, 0):
            raise InvalidCrawl(["seeds", index], f"{parts.url} is outside the crawl's scope")
        seeds.setdefault(parts.fingerprint, NewURL(*parts))
    queued = list(seeds.values())[: body.scope.max_pages or None]
    crawl = Crawl(
        name=body.name,
        status=CrawlStatus.QUEUED,
        seeds=[url.url for url in queued],
        scope=scope_rules,
        politeness=body.politeness.model_dump(),
        extract=body.extract.model_dump(),
        max_attempts=body.max_attempts,
    )
    async with context.db.session() as session:
        session.add(crawl)
        await session.commit()
    frontier = context.frontier
    policy = host_policy(crawl.politeness)
    for host in sorted({url.host for url in queued}):
        await frontier.set_host_policy(crawl.id, host, policy)
    await frontier.add(crawl.id, queued)
    await frontier.set_crawl_active(crawl.id, True)
    return await get_crawl(context, crawl_id=crawl.id)


# --- read --------------------------------------------------------------------------------------


async def _load(session: AsyncSession, crawl_id: uuid.UUID) -> Crawl:
    crawl = await session.get(Crawl, crawl_id)
    if crawl is None:
        raise CrawlNotFound(f"No crawl {crawl_id}")
    return crawl


async def get_crawl(context: CrawlContext, *, crawl_id: uuid.UUID) -> CrawlView:
    async with context.db.session() as session:
        crawl = await _load(session, crawl_id)
        pages = await _page_counts(session, [crawl_id])
    counts = await context.frontier.counts(crawl_id)
    return CrawlView(crawl, _stats(counts, pages.get(crawl_id, {})))


async def list_crawls(
    context: CrawlContext, *, limit: int, cursor: str | None
) -> tuple[list[CrawlView], str | None]:
    """Newest first, by id (UUIDv7: time-ordered)."""
    query = select(Crawl).order_by(Crawl.id.desc()).limit(limit + 1)
    if cursor is not None:
        query = query.where(Crawl.id < _decode_uuid(cursor))
    async with context.db.session() as session:
        crawls = list((await session.scalars(query)).all())
        page = crawls[:limit]
        pages = await _page_counts(session, [crawl.id for crawl in page])
    views = [
        CrawlView(crawl, _stats(await context.frontier.counts(crawl.id), pages.get(crawl.id, {})))
        for crawl in page
    ]
    next_cursor = _encode_uuid(page[-1].id) if len(crawls) > limit else None
    return views, next_cursor


async def _page_counts(
    session: AsyncSession, crawl_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[tuple[str, int | None], int]]:
    """(state, status) -> pages, per crawl, in one statement."""
    if not crawl_ids:
        return {}
    rows = await session.execute(
        select(Page.crawl_id, Page.state, Page.status, func.count())
        .where(Page.crawl_id.in_(crawl_ids))
        .group_by(Page.crawl_id, Page.state, Page.status)
    )
    result: dict[uuid.UUID, dict[tuple[str, int | None], int]] = {}
    for crawl_id, state, status, count in rows.all():
        result.setdefault(crawl_id, {})[(state, status)] = int(count)
    return result


def _stats(counts: FrontierCounts, pages: dict[tuple[str, int | None], int]) -> dict[str, Any]:
    by_state = dict.fromkeys(PageState, 0)
    by_status: dict[str, int] = {}
    for (state, status), count in pages.items():
        by_state[PageState(state)] += count
        if status is not None:
            by_status[str(status)] = by_status.get(str(status), 0) + count
    return {
        "seen": counts.seen,
        "queued": counts.queued,
        "in_flight": counts.in_flight,
        "fetched": by_state[PageState.FETCHED],
        "failed": by_state[PageState.FAILED],
        "dead": by_state[PageState.DEAD],
        "robots_denied": by_state[PageState.ROBOTS_DENIED],
        "by_status": dict(sorted(by_status.items())),
    }


# --- pause, resume, cancel, finish ---------------------------------------------------------------


async def _transition(
    context: CrawlContext,
    crawl_id: uuid.UUID,
    *,
    allowed: Sequence[str],
    to: CrawlStatus,
    finished: bool = False,
) -> bool:
    """Conditional update: True when this call moved the crawl, False when it already was `to`."""
    values: dict[str, Any] = {"status": to, "updated_at": utcnow()}
    if finished:
        values["finished_at"] = utcnow()
    async with context.db.session() as session:
        result = await session.execute(
            update(Crawl).where(Crawl.id == crawl_id, Crawl.status.in_(allowed)).values(values)
        )
        if affected_rows(result) == 0:
            crawl = await _load(session, crawl_id)
            if crawl.status != to:
                raise CrawlStateConflict(f"The crawl is {crawl.status}; it cannot become {to}")
            return False
        await session.commit()
    return True


async def pause_crawl(context: CrawlContext, *, crawl_id: uuid.UUID) -> CrawlView:
    """Nothing more is leased; fetches in flight finish and are stored."""
    await _transition(context, crawl_id, allowed=ACTIVE, to=CrawlStatus.PAUSED)
    await context.frontier.set_crawl_active(crawl_id, False)
    return await get_crawl(context, crawl_id=crawl_id)


async def resume_crawl(context: CrawlContext, *, crawl_id: uuid.UUID) -> CrawlView:
    await _transition(context, crawl_id, allowed=[CrawlStatus.PAUSED], to=CrawlStatus.RUNNING)
    await context.frontier.set_crawl_active(crawl_id, True)
    return await get_crawl(context, crawl_id=crawl_id)


async def cancel_crawl(context: CrawlContext, *, crawl_id: uuid.UUID) -> CrawlView:
    """Queued URLs are forgotten; fetches in flight finish and are stored."""
    await _transition(context, crawl_id, allowed=LIVE, to=CrawlStatus.CANCELLED, finished=True)
    await context.frontier.drop_crawl(crawl_id)
    return await get_crawl(context, crawl_id=crawl_id)


async def mark_running(context: CrawlContext, *, crawl_id: uuid.UUID) -> None:
    async with context.db.session() as session:
        await session.execute(
            update(Crawl)
            .where(Crawl.id == crawl_id, Crawl.status == CrawlStatus.QUEUED)
            .values(status=CrawlStatus.RUNNING, updated_at=utcnow())
        )
        await session.commit()


async def finish_idle_crawls(
    context: CrawlContext, *, crawl_ids: Collection[uuid.UUID] | None = None
) -> list[uuid.UUID]:
    """Running crawls (of `crawl_ids`, default all) with nothing queued or in flight are
    finished. A worker adds a page's links before it acknowledges the page, and the frontier
    counts in one snapshot, so a crawl seen empty here has no URL left to come."""
    query = select(Crawl.id).where(Crawl.status == CrawlStatus.RUNNING)
    if crawl_ids is not None:
        if not crawl_ids:
            return []
        query = query.where(Crawl.id.in_(list(crawl_ids)))
    async with context.db.session() as session:
        running = list(await session.scalars(query))
        owned = await live_job_crawls(session) if running else set()
    finished = []
    for crawl_id in running:
        if crawl_id in owned:  # a spider's crawl ends with its job
            continue
        counts = await context.frontier.counts(crawl_id)
        if counts.queued or counts.in_flight:
            continue
        async with context.db.session() as session:
            result = await session.execute(
                update(Crawl)
                .where(Crawl.id == crawl_id, Crawl.status == CrawlStatus.RUNNING)
                .values(status=CrawlStatus.FINISHED, finished_at=utcnow(), updated_at=utcnow())
            )
            await session.commit()
        if affected_rows(result):
            await context.frontier.set_crawl_active(crawl_id, False)
            finished.append(crawl_id)
    return finished


# --- hosts and workers ---------------------------------------------------------------------------


async def list_hosts(context: CrawlContext, *, crawl_id: uuid.UUID) -> list[dict[str, Any]]:
    async with context.db.session() as session:
        await _load(session, crawl_id)
        rows = await session.execute(
            select(Page.host, Page.state, func.count())
            .where(Page.crawl_id == crawl_id)
            .group_by(Page.host, Page.state)
        )
        per_host: dict[str, dict[str, int]] = {}
        for host, page_state, count in rows.all():
            per_host.setdefault(host, {})[page_state] = int(count)
    states = await context.frontier.hosts(crawl_id)
    names = sorted({state.host for state in states} | set(per_host))
    robots = await context.robots.many(names)
    by_name = {state.host: state for state in states}
    hosts = []
    for name in names:
        state = by_name.get(name)
        entry = robots.get(name)
        pages = per_host.get(name, {})
        reason = state.reason if state is not None else None
        backoff_until = state.paused_until if state is not None else None
        if entry is not None and not entry.usable and entry.expires_at > time.time():
            # Until robots.txt answers, nothing is fetched there, whatever the frontier's pause.
            backoff_until = max(backoff_until or 0.0, entry.expires_at)
            reason = reason or entry.error
        if entry is not None and (entry.crawl_delay_ms or 0) > MAX_CRAWL_DELAY_MS:
            reason = f"skipped: crawl-delay over 30 s (robots.txt asks {entry.crawl_delay_ms} ms)"
        hosts.append(
            {
                "host": name,
                "delay_ms": max(state.delay_ms - SAFETY_MARGIN_MS, 0) if state else 0,
                "max_inflight": state.max_inflight if state else 0,
                "in_flight": state.in_flight if state else 0,
                "backoff_until": _from_epoch(backoff_until),
                "reason": reason,
                "robots": None
                if entry is None
                else {
                    "status": entry.status,
                    "fetched_at": _from_epoch(entry.fetched_at),
                    "crawl_delay_ms": entry.crawl_delay_ms,
                },
                "queued": state.queued if state else 0,
                "fetched": pages.get(PageState.FETCHED, 0),
                "errors": pages.get(PageState.FAILED, 0) + pages.get(PageState.DEAD, 0),
            }
        )
    return hosts


async def list_workers(context: CrawlContext) -> list[dict[str, Any]]:
    """Every registered worker; `lost` once it missed three heartbeats. A worker that stopped
    cleanly removed itself."""
    lost_before = utcnow() - timedelta(seconds=3 * context.settings.crawl_heartbeat_seconds)
    async with context.db.session() as session:
        workers = (await session.scalars(select(Worker).order_by(Worker.started_at))).all()
    return [
        {
            "id": worker.id,
            "name": worker.name,
            "hostname": worker.hostname,
            "pid": worker.pid,
            "capacity": worker.capacity,
            "in_flight": worker.in_flight,
            "last_seen_at": worker.last_seen_at,
            "state": "alive" if worker.last_seen_at >= lost_before else "lost",
        }
        for worker in workers
    ]


def _from_epoch(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _encode_uuid(value: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(value.bytes).decode().rstrip("=")


def _decode_uuid(cursor: str) -> uuid.UUID:
    try:
        return uuid.UUID(bytes=base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError as exc:
        raise InvalidCursor("The cursor is not one this endpoint returned") from exc
