"""Inventory fixtures: warehouses and stock made through the service, as staff would."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from shopkeeper.core.runtime import Runtime
from shopkeeper.inventory import service

StockFactory = Callable[..., Awaitable[None]]


@pytest.fixture
def stock(runtime: Runtime) -> StockFactory:
    """`await stock(sku, {"WH1": 5, ...}, coords={"WH1": (lat, lon)})` sets on-hand units,
    creating the warehouses it has not seen yet."""
    created: set[str] = set()

    async def put(
        sku: str,
        levels: dict[str, int],
        coords: dict[str, tuple[float, float]] | None = None,
    ) -> None:
        async with runtime.db.session() as session:
            for code, on_hand in levels.items():
                if code not in created:
                    latitude, longitude = (coords or {}).get(code, (None, None))
                    await service.create_warehouse(
                        session, code=code, name=code, latitude=latitude, longitude=longitude
                    )
                    created.add(code)
                await service.set_stock_level(
                    session, sku=sku, warehouse_code=code, on_hand=on_hand
                )

    return put
