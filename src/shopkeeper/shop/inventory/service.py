"""Stock: what can be sold, reserving it for orders, releasing and shipping it.

`reserve_stock`, `release_stock` and `ship_stock` run inside the caller's unit of work (the
orders domain commits them together with the order). The staff use cases below them commit
their own.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Insert,
    Integer,
    String,
    Uuid,
    bindparam,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from shopkeeper.core.db import UTCDateTime, affected_rows, is_postgres, new_id, table_of, utcnow
from shopkeeper.core.errors import Conflict, InvalidInput, NotFound
from shopkeeper.core.events import queue_events, record_event
from shopkeeper.core.settings import Settings
from shopkeeper.core.writes import WriteBatch
from shopkeeper.shop.inventory.allocation import Source, plan_line
from shopkeeper.shop.inventory.events import StockChanged, StockLow
from shopkeeper.shop.inventory.geo import warehouse_distances_km
from shopkeeper.shop.inventory.models import (
    AllocationState,
    StockAllocation,
    StockLevel,
    StockThreshold,
    Warehouse,
)

# Ceiling for any one quantity: far above a real shop's stock, far below int32 overflow.
MAX_QUANTITY = 1_000_000_000

# The reservation's statements, built once over plain table columns: checkout runs them on
# every order, and a prebuilt Core statement skips the ORM's per-call compile and cache-key work.
_stock, _warehouses = table_of(StockLevel), table_of(Warehouse)
_thresholds = table_of(StockThreshold)
_READ_STOCK = (
    select(
        _stock.c.sku,
        _stock.c.warehouse_id,
        _stock.c.on_hand - _stock.c.reserved,
        _warehouses.c.code,
        # The SKU's own low-stock threshold rides along: no extra round trip per checkout.
        _thresholds.c.low_stock_threshold,
    )
    .join(_warehouses, _warehouses.c.id == _stock.c.warehouse_id)
    .outerjoin(_thresholds, _thresholds.c.sku == _stock.c.sku)
    .where(_stock.c.sku.in_(bindparam("skus", expanding=True)))
    .order_by(_stock.c.sku, _stock.c.warehouse_id)
)
_LOCK_STOCK = _READ_STOCK.with_for_update(of=_stock)
_RESERVE_ROWS = text(
    """
    UPDATE stock_levels
    SET reserved = stock_levels.reserved + wanted.quantity, updated_at = :reserve_at
    FROM unnest(:reserve_skus, :reserve_warehouse_ids, :reserve_quantities)
      AS wanted(sku, warehouse_id, quantity)
    WHERE stock_levels.sku = wanted.sku AND stock_levels.warehouse_id = wanted.warehouse_id
      AND stock_levels.on_hand - stock_levels.reserved >= wanted.quantity
    """
).bindparams(
    bindparam("reserve_skus", type_=postgresql.ARRAY(String)),
    bindparam("reserve_warehouse_ids", type_=postgresql.ARRAY(Uuid)),
    bindparam("reserve_quantities", type_=postgresql.ARRAY(Integer)),
    bindparam("reserve_at", type_=UTCDateTime()),
)


class InsufficientStock(Conflict):
    slug, title = "insufficient-stock", "Insufficient stock"


class StockBelowReserved(Conflict):
    slug, title = "stock-below-reserved", "On hand below reserved"


class WarehouseCodeTaken(Conflict):
    slug, title = "warehouse-code-taken", "Warehouse code already used"


class WarehouseNotFound(NotFound):
    slug, title = "warehouse-not-found", "Warehouse not found"


class UnknownSku(NotFound):
    slug, title = "unknown-sku", "Unknown SKU"


@dataclass(frozen=True, slots=True)
class StockLevelView:
    sku: str
    warehouse: str
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


@dataclass(frozen=True, slots=True)
class SkuStock:
    sku: str
    warehouses: list[StockLevelView]
    low_stock_threshold: int | None = None
    """The SKU's own low-stock threshold; None: the shop's (`stock_low_threshold`)."""

    @property
    def on_hand(self) -> int:
        return sum(level.on_hand for level in self.warehouses)

    @property
    def reserved(self) -> int:
        return sum(level.reserved for level in self.warehouses)

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


# --- reading -----------------------------------------------------------------------------------


def available_of(sku: ColumnElement[str]) -> ColumnElement[int]:
    """Sellable units of the SKU in `sku` across all warehouses (0 without stock rows), as a
    correlated sub-select another domain can put in its own statement: the catalog reads a
    page's variants and their stock in one round trip. One primary-key range scan per SKU."""
    return (
        select(func.coalesce(func.sum(_stock.c.on_hand - _stock.c.reserved), 0))
        .where(_stock.c.sku == sku)
        .scalar_subquery()
    )


