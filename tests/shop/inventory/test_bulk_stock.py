"""set_stock_levels: many stock levels in multi-row upserts, with set_stock_level's rules, on
both databases."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from shopkeeper.core.errors import InvalidInput
from shopkeeper.core.events import OutboxEvent
from shopkeeper.core.runtime import Runtime
from shopkeeper.shop.inventory import service
from shopkeeper.shop.inventory.bulk import set_stock_levels
from shopkeeper.shop.inventory.models import StockLevel, Warehouse
from tests.shop.inventory.conftest import create_product

Levels = dict[tuple[str, str], tuple[int, int]]
# Small chunks, so a few hundred SKUs span several of them.
ROWS = 150


@pytest.fixture
async def skus(runtime: Runtime) -> list[str]:
    """300 catalog SKUs and the warehouses WH-A and WH-B, nothing stocked yet."""
    made = [f"BULK-{n:04d}" for n in range(300)]
    for start in range(0, len(made), 100):
        await create_product(runtime, *made[start : start + 100])
    async with runtime.db.session() as session:
        for code in ("WH-A", "WH-B"):
            await service.create_warehouse(session, code=code, name=code)
    return made


async def _set(runtime: Runtime, levels: list[tuple[str, str, int]]) -> int:
    async with runtime.db.session() as session:
        return await set_stock_levels(session, levels, rows_per_chunk=ROWS)


async def _levels(runtime: Runtime) -> Levels:
    """(sku, warehouse code) -> (on_hand, reserved) of every stock row."""
    async with runtime.db.session() as session:
        rows = await session.execute(
            select(StockLevel.sku, Warehouse.code, StockLevel.on_hand, StockLevel.reserved).join(
                Warehouse, Warehouse.id == StockLevel.warehouse_id
            )
        )
        return {(sku, code): (on_hand, reserved) for sku, code, on_hand, reserved in rows}


async def _stock_events(runtime: Runtime) -> list[list[str]]:
    async with runtime.db.session() as session:
        payloads = await session.scalars(
            select(OutboxEvent.payload)
            .where(OutboxEvent.name == "StockChanged")
            .order_by(OutboxEvent.created_at)
        )
        return [payload["skus"] for payload in payloads]


async def _reserve(runtime: Runtime, sku: str, quantity: int) -> None:
    async with runtime.db.session() as session:
        await service.reserve_stock(session, reference=uuid.uuid4(), lines=[(sku, quantity)])
        await session.commit()


async def test_sets_every_row_and_records_one_event_naming_every_sku(
    runtime: Runtime, skus: list[str]
) -> None:
    levels = [(sku, "WH-A", n % 7) for n, sku in enumerate(skus)]
    levels += [(sku, "WH-B", 100 + n) for n, sku in enumerate(skus)]
    assert await _set(runtime, levels) == 600

    assert await _levels(runtime) == {(sku, code): (on_hand, 0) for sku, code, on_hand in levels}
    assert await _stock_events(runtime) == [sorted(skus)]
    async with runtime.db.session() as session:
        stock = await service.get_stock(session, sku="BULK-0299")
    assert (stock.on_hand, stock.available) == (299 % 7 + 399, 299 % 7 + 399)


async def test_a_second_call_updates_only_the_rows_it_names_and_keeps_reservations(
    runtime: Runtime, skus: list[str]
) -> None:
    await _set(runtime, [(sku, code, 10) for sku in skus for code in ("WH-A", "WH-B")])
    await _reserve(runtime, skus[0], 4)

    assert await _set(runtime, [(sku, "WH-A", 25) for sku in skus[:200]]) == 200

    levels = await _levels(runtime)
    assert len(levels) == 600
    assert all(levels[(sku, "WH-A")][0] == 25 for sku in skus[:200])
    assert all(levels[(sku, "WH-A")] == (10, 0) for sku in skus[200:])
    assert all(levels[(sku, "WH-B")][0] == 10 for sku in skus)
    assert levels[(skus[0], "WH-A")][1] + levels[(skus[0], "WH-B")][1] == 4
    assert len(await _stock_events(runtime)) == 3  # two bulk sets and the reservation


async def test_on_hand_below_reserved_refuses_the_whole_call(
    runtime: Runtime, skus: list[str]
) -> None:
    await _set(runtime, [(sku, "WH-A", 10) for sku in skus])
    # The last SKU: its row is in the last chunk, after the others have been written.
    await _reserve(runtime, skus[-1], 6)
    before, events = await _levels(runtime), await _stock_events(runtime)

    with pytest.raises(service.StockBelowReserved) as refused:
        await _set(runtime, [(sku, "WH-A", 5) for sku in skus] + [(skus[0], "WH-B", 5)])

    assert refused.value.extensions == {
        "sku": skus[-1],
        "warehouse": "WH-A",
        "reserved": 6,
        "on_hand": 5,
    }
    assert await _levels(runtime) == before
    assert await _stock_events(runtime) == events
    # Exactly the reserved units is allowed: nothing left to sell, nothing oversold.
    await _set(runtime, [(skus[-1], "WH-A", 6)])
    assert (await _levels(runtime))[(skus[-1], "WH-A")] == (6, 6)


async def test_unknown_skus_and_warehouses_change_nothing(
    runtime: Runtime, skus: list[str]
) -> None:
    good = [(sku, "WH-A", 3) for sku in skus]

    with pytest.raises(service.UnknownSku) as unknown_sku:
        await _set(runtime, [*good, ("NO-SUCH-SKU", "WH-A", 3)])
    assert unknown_sku.value.extensions == {"sku": "NO-SUCH-SKU"}
    with pytest.raises(service.WarehouseNotFound) as unknown_warehouse:
        await _set(runtime, [*good, (skus[0], "NOWHERE", 3)])
    assert unknown_warehouse.value.extensions == {"code": "NOWHERE"}

    assert await _levels(runtime) == {}
    assert await _stock_events(runtime) == []


@pytest.mark.parametrize(
    "bad",
    [
        ("BULK-0001", "WH-A", -1),
        ("BULK-0001", "WH-A", service.MAX_QUANTITY + 1),
        ("BULK-0000", "WH-B", 4),
    ],
    ids=["negative", "too-many", "same-row-twice"],
)
async def test_invalid_quantities_and_repeated_rows_are_refused(
    runtime: Runtime, skus: list[str], bad: tuple[str, str, int]
) -> None:
    with pytest.raises(InvalidInput):
        await _set(runtime, [(skus[0], "WH-B", 3), (skus[2], "WH-A", 3), bad])
    assert await _levels(runtime) == {}


async def test_nothing_to_set_records_nothing(runtime: Runtime, skus: list[str]) -> None:
    assert await _set(runtime, []) == 0
    assert await _stock_events(runtime) == []
