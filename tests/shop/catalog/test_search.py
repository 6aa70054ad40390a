"""Search on PostgreSQL when the words match nothing: the query's words are corrected against
the words of product names (search_words, kept by triggers) and the corrections searched."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from shopkeeper.core.db import new_id, utcnow
from shopkeeper.core.runtime import Runtime
from shopkeeper.shop.catalog.models import Product
from shopkeeper.shop.catalog.search import search_key
from tests.shop.catalog.conftest import create_product


@pytest.fixture(autouse=True)
def _postgres_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("typo correction is pg_trgm's; embedded SQLite FTS5 matches words only")


async def _search(client: httpx.AsyncClient, query: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/products?{query}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _names(client: httpx.AsyncClient, query: str) -> list[str]:
    return [item["name"] for item in (await _search(client, query))["items"]]


async def test_a_typo_ranks_name_matches_above_description_matches(
    client: httpx.AsyncClient, staff_headers: dict[str, str]
) -> None:
    await create_product(
        client, staff_headers, "Travel bag", description="Room for a T-Shirt or two"
    )
    await create_product(client, staff_headers, "Classic T-Shirt", description="Cotton")
    await create_product(client, staff_headers, "Leather boots", description="Waterproof")
    assert await _names(client, "q=tshrit") == ["Classic T-Shirt", "Travel bag"]
    assert await _names(client, "q=lether%20bots") == ["Leather boots"]


async def test_the_nearer_spelling_ranks_first_and_far_ones_do_not_match(
    client: httpx.AsyncClient, staff_headers: dict[str, str]
) -> None:
    await create_product(client, staff_headers, "Desk Lamp")
    await create_product(client, staff_headers, "Lambswool Scarf")
    await create_product(client, staff_headers, "Canvas Sneaker")
    await create_product(client, staff_headers, "Bluetooth Speaker")
    # "lamb" is all of "lambswool" (similarity 1) and three of the five trigrams of "lamp".
    assert await _names(client, "q=lamb") == ["Lambswool Scarf", "Desk Lamp"]
    # "speaker" shares too little with "sneker" (about 0.29) to count as its correction.
    assert await _names(client, "q=sneker") == ["Canvas Sneaker"]
    assert await _names(client, "q=xqzvw") == []


async def test_words_of_new_and_renamed_products_are_known_at_once(
    client: httpx.AsyncClient, staff_headers: dict[str, str]
) -> None:
    product = await create_product(client, staff_headers, "Quilted Parka")
    assert await _names(client, "q=parkka") == ["Quilted Parka"]
    response = await client.patch(
        f"/api/v1/products/{product['id']}", json={"name": "Quilted Anorak"}, headers=staff_headers
    )
    assert response.status_code == 200, response.text
    assert await _names(client, "q=anorrak") == ["Quilted Anorak"]


async def test_bulk_inserted_products_are_found_by_a_typo(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    # The seed inserts products a thousand at a time, bypassing the use cases: the trigger on
    # the statement, not application code, must record their words.
    now = utcnow()
    rows = [
        {
            "id": new_id(),
            "slug": f"{name.lower().replace(' ', '-')}",
            "name": name,
            "description": "",
            "attributes": {},
            "min_price": 1000,
            "search_key": search_key(name),
            "created_at": now,
            "updated_at": now,
        }
        for name in ("Enamel Colander", "Copper Kettle")
    ]
    async with runtime.db.session() as session:
        await session.execute(insert(Product), rows)
        await session.commit()
    assert await _names(client, "q=colandr") == ["Enamel Colander"]
    assert await _names(client, "q=kettel") == ["Copper Kettle"]


async def test_walking_a_corrected_search_visits_each_match_once_in_rank_order(
    client: httpx.AsyncClient, staff_headers: dict[str, str]
) -> None:
    for n in range(7):
        await create_product(client, staff_headers, f"Lamp {n}", description="lamp " * n)
    await create_product(client, staff_headers, "Lambswool Scarf")
    seen: list[str] = []
    cursor: str | None = None
    while True:
        suffix = f"&cursor={cursor}" if cursor else ""
        page = await _search(client, "q=lamb&limit=3" + suffix)
        seen.extend(item["name"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen[0] == "Lambswool Scarf"
    assert sorted(seen[1:]) == [f"Lamp {n}" for n in range(7)]
    # More occurrences of the word rank higher (ts_rank), so the lamps come most-described first.
    assert seen[1:3] == ["Lamp 6", "Lamp 5"]