async def available_by_sku(session: AsyncSession, skus: Collection[str]) -> dict[str, int]:
    """Sellable units per SKU across all warehouses, in one query; unknown SKUs count 0."""
    wanted = set(skus)
    if not wanted:
        return {}
    rows = await session.execute(
        select(StockLevel.sku, func.sum(StockLevel.on_hand - StockLevel.reserved))
        .where(StockLevel.sku.in_(wanted))
        .group_by(StockLevel.sku)
    )
    found = {sku: int(total or 0) for sku, total in rows}
    return {sku: found.get(sku, 0) for sku in wanted}


async def get_stock(session: AsyncSession, *, sku: str) -> SkuStock:
    rows = await session.execute(
        select(StockLevel.sku, Warehouse.code, StockLevel.on_hand, StockLevel.reserved)
        .join(Warehouse, Warehouse.id == StockLevel.warehouse_id)
        .where(StockLevel.sku == sku)
        .order_by(Warehouse.code)
    )
    levels = [StockLevelView(*row) for row in rows]
    if not levels:
        await _ensure_known_sku(session, sku)
    threshold = await session.scalar(
        select(StockThreshold.low_stock_threshold).where(StockThreshold.sku == sku)
    )
    return SkuStock(sku=sku, warehouses=levels, low_stock_threshold=threshold)


# --- reservations (caller's transaction) --------------------------------------------------------


async def reserve_stock(
    session: AsyncSession,
    *,
    reference: uuid.UUID,
    lines: Sequence[tuple[str, int]],
    near: tuple[float, float] | None = None,
    settings: Settings | None = None,
    writes: WriteBatch | None = None,
) -> None:
    """Reserve every line for `reference`, or nothing: InsufficientStock is raised before any
    row is written. Runs in the caller's transaction and does not commit. Pass `settings` for
    the shop's `stock_low_threshold` (the settings default otherwise). With `writes`, the
    reservation, its allocations and its `StockChanged` (and any `StockLow`) events join the
    caller's batch, which the caller flushes; otherwise they are written before returning.

    Every stock row of every SKU involved is locked in one statement, ordered by (sku,
    warehouse), so two checkouts of overlapping carts queue instead of deadlocking. The
    updates are conditional as well, so even a caller that skipped the lock could not oversell.
    """
    wanted = _totals(lines)
    if not wanted:
        return
    skus = sorted(wanted)
    query = _LOCK_STOCK if is_postgres(session) else _READ_STOCK
    sources: dict[str, list[Source]] = defaultdict(list)
    own_thresholds: dict[str, int] = {}
    for sku, warehouse_id, available, code, threshold in await session.execute(
        query, {"skus": skus}
    ):
        sources[sku].append(Source(warehouse_id, code, int(available)))
        if threshold is not None:
            own_thresholds[sku] = threshold
    distances = (
        await warehouse_distances_km(
            session, near, {source.warehouse_id for line in sources.values() for source in line}
        )
        if near is not None
        else {}
    )

    plans: list[tuple[str, uuid.UUID, int]] = []
    for sku in skus:
        plan = plan_line(sources[sku], wanted[sku], distances)
        if plan is None:
            available = sum(source.available for source in sources[sku])
            raise InsufficientStock(
                f"Only {available} of {sku} available, {wanted[sku]} requested",
                sku=sku,
                requested=wanted[sku],
                available=available,
            )
        plans.extend((sku, warehouse_id, quantity) for warehouse_id, quantity in plan)

    plans.sort()
    batch = writes if writes is not None else WriteBatch()
    now = utcnow()
    await _reserve_rows(session, batch, plans, now)
    batch.insert(
        table_of(StockAllocation),
        [
            {
                "id": new_id(),
                "reference": reference,
                "sku": sku,
                "warehouse_id": warehouse_id,
                "quantity": quantity,
                "state": AllocationState.RESERVED.value,
                "created_at": now,
                "updated_at": now,
            }
            for sku, warehouse_id, quantity in plans
        ],
    )

    shop_threshold = _low_threshold(settings)
    happened: list[object] = []
    for sku in skus:
        threshold = own_thresholds.get(sku, shop_threshold)
        before = sum(source.available for source in sources[sku])
        after = before - wanted[sku]
        # Only the reservation that crosses the threshold alerts, not every one below it.
        if after <= threshold < before:
            happened.append(StockLow(sku=sku, available=after, threshold=threshold))
    happened.append(StockChanged(skus=skus))
    queue_events(batch, happened)
    if writes is None:
        await batch.flush(session)


