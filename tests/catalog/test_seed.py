"""`shopkeeper seed`: a browsable demo catalog with stock, created once."""

from __future__ import annotations

import io

import httpx
from rich.console import Console

from shopkeeper.catalog.seed import seed_demo_catalog
from shopkeeper.core.settings import Settings


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
    assert any(v["available"] > 0 for item in page["items"] for v in item["variants"])
    assert (await client.get("/api/v1/products?category=clothing")).json()["items"] or (
        await client.get("/api/v1/products?category=home-kitchen")
    ).json()["items"]
