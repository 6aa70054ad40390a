"""`shopkeeper seed`: a browsable demo catalog with stock, created once."""

from __future__ import annotations

import io

import httpx
from rich.console import Console
from sqlalchemy import func, select

from shopkeeper.core.events import OutboxEvent
from shopkeeper.core.runtime import Runtime
from shopkeeper.core.settings import Settings
from shopkeeper.shop.catalog.models import Variant
from shopkeeper.shop.catalog.seed import WAREHOUSES, seed_demo_catalog
from shopkeeper.shop.inventory.models import StockLevel


async def test_seed_builds_a_stocked_catalog_once_with_if_empty(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    console = Console(file=io.StringIO())
    created = await seed_demo_catalog(settings, products=30, if_empty=True, console=console)
    assert created == 30
    assert await seed_demo_catalog(settings, products=30, if_empty=True, console=console) == 0

    categories = (await client.get("/api/v1/categories")).json()
    roots = [c for c in categories if c["parent_id"] is None]
    assert {c["slug"] for c in roots} >= {"clothing", "home-kitchen"}
    assert len(categories) > len(roots)
    page = (await client.get("/api/v1/products?limit=100")).json()
    assert len(page["items"]) == 30
    assert len({item["slug"] for item in page["items"]}) == 30
    assert all(item["variants"] and item["category_id"] for item in page["items"])
    assert all(v["available"] > 0 for item in page["items"] for v in item["variants"])
    assert (await client.get("/api/v1/products?category=clothing")).json()["items"] or (
        await client.get("/api/v1/products?category=home-kitchen")
    ).json()["items"]


async def test_seed_stocks_every_sku_it_creates(settings: Settings, runtime: Runtime) -> None:
    # 1,200 products make about 3,000 SKUs: past the 2,000 SKUs the seed used to stop stocking
    # at, and several stock batches.
    console = Console(file=io.StringIO())
    assert await seed_demo_catalog(settings, products=1200, if_empty=False, console=console) == 1200

    async with runtime.db.session() as session:
        variants = set(await session.scalars(select(Variant.sku)))
        available = dict(
            (
                await session.execute(
                    select(StockLevel.sku, func.sum(StockLevel.on_hand - StockLevel.reserved))
                    .group_by(StockLevel.sku)
                    .having(func.count() == len(WAREHOUSES))
                )
            )
            .tuples()
            .all()
        )
        events = list(
            await session.scalars(
                select(OutboxEvent.payload).where(OutboxEvent.name == "StockChanged")
            )
        )
    assert len(variants) > 2000
    assert available.keys() == variants
    assert all(units > 0 for units in available.values())
    # Cached pages learn about the stock: every SKU is named by one of a few batch events.
    assert len(events) < len(variants) / 500
    assert sorted(sku for payload in events for sku in payload["skus"]) == sorted(variants)
