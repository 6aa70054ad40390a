"""What the logs UI shows, from the query service: a histogram of matches and the matching
lines of a window, a line's neighbours in its stream, and the saved searches of a user."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from shopkeeper.core.db import affected_rows
from shopkeeper.core.errors import InvalidInput, NotFound
from shopkeeper.logs.query import ast, service
from shopkeeper.logs.query.errors import QueryError
from shopkeeper.logs.query.parser import parse
from shopkeeper.logs.store import LogStore
from shopkeeper.logs.ui.models import SavedSearch

NS = 1_000_000_000
PRESETS: dict[str, int] = {
    "5m": 300,
    "15m": 900,
    "1h": 3600,
    "6h": 6 * 3600,
    "24h": 24 * 3600,
    "7d": 7 * 24 * 3600,
}
BUCKETS = 60
LINES = 200
CONTEXT_LINES = 10
NICE_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200)


class SavedSearchNotFound(NotFound):
    slug, title = "saved-search-not-found", "Saved search not found"


class InvalidSavedSearch(InvalidInput):
    slug, title = "invalid-saved-search", "Invalid saved search"


@dataclass(frozen=True, slots=True)
class Window:
    start: int
    end: int

    @property
    def step_seconds(self) -> int:
        wanted = max(1, (self.end - self.start) // NS // BUCKETS)
        return next((s for s in NICE_STEPS if s >= wanted), NICE_STEPS[-1])


@dataclass(slots=True)
class Line:
    ts: int
    line: str
    stream: dict[str, str]
    metadata: dict[str, str]

    @property
    def level(self) -> str:
        return self.stream.get("level", "unknown")

    @property
    def service(self) -> str:
        return self.stream.get("service", "")

    @property
    def time(self) -> str:
        moment = datetime.fromtimestamp(self.ts // NS, UTC)
        return f"{moment:%Y-%m-%d %H:%M:%S}.{self.ts % NS // 1_000_000:03d}"

    @property
    def stream_json(self) -> str:
        return json.dumps(self.stream, sort_keys=True)


@dataclass(slots=True)
class Search:
    query: str
    window: Window
    lines: list[Line] = field(default_factory=list)
    histogram: list[tuple[int, int]] = field(default_factory=list)
    """(bucket end in seconds, lines in the step before it)."""
    error: str | None = None

    @property
    def total(self) -> int:
        return sum(count for _, count in self.histogram)


def window_of(
    range_: str, from_: str | None, to: str | None, now_ns: int, *, max_range_ns: int
) -> Window:
    """A preset (`15m`, `1h`...) ending now, or an explicit UTC `from`/`to` (ISO 8601 or
    nanoseconds), as the range picker sends them; no longer than the API allows."""
    if from_ and to:
        start, end = _instant(from_), _instant(to)
        if end <= start:
            raise QueryError("the end of the range must be after its start")
        if end - start > max_range_ns:
            raise QueryError("the range is longer than SHOPKEEPER_LOGS_MAX_QUERY_RANGE allows")
        return Window(start, end)
    seconds = PRESETS.get(range_, PRESETS["1h"])
    return Window(now_ns - seconds * NS, now_ns)


def _instant(text: str) -> int:
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise QueryError(f"not a time: {text!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000) * 1_000_000


def _lines(result: Any) -> list[Line]:
    lines = [
        Line(int(value[0]), value[1], stream["stream"], _metadata(value))
        for stream in result
        for value in stream["values"]
    ]
    return sorted(lines, key=lambda line: line.ts, reverse=True)


def _metadata(value: list[Any]) -> dict[str, str]:
    if len(value) < 3:
        return {}
    extra = value[2]
    return {**extra.get("structuredMetadata", {}), **extra.get("parsed", {})}


async def search(store: LogStore, *, tenant: str, query: str, window: Window) -> Search:
    found = Search(query=query, window=window)
    try:
        if not isinstance(parse(query), ast.LogQuery):
            raise QueryError("the search takes a log query (a selector and filters), not a metric")
        step = window.step_seconds
        found.histogram = await _histogram(store, tenant, query, window, step)
        lines = await service.query_range(
            store,
            tenant=tenant,
            query=query,
            start=window.start,
            end=window.end,
            step=step * NS,
            limit=LINES,
            backward=True,
        )
        found.lines = _lines(lines.result)
    except QueryError as exc:
        found.error = str(exc)
    return found


async def _histogram(
    store: LogStore, tenant: str, query: str, window: Window, step: int
) -> list[tuple[int, int]]:
    """Lines per step over the whole window, empty steps included, on whole steps of the
    clock (a point at t counts the lines of (t - step, t])."""
    step_ns = step * NS
    first = (window.start // step_ns + 1) * step_ns
    last = -(-window.end // step_ns) * step_ns
    counts = await service.query_range(
        store,
        tenant=tenant,
        query=f"sum(count_over_time({query} [{step}s]))",
        start=first,
        end=last,
        step=step_ns,
        limit=LINES,
        backward=True,
    )
    series = counts.result[0]["values"] if counts.result else []
    by_second = {round(float(t)): int(float(v)) for t, v in series}
    return [(t // NS, by_second.get(t // NS, 0)) for t in range(first, last + 1, step_ns)]


def selector_of(stream: dict[str, str]) -> str:
    return "{" + ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(stream.items())) + "}"


async def context(
    store: LogStore, *, tenant: str, stream: dict[str, str], ts: int
) -> tuple[list[Line], list[Line]]:
    """Up to CONTEXT_LINES lines of the same stream before (and at) `ts`, and after it."""
    if not stream:
        raise QueryError("a line's context needs its stream labels")
    selector = selector_of(stream)
    before = await service.query_range(
        store,
        tenant=tenant,
        query=selector,
        start=ts - 3600 * NS,
        end=ts + 1,
        step=NS,
        limit=CONTEXT_LINES + 1,
        backward=True,
    )
    after = await service.query_range(
        store,
        tenant=tenant,
        query=selector,
        start=ts + 1,
        end=ts + 3600 * NS,
        step=NS,
        limit=CONTEXT_LINES,
        backward=False,
    )
    return _lines(before.result), _lines(after.result)


# -- saved searches ------------------------------------------------------------------------------


async def saved_searches(session: AsyncSession, *, user_id: uuid.UUID) -> list[SavedSearch]:
    rows = await session.scalars(
        select(SavedSearch).where(SavedSearch.user_id == user_id).order_by(SavedSearch.name)
    )
    return list(rows)


async def save_search(
    session: AsyncSession, *, user_id: uuid.UUID, name: str, query: str, range_: str
) -> SavedSearch:
    """Saves (or, under a name already used, replaces) a search of the user."""
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidSavedSearch("A saved search needs a name of 1 to 200 characters")
    if not query.strip():
        raise InvalidSavedSearch("A saved search needs a query")
    if range_ not in PRESETS:
        raise InvalidSavedSearch(f"The range must be one of {', '.join(PRESETS)}")
    existing = await session.scalar(
        select(SavedSearch).where(SavedSearch.user_id == user_id, SavedSearch.name == name)
    )
    if existing is None:
        existing = SavedSearch(user_id=user_id, name=name, query=query, range=range_)
        session.add(existing)
    else:
        existing.query, existing.range = query, range_
    await session.commit()
    return existing


async def delete_search(session: AsyncSession, *, user_id: uuid.UUID, search_id: uuid.UUID) -> None:
    result = await session.execute(
        delete(SavedSearch).where(SavedSearch.id == search_id, SavedSearch.user_id == user_id)
    )
    if not affected_rows(result):
        raise SavedSearchNotFound("No saved search of yours has this id")
    await session.commit()
