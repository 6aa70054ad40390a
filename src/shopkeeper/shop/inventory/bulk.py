"""Setting many stock levels at once (seeding, imports): `set_stock_level`'s rules, checked and
written a few thousand rows per statement instead of a few round trips per SKU."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence

from sqlalchemy import Insert, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from shopkeeper.core.db import dialect_name, is_postgres, utcnow
from shopkeeper.core.errors import InvalidInput
from shopkeeper.core.events import record_event
from shopkeeper.shop.inventory.events import StockChanged
from shopkeeper.shop.inventory.models import StockLevel, Warehouse
from shopkeeper.shop.inventory.service import (
    MAX_QUANTITY,
    StockBelowReserved,
    UnknownSku,
    WarehouseNotFound,
    unknown_skus,
)

# Rows checked and written per round of statements: the look-ups bind one parameter per SKU,
# far below the 32,767 that asyncpg and SQLite allow a statement.
ROWS_PER_CHUNK = 2000


async def set_stock_levels(
    session: AsyncSession,
    levels: Sequence[tuple[str, str, int]],
    *,
    rows_per_chunk: int = ROWS_PER_CHUNK,
) -> int:
    """Set on_hand for every (sku, warehouse_code, on_hand), creating missing stock rows, and
    commit. Returns how many rows were set.

    All or nothing: an unknown SKU or warehouse, a quantity outside 0..MAX_QUANTITY, a
    (sku, warehouse) given twice, or an on_hand below what that row has reserved for orders
    raises (UnknownSku, WarehouseNotFound, InvalidInput, StockBelowReserved) and nothing is
    written. One `StockChanged` event names every SKU of the call, so a caller with a very
    large input calls once per few thousand rows, as `shopkeeper seed` does.
    """
    if not levels:
        return 0
    seen: set[tuple[str, str]] = set()
    for sku, code, on_hand in levels:
        if not 0 <= on_hand <= MAX_QUANTITY:
            raise InvalidInput(
                f"on_hand of {sku} in {code} must be between 0 and {MAX_QUANTITY}",
                sku=sku,
                warehouse=code,
            )
        if (sku, code) in seen:
            raise InvalidInput(f"{sku} in {code} is given twice", sku=sku, warehouse=code)
        seen.add((sku, code))
    warehouses = await _warehouse_ids(session, {code for _, code, _ in levels})
    codes = {warehouse_id: code for code, warehouse_id in warehouses.items()}
    rows = sorted((sku, warehouses[code], on_hand) for sku, code, on_hand in levels)
    skus = sorted({sku for sku, _, _ in rows})

    for start in range(0, len(rows), rows_per_chunk):
        chunk = rows[start : start + rows_per_chunk]
        await _ensure_known_skus(session, sorted({sku for sku, _, _ in chunk}))
        await _refuse_below_reserved(session, chunk, codes)
        await _upsert(session, chunk)
    record_event(session, StockChanged(skus=skus))
    await session.commit()
    return len(rows)


async def _warehouse_ids(session: AsyncSession, codes: set[str]) -> dict[str, uuid.UUID]:
    found = dict(
        (
            await session.execute(
                select(Warehouse.code, Warehouse.id).where(Warehouse.code.in_(codes))
            )
        ).all()
    )
    missing = sorted(codes - found.keys())
    if missing:
        raise WarehouseNotFound(f"No warehouse with code {missing[0]!r}", code=missing[0])
    return found


async def _ensure_known_skus(session: AsyncSession, skus: list[str]) -> None:
    # As in `set_stock_level`: the foreign key would refuse the row too, but not say which SKU.
    if missing := await unknown_skus(session, skus):
        raise UnknownSku(f"No catalog variant has SKU {missing[0]!r}", sku=missing[0])


async def _refuse_below_reserved(
    session: AsyncSession,
    chunk: Sequence[tuple[str, uuid.UUID, int]],
    codes: dict[uuid.UUID, str],
) -> None:
    """Raise StockBelowReserved for the first row whose new on_hand is below its reserved.

    On PostgreSQL the existing rows are locked here, ordered by (sku, warehouse) in the
    database's own collation exactly as `reserve_stock` locks them, so a bulk set and a
    checkout queue instead of deadlocking, and no reservation can grow between this check and
    the upsert. (SQLite transactions here hold the database's write lock from BEGIN.)"""
    wanted = {(sku, warehouse_id): on_hand for sku, warehouse_id, on_hand in chunk}
    query = (
        select(StockLevel.sku, StockLevel.warehouse_id, StockLevel.reserved)
        .where(
            # Cheaper to send than the (sku, warehouse) pairs; the few extra rows it can match
            # (a listed SKU in a listed warehouse, but not as a pair) are locked briefly, unchanged.
            StockLevel.sku.in_(sorted({sku for sku, _ in wanted})),
            StockLevel.warehouse_id.in_(sorted({warehouse_id for _, warehouse_id in wanted})),
        )
        .order_by(StockLevel.sku, StockLevel.warehouse_id)
    )
    if is_postgres(session):
        query = query.with_for_update()
    for sku, warehouse_id, reserved in await session.execute(query):
        on_hand = wanted.get((sku, warehouse_id))
        if on_hand is not None and reserved > on_hand:
            code = codes[warehouse_id]
            raise StockBelowReserved(
                f"{reserved} units of {sku} in {code} are reserved for orders; "
                f"on_hand cannot go below that (asked for {on_hand}); nothing was changed",
                sku=sku,
                warehouse=code,
                reserved=reserved,
                on_hand=on_hand,
            )


async def _upsert(session: AsyncSession, chunk: Sequence[tuple[str, uuid.UUID, int]]) -> None:
    now = utcnow()
    rows = [
        {"sku": sku, "warehouse_id": warehouse_id, "on_hand": on_hand, "now": now}
        for sku, warehouse_id, on_hand in chunk
    ]
    # One statement, many parameter sets: compiled once, and sent by asyncpg as one pipelined
    # batch (a multi-row VALUES is compiled anew for every chunk, which cost more than the
    # database's work).
    connection = await session.connection()
    await connection.execute(_upsert_statement(dialect_name(session)), rows)


@functools.cache
def _upsert_statement(dialect: str) -> Insert:
    statement = (postgresql if dialect == "postgresql" else sqlite).insert(StockLevel)
    # No WHERE reserved <= on_hand: the rows are locked and checked above, and a row someone
    # created and reserved in between still meets the reserved_within_on_hand CHECK, whose
    # IntegrityError rolls the whole call back.
    upsert: Insert = statement.values(
        sku=bindparam("sku"),
        warehouse_id=bindparam("warehouse_id"),
        on_hand=bindparam("on_hand"),
        reserved=0,
        updated_at=bindparam("now"),
    ).on_conflict_do_update(
        index_elements=[StockLevel.sku, StockLevel.warehouse_id],
        set_={"on_hand": statement.excluded.on_hand, "updated_at": statement.excluded.updated_at},
    )
    return upsert
