"""Inventory fixtures: catalog variants, warehouses and stock made through the services, as
staff would make them."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Awaitable, Callable

import pytest

from shopkeeper.core.runtime import Runtime
from shopkeeper.shop.catalog import service as catalog_service
from shopkeeper.shop.catalog.schemas import ProductIn
from shopkeeper.shop.inventory import service

StockFactory = Callable[..., Awaitable[None]]


async def create_product(
    runtime: Runtime, *skus: str, price: int = 1000, name: str | None = None
) -> uuid.UUID:
    """A catalog product with one variant per SKU, all at `price` minor units."""
    body = ProductIn.model_validate(
        {
            "name": name or f"Product {secrets.token_hex(3)}",
            "variants": [
                {"sku": sku, "price": {"amount": price, "currency": runtime.settings.currency}}
                for sku in skus
            ],
        }
    )
    async with runtime.db.session() as session:
        product = await catalog_service.create_product(
            session, cache=runtime.cache, currency=runtime.settings.currency, body=body
        )
    return uuid.UUID(str(product["id"]))


@pytest.fixture
def stock(runtime: Runtime) -> StockFactory:
    """`await stock(sku, {"WH1": 5, ...}, coords={"WH1": (lat, lon)})` sets on-hand units,
    creating the catalog variant and the warehouses it has not seen yet."""
    warehouses: set[str] = set()
    skus: set[str] = set()

    async def put(
        sku: str,
        levels: dict[str, int],
        coords: dict[str, tuple[float, float]] | None = None,
    ) -> None:
        if sku not in skus:
            await create_product(runtime, sku)
            skus.add(sku)
        async with runtime.db.session() as session:
            for code, on_hand in levels.items():
                if code not in warehouses:
                    latitude, longitude = (coords or {}).get(code, (None, None))
                    await service.create_warehouse(
                        session, code=code, name=code, latitude=latitude, longitude=longitude
                    )
                    warehouses.add(code)
                await service.set_stock_level(
                    session, sku=sku, warehouse_code=code, on_hand=on_hand
                )

    return put