async def _reserve_rows(
    session: AsyncSession,
    writes: WriteBatch,
    plans: Sequence[tuple[str, uuid.UUID, int]],
    now: datetime,
) -> None:
    """Add each plan's quantity to its stock row's `reserved`, in lock order. The updates are
    conditional on the units still being there: unreachable under the row locks, but if it ever
    happens the caller's rollback undoes the lines already reserved (all or nothing)."""
    if is_postgres(session):
        # One statement for every row, counted, sent with the rest of the caller's writes.
        writes.change(
            _RESERVE_ROWS,
            {
                "reserve_skus": [sku for sku, _, _ in plans],
                "reserve_warehouse_ids": [warehouse_id for _, warehouse_id, _ in plans],
                "reserve_quantities": [quantity for _, _, quantity in plans],
                "reserve_at": now,
            },
            expected_rows=len(plans),
            mismatch=lambda: InsufficientStock("Stock was taken concurrently"),
        )
        return
    for sku, warehouse_id, quantity in plans:
        result = await session.execute(
            update(table_of(StockLevel))
            .where(
                StockLevel.sku == sku,
                StockLevel.warehouse_id == warehouse_id,
                StockLevel.on_hand - StockLevel.reserved >= quantity,
            )
            .values(reserved=StockLevel.reserved + quantity, updated_at=now)
        )
        if affected_rows(result) != 1:
            raise InsufficientStock(f"{sku} was taken concurrently", sku=sku)


async def release_stock(session: AsyncSession, *, reference: uuid.UUID) -> bool:
    """Return the units reserved for `reference` to sale. False when nothing was reserved any
    more (already released or shipped): calling it twice, or racing ship, is harmless."""
    moved = await _settle(session, reference=reference, to=AllocationState.RELEASED)
    for (sku, warehouse_id), quantity in moved:
        await session.execute(
            update(StockLevel)
            .where(StockLevel.sku == sku, StockLevel.warehouse_id == warehouse_id)
            .values(reserved=StockLevel.reserved - quantity)
            .execution_options(synchronize_session=False)
        )
    if moved:
        record_event(session, StockChanged(skus=sorted({sku for (sku, _), _ in moved})))
    return bool(moved)


async def ship_stock(session: AsyncSession, *, reference: uuid.UUID) -> bool:
    """The reserved units of `reference` leave the warehouses: on_hand and reserved both drop,
    so `available` is unchanged. False when nothing was reserved any more."""
    moved = await _settle(session, reference=reference, to=AllocationState.SHIPPED)
    for (sku, warehouse_id), quantity in moved:
        await session.execute(
            update(StockLevel)
            .where(StockLevel.sku == sku, StockLevel.warehouse_id == warehouse_id)
            .values(on_hand=StockLevel.on_hand - quantity, reserved=StockLevel.reserved - quantity)
            .execution_options(synchronize_session=False)
        )
    return bool(moved)


async def _settle(
    session: AsyncSession, *, reference: uuid.UUID, to: AllocationState
) -> list[tuple[tuple[str, uuid.UUID], int]]:
    """Move the reference's reserved allocations to `to`, returning what moved per stock row in
    lock order. The `state = 'reserved'` condition is the idempotency key: a concurrent second
    call waits for the first one's row locks and then matches nothing."""
    result = await session.execute(
        update(StockAllocation)
        .where(
            StockAllocation.reference == reference,
            StockAllocation.state == AllocationState.RESERVED.value,
        )
        .values(state=to.value)
        .returning(StockAllocation.sku, StockAllocation.warehouse_id, StockAllocation.quantity)
        .execution_options(synchronize_session=False)
    )
    per_row: dict[tuple[str, uuid.UUID], int] = defaultdict(int)
    for sku, warehouse_id, quantity in result:
        per_row[(sku, warehouse_id)] += quantity
    return sorted(per_row.items())


def _totals(lines: Iterable[tuple[str, int]]) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for sku, quantity in lines:
        if not 0 < quantity <= MAX_QUANTITY:
            raise InvalidInput(f"Quantity of {sku} must be between 1 and {MAX_QUANTITY}", sku=sku)
        totals[sku] += quantity
    return dict(totals)


def _low_threshold(settings: Settings | None) -> int:
    if settings is not None:
        return settings.stock_low_threshold
    default: int = Settings.model_fields["stock_low_threshold"].default
    return default


