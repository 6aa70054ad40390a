"""Listing: filters, sorting, cursor walks that survive inserts, search on both databases."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from shopkeeper.core.db import new_id, utcnow
from shopkeeper.core.runtime import Runtime
from shopkeeper.shop.catalog.models import Product
from shopkeeper.shop.catalog.search import search_key
from tests.shop.catalog.conftest import create_category, create_product


async def _names(client: httpx.AsyncClient, query: str) -> list[str]:
    response = await client.get(f"/api/v1/products?{query}")
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["items"]]


async def _walk(
    client: httpx.AsyncClient, query: str, between_pages: Any = None
) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    page = 0
    while True:
        url = f"/api/v1/products?{query}" + (f"&cursor={cursor}" if cursor else "")
        body = (await client.get(url)).json()
        seen.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return seen
        if between_pages is not None:
            await between_pages(page)
        page += 1


async def test_category_filter_includes_subcategories_by_id_or_slug(
    client: httpx.AsyncClient, staff_headers: dict[str, str]
) -> None:
    clothing = await create_category(client, staff_headers, "Clothing")
    shirts = await create_category(client, staff_headers, "Shirts", parent_id=clothing["id"])
    polos = await create_category(client, staff_headers, "Polos", parent_id=shirts["id"])
    kitchen = await create_category(client, staff_headers, "Kitchen")
    await create_product(client, staff_headers, "Jacket", category_id=clothing["id"])
    await create_product(client, staff_headers, "Oxford shirt", category_id=shirts["id"])
    await create_product(client, staff_headers, "Pique polo", category_id=polos["id"])
    await create_product(client, staff_headers, "Mug", category_id=kitchen["id"])
    await create_product(client, staff_headers, "Loose thing")

    assert await _names(client, "category=clothing&sort=name") == [
        "Jacket",
        "Oxford shirt",
        "Pique polo",
    ]
    assert await _names(client, f"category={shirts['id']}&sort=name") == [
        "Oxford shirt",
        "Pique polo",
    ]
    assert await _names(client, "category=kitchen") == ["Mug"]
    assert await _names(client, "category=no-such-category") == []
    categories = (await client.get("/api/v1/categories")).json()
    assert {c["slug"]: c["parent_id"] for c in categories}["polos"] == shirts["id"]


async def test_price_and_attribute_filters(
    client: httpx.AsyncClient, staff_headers: dict[str, str]
) -> None:
    await create_product(
        client,
        staff_headers,
        "Red shirt",
        price=1500,
        attributes={"material": "cotton"},
        variant_attributes=[{"color": "red", "size": 42}],
    )
    await create_product(
        client,
        staff_headers,
        "Blue shirt",
        price=2500,
        skus=2,
        attributes={"material": "linen"},
        variant_attributes=[{"color": "blue"}, {"color": "red"}],
    )
    await create_product(client, staff_headers, "Plain mug", price=800)

    assert await _names(client, "min_price=1000&sort=name") == ["Blue shirt", "Red shirt"]
    assert await _names(client, "max_price=1500&sort=name") == ["Plain mug", "Red shirt"]
    # Blue shirt's second variant costs 2600: inside the range although its cheapest is not.
    assert await _names(client, "min_price=2550&max_price=2700") == ["Blue shirt"]
    assert await _names(client, "attr.color=red&sort=name") == ["Blue shirt", "Red shirt"]
    assert await _names(client, "attr.material=cotton") == ["Red shirt"]
    assert await _names(client, "attr.color=red&attr.material=linen") == ["Blue shirt"]
    assert await _names(client, "attr.size=42") == ["Red shirt"]
    assert await _names(client, "attr.color=green") == []
    bad = await client.get("/api/v1/products?attr.bad%20name=x")
    assert bad.status_code == 422
    assert bad.json()["type"].endswith("/invalid-query")


async def test_sort_orders(client: httpx.AsyncClient, staff_headers: dict[str, str]) -> None:
    for name, price in (("Banana", 300), ("Apple", 500), ("Cherry", 100)):
        await create_product(client, staff_headers, name, price=price)
    assert await _names(client, "sort=price") == ["Cherry", "Banana", "Apple"]
    assert await _names(client, "sort=-price") == ["Apple", "Banana", "Cherry"]
    assert await _names(client, "sort=name") == ["Apple", "Banana", "Cherry"]
    assert await _names(client, "sort=-created_at") == ["Cherry", "Apple", "Banana"]
    assert await _names(client, "") == ["Cherry", "Apple", "Banana"]


@pytest.mark.parametrize("sort", ["name", "price", "-price", "-created_at"])
async def test_walking_all_pages_while_products_are_added_has_no_duplicates_or_gaps(
    client: httpx.AsyncClient, staff_headers: dict[str, str], sort: str
) -> None:
    originals = [
        (await create_product(client, staff_headers, f"Item {n:02d}", price=1000 + 10 * n))["id"]
        for n in range(13)
    ]

    async def insert(page: int) -> None:
        # Sorts before and after any cursor: "Item 00a" / price 5 and "Item 99" / price 99999.
        await create_product(client, staff_headers, f"Item 0{page}a", price=5 + page)
        await create_product(client, staff_headers, f"Item 99{page}", price=99_999 + page)

    seen = await _walk(client, f"sort={sort}&limit=4", insert)
    ids = [item["id"] for item in seen]
    assert len(ids) == len(set(ids)), "a product appeared twice"
    assert set(originals) <= set(ids), "a product that existed throughout was skipped"
    keys = {
        "name": lambda item: (item["name"],),
        "price": lambda item: (item["variants"][0]["price"]["amount"],),
        "-price": lambda item: (-item["variants"][0]["price"]["amount"],),
    }
    if sort in keys:
        ordered = [keys[sort](item) for item in seen]
        assert ordered == sorted(ordered)


async def test_cursor_of_another_sort_is_rejected(
    client: httpx.AsyncClient, staff_headers: dict[str, str]
) -> None:
    for n in range(3):
        await create_product(client, staff_headers, f"P{n}")
    cursor = (await client.get("/api/v1/products?sort=name&limit=1")).json()["next_cursor"]
    response = await client.get(f"/api/v1/products?sort=price&limit=1&cursor={cursor}")
    assert response.status_code == 422
    assert response.json()["type"].endswith("/invalid-cursor")


async def test_search_ranks_name_matches_above_description_matches(
    client: httpx.AsyncClient, staff_headers: dict[str, str]
) -> None:
    await create_product(
        client, staff_headers, "Travel bag", description="Fits a folded shirt or two"
    )
    await create_product(client, staff_headers, "Classic T-Shirt", description="Cotton")
    await create_product(client, staff_headers, "Leather boots", description="Waterproof")
    assert await _names(client, "q=shirt") == ["Classic T-Shirt", "Travel bag"]
    assert await _names(client, "q=boots") == ["Leather boots"]
    assert await _names(client, "q=leather%20boots") == ["Leather boots"]
    assert await _names(client, "q=shirt&sort=name") == ["Classic T-Shirt", "Travel bag"]
    assert await _names(client, "q=submarine") == []


async def test_search_pages_by_relevance_without_duplicates(
    client: httpx.AsyncClient, staff_headers: dict[str, str]
) -> None:
    for n in range(7):
        await create_product(client, staff_headers, f"Lamp {n}", description="lamp " * n)
    seen = await _walk(client, "q=lamp&limit=3")
    assert sorted(item["name"] for item in seen) == [f"Lamp {n}" for n in range(7)]


async def test_typo_still_finds_the_product_on_postgresql(
    client: httpx.AsyncClient, staff_headers: dict[str, str], backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("typo tolerance is pg_trgm's; embedded SQLite FTS5 matches words only")
    await create_product(client, staff_headers, "Classic T-Shirt")
    await create_product(client, staff_headers, "Leather boots")
    await create_product(client, staff_headers, "Coffee mug")
    assert await _names(client, "q=tshrit") == ["Classic T-Shirt"]
    assert await _names(client, "q=lether") == ["Leather boots"]
    assert (await _names(client, "q=cofee%20mgu"))[:1] == ["Coffee mug"]


async def test_sqlite_full_text_matches_word_prefixes(
    client: httpx.AsyncClient, staff_headers: dict[str, str], backend: str
) -> None:
    if backend != "sqlite":
        pytest.skip("FTS5 is the embedded (SQLite) search")
    await create_product(client, staff_headers, "Espresso machine", description="Fifteen bar")
    await create_product(client, staff_headers, "Milk frother")
    assert await _names(client, "q=espr") == ["Espresso machine"]
    assert await _names(client, "q=fifteen") == ["Espresso machine"]
    assert await _names(client, "q=%22milk%22%20(*") == ["Milk frother"]


async def test_listed_products_carry_all_their_variants_as_their_detail_does(
    client: httpx.AsyncClient, staff_headers: dict[str, str]
) -> None:
    # Pages of 2 over products of 3 variants: every page boundary falls between products,
    # never between one product's variants, and each item reads as the product's detail.
    created = [
        await create_product(
            client,
            staff_headers,
            f"Lantern {n}",
            price=1000 + n,
            skus=3,
            variant_attributes=[{"size": "S"}, {"size": "M"}, {"size": "L"}],
        )
        for n in range(5)
    ]
    for query in ("sort=price&limit=2", "q=lantern&limit=2"):
        listed = await _walk(client, query)
        assert sorted(item["name"] for item in listed) == sorted(p["name"] for p in created)
        for item in listed:
            detail = (await client.get(f"/api/v1/products/{item['id']}")).json()
            assert item == detail
            assert [v["attributes"]["size"] for v in item["variants"]] == ["S", "M", "L"]


async def test_a_product_without_variants_is_listed_with_none(
    runtime: Runtime, client: httpx.AsyncClient, staff_headers: dict[str, str]
) -> None:
    # The API never creates one, but a bulk import (like the seed) can.
    now = utcnow()
    async with runtime.db.session() as session:
        await session.execute(
            insert(Product),
            [
                {
                    "id": new_id(),
                    "slug": "bare-lantern",
                    "name": "Bare Lantern",
                    "description": "",
                    "attributes": {},
                    "min_price": 0,
                    "search_key": search_key("Bare Lantern"),
                    "created_at": now,
                    "updated_at": now,
                }
            ],
        )
        await session.commit()
    await create_product(client, staff_headers, "Lantern", skus=2)
    for query in ("sort=name", "q=lantern"):
        items = (await client.get(f"/api/v1/products?{query}")).json()["items"]
        variants = {item["name"]: len(item["variants"]) for item in items}
        assert variants == {"Bare Lantern": 0, "Lantern": 2}
