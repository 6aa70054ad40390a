"""Price-watch use cases: create, list, check now, history, and the periodic round that reads
finished checks and queues due ones.

A watch owns a crawl (one URL, no links, product markup and the selector extracted), so the
crawl workers fetch its page like any other: leased from the frontier, under the host's global
politeness and robots.txt. Each check adds the URL under a fingerprint of its own (the frontier
dedups within a crawl); the worker stores the outcome as that fingerprint's page, and the round
reads it: the watch row's conditional update (`pending_fingerprint` still that check's) makes a
result count once however many rounds see it, and the price-history row and
`CompetitorPriceChanged` commit in that same transaction, or not at all.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shopkeeper.contracts.pricing import CompetitorPriceChanged, ObservedPrice
from shopkeeper.core.db import affected_rows, utcnow
from shopkeeper.core.errors import NotFound
from shopkeeper.core.messaging.events import record_event
from shopkeeper.core.money import Money
from shopkeeper.crawl.canonical import InvalidURL, fingerprint, new_url
from shopkeeper.crawl.context import CrawlContext
from shopkeeper.crawl.extract import to_money
from shopkeeper.crawl.frontier import NewURL
from shopkeeper.crawl.models import Crawl, CrawlStatus, Page, PageState
from shopkeeper.crawl.schemas import PolitenessIn
from shopkeeper.crawl.service import InvalidCrawl, host_policy
from shopkeeper.crawl.watch.models import Watch, WatchPrice
from shopkeeper.crawl.watch.schemas import WatchCreate, duration_seconds

PRICE_FIELD = "price"


class WatchNotFound(NotFound):
    slug, title = "watch-not-found", "Watch not found"


@dataclass(frozen=True, slots=True)
class Reading:
    price: Money | None
    error: str | None


# --- create, read -------------------------------------------------------------------------------


async def create_watch(context: CrawlContext, *, body: WatchCreate) -> Watch:
    try:
        parts = new_url(body.url, 0)
    except InvalidURL as exc:
        raise InvalidCrawl(["url"], str(exc)) from exc
    crawl = Crawl(
        name=f"price watch {body.sku}",
        status=CrawlStatus.FINISHED,
        seeds=[parts.url],
        scope={"allow": [parts.url], "deny": [], "max_depth": 0, "max_pages": None},
        politeness=PolitenessIn().model_dump(),
        extract={
            "links": False,
            "product": True,
            "fields": {PRICE_FIELD: body.selector} if body.selector else None,
        },
        max_attempts=3,
    )
    watch = Watch(
        sku=body.sku,
        url=parts.url,
        selector=body.selector,
        every_seconds=duration_seconds(body.every),
        crawl_id=crawl.id,
        next_check_at=utcnow(),
    )
    async with context.db.session() as session:
        session.add(crawl)
        await session.flush()
        watch.crawl_id = crawl.id
        session.add(watch)
        await session.commit()
    await request_check(context, watch_id=watch.id)
    return await get_watch(context, watch_id=watch.id)


async def get_watch(context: CrawlContext, *, watch_id: uuid.UUID) -> Watch:
    async with context.db.session() as session:
        watch = await session.get(Watch, watch_id)
    if watch is None:
        raise WatchNotFound(f"No watch {watch_id}")
    return watch


async def list_watches(context: CrawlContext, *, sku: str | None = None) -> list[Watch]:
    query = select(Watch).order_by(Watch.sku, Watch.id)
    if sku is not None:
        query = query.where(Watch.sku == sku)
    async with context.db.session() as session:
        return list(await session.scalars(query))


async def price_history(context: CrawlContext, *, watch_id: uuid.UUID) -> list[WatchPrice]:
    """One entry per change, newest first."""
    async with context.db.session() as session:
        if await session.get(Watch, watch_id) is None:
            raise WatchNotFound(f"No watch {watch_id}")
        rows = await session.scalars(
            select(WatchPrice)
            .where(WatchPrice.watch_id == watch_id)
            .order_by(WatchPrice.observed_at.desc(), WatchPrice.id.desc())
        )
        return list(rows)


def every_text(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def last_price(watch: Watch) -> Money | None:
    if watch.last_amount is None or watch.last_currency is None:
        return None
    return Money(amount=watch.last_amount, currency=watch.last_currency)


# --- checks -------------------------------------------------------------------------------------


def check_fingerprint(watch_id: uuid.UUID, url: str, number: int) -> int:
    """The frontier key of a watch's n-th check: unique per check, so the crawl's dedup lets
    each one through."""
    return fingerprint(f"{url}#shopkeeper-watch-{watch_id}-{number}")


async def request_check(context: CrawlContext, *, watch_id: uuid.UUID) -> None:
    """Queue a check now, unless one is queued already (then that one answers)."""
    async with context.db.session() as session:
        watch = await session.get(Watch, watch_id)
        if watch is None:
            raise WatchNotFound(f"No watch {watch_id}")
    if watch.pending_fingerprint is None:
        await _queue_check(context, watch, replace=None)


async def _queue_check(context: CrawlContext, watch: Watch, *, replace: int | None) -> bool:
    """Claim the watch's next check number (a conditional update: of two rounds or requests,
    one queues) and put its URL in the frontier. `replace`: the pending check given up on."""
    number = watch.checks + 1
    key = check_fingerprint(watch.id, watch.url, number)
    pending = Watch.pending_fingerprint
    async with context.db.session() as session:
        claimed = await session.execute(
            update(Watch)
            .where(
                Watch.id == watch.id,
                Watch.checks == watch.checks,
                pending.is_(None) if replace is None else pending == replace,
            )
            .values(checks=number, pending_fingerprint=key)
        )
        # Queued before its URL is added: `finish_idle_crawls` only finishes running crawls.
        await session.execute(
            update(Crawl)
            .where(Crawl.id == watch.crawl_id, Crawl.status != CrawlStatus.CANCELLED)
            .values(status=CrawlStatus.QUEUED, finished_at=None, updated_at=utcnow())
        )
        if affected_rows(claimed) != 1:
            await session.rollback()
            return False
        await session.commit()
    await _enqueue(context, watch, key)
    return True


async def _enqueue(context: CrawlContext, watch: Watch, key: int) -> None:
    parts = new_url(watch.url, 0)
    frontier = context.frontier
    await frontier.set_host_policy(
        watch.crawl_id, parts.host, host_policy(PolitenessIn().model_dump())
    )
    await frontier.add(watch.crawl_id, [NewURL(parts.url, key, parts.host, 0)])
    await frontier.set_crawl_active(watch.crawl_id, True)


# --- the periodic round -------------------------------------------------------------------------


async def run_watches(context: CrawlContext) -> dict[str, int]:
    """Read every finished check, queue every due one; return how many of each."""
    read = queued = 0
    async with context.db.session() as session:
        pending = list(
            await session.scalars(select(Watch).where(Watch.pending_fingerprint.isnot(None)))
        )
    for watch in pending:
        read += await _read_check(context, watch)
    async with context.db.session() as session:
        due = list(
            await session.scalars(
                select(Watch).where(
                    Watch.pending_fingerprint.is_(None), Watch.next_check_at <= utcnow()
                )
            )
        )
    for watch in due:
        queued += await _queue_check(context, watch, replace=None)
    return {"read": read, "queued": queued}


async def _read_check(context: CrawlContext, watch: Watch) -> int:
    key = watch.pending_fingerprint
    assert key is not None
    async with context.db.session() as session:
        page = await session.get(Page, (watch.crawl_id, key))
        if page is None:
            crawl = await session.get(Crawl, watch.crawl_id)
            lost = crawl is not None and crawl.status == CrawlStatus.FINISHED
        else:
            lost = False
    if page is None:
        if lost:
            # The crawl ran dry without this check's page (its URL never reached the frontier:
            # a crash between claiming the check and adding it): queue a fresh one.
            await _queue_check(context, watch, replace=key)
        else:
            # A worker finishing the previous check may deactivate the crawl just after this
            # check activated it; activating again costs nothing.
            await context.frontier.set_crawl_active(watch.crawl_id, True)
        return 0
    reading = read_page(page)
    return await _record(context, watch, key, reading)


def read_page(page: Page) -> Reading:
    """The price on a stored page: product markup first, then the watch's selector."""
    if page.state != PageState.FETCHED:
        return Reading(None, page.error or f"page {page.state}")
    if page.status is not None and page.status != 200:
        return Reading(None, f"HTTP {page.status}")
    product: dict[str, Any] = page.product or {}
    price = product.get("price")
    if isinstance(price, dict):
        return Reading(Money.model_validate(price), None)
    text = (page.fields or {}).get(PRICE_FIELD)
    if text:
        money = to_money(text, None)
        if money is not None:
            return Reading(money, None)
        return Reading(None, f"no price with a currency in {text[:100]!r}")
    return Reading(None, "no price on the page")


