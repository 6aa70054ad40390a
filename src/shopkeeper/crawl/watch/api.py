"""The price-watch API under `/api/v1/crawl/watches` (API.md, "Price watch")."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from shopkeeper.core.errors import problem_responses
from shopkeeper.core.money import Money
from shopkeeper.crawl.auth import CanRead, CanWrite
from shopkeeper.crawl.context import Crawler
from shopkeeper.crawl.watch import service
from shopkeeper.crawl.watch.models import Watch, WatchPrice
from shopkeeper.crawl.watch.schemas import PriceOut, WatchCreate, WatchOut

router = APIRouter(prefix="/watches", tags=["crawl"])

AUTH = (401, 403)


def _out(watch: Watch) -> WatchOut:
    return WatchOut(
        id=watch.id,
        sku=watch.sku,
        url=watch.url,
        selector=watch.selector,
        every=service.every_text(watch.every_seconds),
        last_price=service.last_price(watch),
        last_checked_at=watch.last_checked_at,
        last_error=watch.last_error,
    )


def _price(row: WatchPrice) -> PriceOut:
    previous = None
    if row.previous_amount is not None and row.previous_currency is not None:
        previous = Money(amount=row.previous_amount, currency=row.previous_currency)
    return PriceOut(
        price=Money(amount=row.amount, currency=row.currency),
        previous=previous,
        observed_at=row.observed_at,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(
        *AUTH, 422, s422='`validation-error`: a bad URL, or `every` not like "30s" / under 5s'
    ),
)
async def create_watch(body: WatchCreate, crawler: Crawler, _: CanWrite) -> WatchOut:
    """Watch a competitor's page for a SKU: fetched now and every `every` after, politely."""
    return _out(await service.create_watch(crawler, body=body))


@router.get("", responses=problem_responses(*AUTH, 422))
async def list_watches(
    crawler: Crawler,
    _: CanRead,
    sku: Annotated[str | None, Query(max_length=64)] = None,
) -> list[WatchOut]:
    return [_out(watch) for watch in await service.list_watches(crawler, sku=sku)]


@router.post(
    "/{watch_id}/check",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(*AUTH, 404, s404="`watch-not-found`"),
)
async def check_watch(watch_id: uuid.UUID, crawler: Crawler, _: CanWrite) -> dict[str, str]:
    """Fetch the page as soon as the host's politeness allows (a check already queued stands)."""
    await service.request_check(crawler, watch_id=watch_id)
    return {"status": "queued"}


@router.get("/{watch_id}/prices", responses=problem_responses(*AUTH, 404, s404="`watch-not-found`"))
async def price_history(watch_id: uuid.UUID, crawler: Crawler, _: CanRead) -> list[PriceOut]:
    """One entry per change, newest first."""
    return [_price(row) for row in await service.price_history(crawler, watch_id=watch_id)]
