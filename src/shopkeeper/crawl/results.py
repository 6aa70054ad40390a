"""Pages: stored once per requested URL, listed by cursor, exported as a stream.

Storing is an upsert on (crawl, fingerprint): a URL delivered again after its worker died
between storing and acknowledging overwrites its own row. Lists and exports walk the primary key
in keyset batches, each in its own short transaction, so an export of any size holds one batch
in memory and no transaction open across the client's reads.
"""

from __future__ import annotations

import base64
import csv
import io
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from shopkeeper.core.db import Database, table_of
from shopkeeper.core.jsonutil import dumps
from shopkeeper.crawl.models import Crawl, Page
from shopkeeper.crawl.service import CrawlNotFound, InvalidCursor

PAGES = table_of(Page)
EXPORT_BATCH = 1000
CSV_COLUMNS = (
    "url",
    "final_url",
    "state",
    "status",
    "fetched_at",
    "depth",
    "attempts",
    "title",
    "error",
    "product_name",
    "product_sku",
    "product_price_amount",
    "product_price_currency",
    "product_availability",
    "fields",
)
_UPDATED = tuple(c.name for c in PAGES.columns if c.name not in {"crawl_id", "fingerprint"})


async def store_pages(db: Database, rows: Sequence[dict[str, Any]]) -> None:
    """Upsert page rows (dicts of `crawl_pages` columns) in one statement."""
    if not rows:
        return
    insert = (sqlite.insert if db.is_sqlite else postgresql.insert)(PAGES)
    statement = insert.on_conflict_do_update(
        index_elements=["crawl_id", "fingerprint"],
        set_={name: insert.excluded[name] for name in _UPDATED},
    )
    async with db.engine.begin() as connection:
        await connection.execute(statement, list(rows))


def page_dict(page: Any) -> dict[str, Any]:
    """A Page as API.md spells it (from a model or a Core row alike)."""
    return {
        "url": page.url,
        "final_url": page.final_url,
        "state": page.state,
        "status": page.status,
        "fetched_at": page.fetched_at,
        "depth": page.depth,
        "attempts": page.attempts,
        "title": page.title,
        "product": page.product,
        "fields": page.fields,
        "error": page.error,
    }


async def _require_crawl(db: Database, crawl_id: uuid.UUID) -> None:
    async with db.session() as session:
        if await session.get(Crawl, crawl_id) is None:
            raise CrawlNotFound(f"No crawl {crawl_id}")


async def _batch(
    db: Database, crawl_id: uuid.UUID, state: str | None, after: int | None, limit: int
) -> list[Any]:
    query = (
        select(PAGES).where(PAGES.c.crawl_id == crawl_id).order_by(PAGES.c.fingerprint).limit(limit)
    )
    if state is not None:
        query = query.where(PAGES.c.state == state)
    if after is not None:
        query = query.where(PAGES.c.fingerprint > after)
    async with db.engine.connect() as connection:
        return list((await connection.execute(query)).all())


async def list_pages(
    db: Database, *, crawl_id: uuid.UUID, state: str | None, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    await _require_crawl(db, crawl_id)
    rows = await _batch(db, crawl_id, state, _decode(cursor), limit + 1)
    page = rows[:limit]
    next_cursor = _encode(page[-1].fingerprint) if len(rows) > limit else None
    return [page_dict(row) for row in page], next_cursor


async def export_pages(
    db: Database, *, crawl_id: uuid.UUID, format: Literal["jsonl", "csv"]
) -> AsyncIterator[bytes]:
    """Checks the crawl exists (raising before the response starts), then yields the chunks."""
    await _require_crawl(db, crawl_id)
    return _stream(db, crawl_id, format)


async def _stream(
    db: Database, crawl_id: uuid.UUID, format: Literal["jsonl", "csv"]
) -> AsyncIterator[bytes]:
    if format == "csv":
        yield _csv_lines([CSV_COLUMNS])
    after: int | None = None
    while True:
        rows = await _batch(db, crawl_id, None, after, EXPORT_BATCH)
        if not rows:
            return
        after = rows[-1].fingerprint
        if format == "jsonl":
            yield b"".join(dumps(page_dict(row)) + b"\n" for row in rows)
        else:
            yield _csv_lines([_csv_row(row) for row in rows])
        if len(rows) < EXPORT_BATCH:
            return


def _csv_row(row: Any) -> list[Any]:
    product = row.product or {}
    price = product.get("price") or {}
    return [
        row.url,
        row.final_url or "",
        row.state,
        "" if row.status is None else row.status,
        row.fetched_at.isoformat(),
        row.depth,
        row.attempts,
        row.title or "",
        row.error or "",
        product.get("name") or "",
        product.get("sku") or "",
        price.get("amount", ""),
        price.get("currency", ""),
        product.get("availability") or "",
        dumps(row.fields).decode() if row.fields else "",
    ]


def _csv_lines(rows: Sequence[Sequence[Any]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode()


def _encode(fingerprint: int) -> str:
    return (
        base64.urlsafe_b64encode(fingerprint.to_bytes(8, "big", signed=True)).decode().rstrip("=")
    )


def _decode(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except ValueError as exc:
        raise InvalidCursor("The cursor is not one this endpoint returned") from exc
    if len(raw) != 8:
        raise InvalidCursor("The cursor is not one this endpoint returned")
    return int.from_bytes(raw, "big", signed=True)