# --- staff use cases (own unit of work) ---------------------------------------------------------


async def create_warehouse(
    session: AsyncSession,
    *,
    code: str,
    name: str,
    latitude: float | None = None,
    longitude: float | None = None,
) -> Warehouse:
    warehouse = Warehouse(code=code, name=name, latitude=latitude, longitude=longitude)
    session.add(warehouse)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise WarehouseCodeTaken(f"Warehouse code {code!r} is already used", code=code) from exc
    await session.commit()
    return warehouse


async def set_stock_level(
    session: AsyncSession, *, sku: str, warehouse_code: str, on_hand: int
) -> StockLevelView:
    """Set the units physically on hand (a stock count or a delivery). Refused with 409 when it
    would fall below what is already promised to orders."""
    await _ensure_known_sku(session, sku)
    warehouse_id = await session.scalar(
        select(Warehouse.id).where(Warehouse.code == warehouse_code)
    )
    if warehouse_id is None:
        raise WarehouseNotFound(f"No warehouse with code {warehouse_code!r}", code=warehouse_code)
    await session.execute(
        _insert(session, StockLevel)
        .values(sku=sku, warehouse_id=warehouse_id, on_hand=0, reserved=0)
        .on_conflict_do_nothing(index_elements=["sku", "warehouse_id"])
    )
    result = await session.execute(
        update(StockLevel)
        .where(
            StockLevel.sku == sku,
            StockLevel.warehouse_id == warehouse_id,
            StockLevel.reserved <= on_hand,
        )
        .values(on_hand=on_hand)
        .returning(StockLevel.on_hand, StockLevel.reserved)
        .execution_options(synchronize_session=False)
    )
    row = result.one_or_none()
    if row is None:
        reserved = await session.scalar(
            select(StockLevel.reserved).where(
                StockLevel.sku == sku, StockLevel.warehouse_id == warehouse_id
            )
        )
        raise StockBelowReserved(
            f"{reserved} units of {sku} in {warehouse_code} are reserved for orders; "
            f"on_hand cannot go below that",
            sku=sku,
            warehouse=warehouse_code,
            reserved=reserved,
        )
    record_event(session, StockChanged(skus=[sku]))
    await session.commit()
    return StockLevelView(sku=sku, warehouse=warehouse_code, on_hand=row[0], reserved=row[1])


async def set_low_stock_threshold(
    session: AsyncSession, *, sku: str, threshold: int | None
) -> SkuStock:
    """Give `sku` its own low-stock threshold, or (None) return it to the shop's. Applies from
    the next reservation: `StockLow` is raised when one takes the SKU's available units from
    above the threshold to at or below it."""
    await _ensure_known_sku(session, sku)
    if threshold is None:
        await session.execute(delete(StockThreshold).where(StockThreshold.sku == sku))
    else:
        insert_threshold = _insert(session, StockThreshold).values(
            sku=sku, low_stock_threshold=threshold, updated_at=utcnow()
        )
        await session.execute(
            insert_threshold.on_conflict_do_update(
                index_elements=["sku"],
                set_={"low_stock_threshold": threshold, "updated_at": utcnow()},
            )
        )
    await session.commit()
    return await get_stock(session, sku=sku)


def _insert(session: AsyncSession, model: type[Any]) -> Any:
    dialect = postgresql if is_postgres(session) else sqlite
    statement: Insert = dialect.insert(model)
    return statement


SkuDirectory = Callable[[AsyncSession, Sequence[str]], Awaitable[set[str]]]
"""Which of these SKUs the catalog sells. The catalog provides it (`use_sku_directory`): it
depends on inventory, so inventory asks through this instead of importing it."""

_sku_directory: SkuDirectory | None = None


def use_sku_directory(directory: SkuDirectory) -> None:
    global _sku_directory
    _sku_directory = directory


async def unknown_skus(session: AsyncSession, skus: Sequence[str]) -> list[str]:
    """The SKUs of `skus` the catalog does not sell, in their order."""
    if _sku_directory is None:
        raise RuntimeError("no SKU directory: import shopkeeper.shop.catalog.service first")
    known = await _sku_directory(session, skus)
    return [sku for sku in skus if sku not in known]


async def _ensure_known_sku(session: AsyncSession, sku: str) -> None:
    # Stock is kept only for SKUs the catalog sells (a foreign key says so too); this look-up
    # turns the violation into a clear 404.
    if await unknown_skus(session, [sku]):
        raise UnknownSku(f"No catalog variant has SKU {sku!r}", sku=sku)
