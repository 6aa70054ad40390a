"""The crawl UI's price watches: the list, a watch's price history as a chart (uPlot) and a
"check now" button, over the price-watch service."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from shopkeeper.core.money import Money
from shopkeeper.crawl.auth import WRITE
from shopkeeper.crawl.context import Crawler
from shopkeeper.crawl.ui.auth import CurrentViewer, CurrentWriter
from shopkeeper.crawl.ui.templates import page
from shopkeeper.crawl.watch import service
from shopkeeper.crawl.watch.models import WatchPrice

router = APIRouter(prefix="/crawl", include_in_schema=False)


def chart_data(history: list[WatchPrice], now: datetime) -> dict[str, object]:
    """uPlot's columns: epoch seconds and prices in major units, oldest first, the last price
    held until now (a step line)."""
    rows = sorted(history, key=lambda row: row.observed_at)
    xs: list[float] = []
    ys: list[float] = []
    for row in rows:
        xs.append(_epoch(row.observed_at))
        ys.append(float(Money(amount=row.amount, currency=row.currency).to_decimal_string()))
    if rows and xs[-1] < now.timestamp():
        xs.append(now.timestamp())
        ys.append(ys[-1])
    currency = rows[-1].currency if rows else ""
    return {"x": xs, "y": ys, "currency": currency}


def _epoch(value: datetime) -> float:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


@router.get("/watches", response_class=HTMLResponse)
async def watch_list(request: Request, crawler: Crawler, viewer: CurrentViewer) -> Response:
    watches = await service.list_watches(crawler)
    context = {
        "viewer": viewer,
        "nav": "watches",
        "can_write": viewer.can(WRITE),
        "watches": [(watch, service.last_price(watch)) for watch in watches],
        "every": service.every_text,
    }
    return page(request, "crawl/watches.html", context)


@router.get("/watches/{watch_id}", response_class=HTMLResponse)
async def watch_page(
    request: Request, watch_id: uuid.UUID, crawler: Crawler, viewer: CurrentViewer
) -> Response:
    watch = await service.get_watch(crawler, watch_id=watch_id)
    history = await service.price_history(crawler, watch_id=watch_id)
    changes = [
        (
            row,
            Money(amount=row.amount, currency=row.currency),
            None
            if row.previous_amount is None or row.previous_currency is None
            else Money(amount=row.previous_amount, currency=row.previous_currency),
        )
        for row in history
    ]
    context = {
        "viewer": viewer,
        "nav": "watches",
        "can_write": viewer.can(WRITE),
        "watch": watch,
        "last_price": service.last_price(watch),
        "every": service.every_text(watch.every_seconds),
        "changes": changes,
        "chart_json": json.dumps(chart_data(history, datetime.now(UTC))),
    }
    return page(request, "crawl/watch.html", context)


@router.post("/watches/{watch_id}/check")
async def check_now(watch_id: uuid.UUID, crawler: Crawler, _: CurrentWriter) -> Response:
    await service.request_check(crawler, watch_id=watch_id)
    return RedirectResponse(f"/crawl/watches/{watch_id}?checking=1", status_code=303)
