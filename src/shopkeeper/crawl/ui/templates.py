"""The Jinja templates of the crawl UI (`src/shopkeeper/templates/crawl/`) and their filters:
money in major units with its currency, readable UTC times and how long ago they were."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from shopkeeper.core.errors import Conflict
from shopkeeper.core.money import Money

TEMPLATES = Jinja2Templates(directory=Path(__file__).resolve().parents[2] / "templates")


def money(value: Money | None) -> str:
    """1234 USD -> "12.34 USD"; 500 JPY -> "500 JPY"."""
    if value is None:
        return "—"
    return f"{value.to_decimal_string()} {value.currency}"


def when(value: datetime | None) -> str:
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """ "12 s ago", "in 3 min", "2 h ago"."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    seconds = ((now or datetime.now(UTC)) - value).total_seconds()
    future, seconds = seconds < 0, abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            text = f"{int(seconds // size)} {unit}"
            break
    else:
        text = f"{int(seconds)} s"
    return f"in {text}" if future else f"{text} ago"


def duration(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return ""
    seconds = int((end - start).total_seconds())
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


TEMPLATES.env.filters.update(money=money, when=when, ago=ago)
TEMPLATES.env.globals.update(duration=duration)


FLASH = "shopkeeper_crawl_flash"


def page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    """A page; an action's refusal left in the flash cookie shows on it once."""
    flash = request.cookies.get(FLASH)
    response = TEMPLATES.TemplateResponse(
        request, name, {"flash": flash, **context}, status_code=status
    )
    if flash:
        response.delete_cookie(FLASH, path="/crawl")
    return response


async def act(action: Awaitable[object], back: str) -> Response:
    """Run an action through its service and go back to `back`; when the thing is not in a
    state for it (a crawl finished meanwhile), go back with the reason shown once."""
    response = RedirectResponse(back, status_code=303)
    try:
        await action
    except Conflict as exc:
        response.set_cookie(
            FLASH, exc.detail[:300], max_age=60, path="/crawl", httponly=True, samesite="strict"
        )
    return response


def login_page(request: Request, context: dict[str, Any], status: int) -> Response:
    return page(request, "crawl/login.html", {"viewer": None, **context}, status)
