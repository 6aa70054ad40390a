"""reserve_stock / release_stock / ship_stock at the service level, on both databases."""

from __future__ import annotations

import uuid

from shopkeeper.core.runtime import Runtime
from shopkeeper.inventory import service
from tests.inventory.conftest import StockFactory

PARIS = (48.8566, 2.3522)
BERLIN = (52.52, 13.405)
MADRID = (40.4168, -3.7038)


async def _reserve(
    runtime: Runtime,
    reference: uuid.UUID,
    lines: list[tuple[str, int]],
    near: tuple[float, float] | None = None,
) -> None:
    async with runtime.db.session() as session:
        await service.reserve_stock(session, reference=reference, lines=lines, near=near)
        await session.commit()


async def _stock(runtime: Runtime, sku: str) -> dict[str, tuple[int, int]]:
    async with runtime.db.session() as session:
        levels = await service.get_stock(session, sku=sku)
    return {level.warehouse: (level.on_hand, level.reserved) for level in levels.warehouses}


async def test_reserve_takes_the_nearest_warehouse_that_can_fill_the_line(
    runtime: Runtime, stock: StockFactory
) -> None:
    await stock("SKU-A", {"BER": 10, "MAD": 10}, coords={"BER": BERLIN, "MAD": MADRID})
    await _reserve(runtime, uuid.uuid4(), [("SKU-A", 3)], near=PARIS)
    await _reserve(runtime, uuid.uuid4(), [("SKU-A", 2)], near=(41.0, -4.0))
    assert await _stock(runtime, "SKU-A") == {"BER": (10, 3), "MAD": (10, 2)}
