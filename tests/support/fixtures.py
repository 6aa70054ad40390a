"""Fixtures shared by every test directory (registered by tests/conftest.py). One meaning each."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from shopkeeper.core.runtime import Runtime
from shopkeeper.shop.inventory import service
from tests.support.shop import (
    OrderFactory,
    PlaceOrder,
    StockFactory,
    checkout,
    create_cart,
    create_sku,
    insert_product,
    make_user,
)


@pytest.fixture
async def customer_headers(runtime: Runtime) -> dict[str, str]:
    return await make_user(runtime)


@pytest.fixture
async def staff_headers(runtime: Runtime) -> dict[str, str]:
    return await make_user(runtime, staff=True)


@pytest.fixture
def place_order(client: httpx.AsyncClient) -> PlaceOrder:
    """`await place_order(headers, [(sku, qty), ...])` -> the created order (201 asserted)."""

    async def place(headers: dict[str, str], items: list[tuple[str, int]]) -> dict[str, Any]:
        cart_id = await create_cart(client, headers, items)
        response = await checkout(client, headers, cart_id)
        assert response.status_code == 201, response.text
        order: dict[str, Any] = response.json()
        return order

    return place


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
            await insert_product(runtime, sku)
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


@pytest.fixture
def new_order(client: httpx.AsyncClient, staff_headers: dict[str, str]) -> OrderFactory:
    """`await new_order(customer_headers, price=...)` -> a `pending_payment` order (dict)."""

    async def make(headers: dict[str, str], *, price: int = 1_250, quantity: int = 2) -> Any:
        sku = await create_sku(client, staff_headers, price=price)
        cart_id = await create_cart(client, headers, [(sku, quantity)])
        response = await checkout(client, headers, cart_id)
        assert response.status_code == 201, response.text
        return response.json()

    return make


@pytest.fixture
async def drained(runtime: Runtime) -> AsyncIterator[Callable[[], Any]]:
    from tests.support.events import drain_events

    async def drain() -> int:
        return await drain_events(runtime)

    yield drain