async def _record(context: CrawlContext, watch: Watch, key: int, reading: Reading) -> int:
    now = utcnow()
    values: dict[str, Any] = {
        "pending_fingerprint": None,
        "last_checked_at": now,
        "next_check_at": now + timedelta(seconds=watch.every_seconds),
        "last_error": reading.error,
    }
    price = reading.price
    if price is not None:
        values.update(last_amount=price.amount, last_currency=price.currency)
    async with context.db.session() as session:
        done = await session.execute(
            update(Watch)
            .where(Watch.id == watch.id, Watch.pending_fingerprint == key)
            .values(values)
        )
        if affected_rows(done) != 1:
            await session.rollback()
            return 0
        previous = last_price(watch)
        if price is not None and price != previous:
            _record_change(session, watch, price, previous, now)
        # The check's page was only the worker's way to hand the result over.
        await session.execute(delete(Page).where(Page.crawl_id == watch.crawl_id))
        await session.commit()
    return 1


def _record_change(
    session: AsyncSession, watch: Watch, price: Money, previous: Money | None, at: datetime
) -> None:
    session.add(
        WatchPrice(
            watch_id=watch.id,
            amount=price.amount,
            currency=price.currency,
            previous_amount=None if previous is None else previous.amount,
            previous_currency=None if previous is None else previous.currency,
            observed_at=at,
        )
    )
    record_event(
        session,
        CompetitorPriceChanged(
            watch_id=watch.id,
            sku=watch.sku,
            url=watch.url,
            old=None
            if previous is None
            else ObservedPrice(amount=previous.amount, currency=previous.currency),
            new=ObservedPrice(amount=price.amount, currency=price.currency),
            observed_at=at,
        ),
    )
