"""Editing variants one at a time: add, change, archive; what customers, carts and orders see."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from shopkeeper.core.runtime import Runtime
from shopkeeper.core.settings import Settings
from tests.conftest import REDIS_URL, create_staff
from tests.support.shop import (
    PlaceOrder,
    create_cart,
    create_product,
    create_sku,
    problem_slug,
    stock_of,
)


def usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD"}


async def test_staff_adds_a_variant_and_it_is_listed(
    client: httpx.AsyncClient, staff_headers: dict[str, str]
) -> None:
    product = await create_product(client, staff_headers, "Notebook")
    url = f"/api/v1/products/{product['id']}"
    await client.get(url)  # cached before the change
    await client.get("/api/v1/products")
    body = {"sku": "NOTE-A5", "name": "A5", "price": usd(450), "weight_grams": 300}
    added = await client.post(f"{url}/variants", json=body, headers=staff_headers)
    assert added.status_code == 201, added.text
    assert added.json() == {
        "id": added.json()["id"],
        "sku": "NOTE-A5",
        "name": "A5",
        "price": usd(450),
        "attributes": {},
        "available": 0,
        "weight_grams": 300,
    }
    shown = (await client.get(url)).json()
    assert [v["sku"] for v in shown["variants"]][-1] == "NOTE-A5"
    listed = (await client.get("/api/v1/products?sort=price")).json()["items"]
    assert [v["sku"] for v in listed[0]["variants"]][-1] == "NOTE-A5"
    cheapest = (await client.get("/api/v1/products?max_price=500")).json()["items"]
    assert [item["id"] for item in cheapest] == [product["id"]]


async def test_adding_refuses_taken_skus_other_currencies_and_unknown_products(
    client: httpx.AsyncClient, staff_headers: dict[str, str]
) -> None:
    product = await create_product(client, staff_headers, "Pen", skus=2)
    url = f"/api/v1/products/{product['id']}/variants"
    other_sku = product["variants"][1]["sku"]
    assert (
        await client.delete(f"/api/v1/variants/{other_sku}", headers=staff_headers)
    ).status_code == 204

    taken = await client.post(
        url, json={"sku": product["variants"][0]["sku"], "price": usd(1)}, headers=staff_headers
    )
    assert taken.status_code == 409 and problem_slug(taken) == "sku-taken"
    # An archived variant keeps its SKU: old orders name it.
    archived = await client.post(
        url, json={"sku": other_sku, "price": usd(1)}, headers=staff_headers
    )
    assert archived.status_code == 409 and problem_slug(archived) == "sku-taken"
    euros = await client.post(
        url,
        json={"sku": "PEN-EUR", "price": {"amount": 1, "currency": "EUR"}},
        headers=staff_headers,
    )
    assert euros.status_code == 422 and problem_slug(euros) == "currency-not-accepted"
    missing = await client.post(
        "/api/v1/products/00000000-0000-7000-8000-000000000000/variants",
        json={"sku": "NOWHERE", "price": usd(1)},
        headers=staff_headers,
    )
    assert missing.status_code == 404 and problem_slug(missing) == "product-not-found"
    invalid = await client.post(
        url, json={"sku": "has space", "price": usd(1)}, headers=staff_headers
    )
    assert invalid.status_code == 422 and problem_slug(invalid) == "validation-error"


async def test_a_price_change_reaches_pages_and_carts_but_not_placed_orders(
    client: httpx.AsyncClient,
    staff_headers: dict[str, str],
    customer_headers: dict[str, str],
    place_order: PlaceOrder,
) -> None:
    sku = await create_sku(client, staff_headers, price=1_000)
    order = await place_order(customer_headers, [(sku, 2)])
    cart_id = await create_cart(client, customer_headers, [(sku, 1)])
    product = (await client.get("/api/v1/products")).json()["items"][0]
    detail_url = f"/api/v1/products/{product['id']}"
    etag = (await client.get(detail_url)).headers["etag"]

    patched = await client.patch(
        f"/api/v1/variants/{sku}",
        json={
            "price": usd(1_500),
            "name": "Large",
            "attributes": {"size": "L"},
            "weight_grams": 900,
        },
        headers=staff_headers,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["price"] == usd(1_500)
    assert (
        patched.json()["name"],
        patched.json()["attributes"],
        patched.json()["weight_grams"],
    ) == ("Large", {"size": "L"}, 900)

    fresh = await client.get(detail_url, headers={"If-None-Match": etag})
    assert fresh.status_code == 200
    assert fresh.json()["variants"][0]["price"] == usd(1_500)
    listed = (await client.get("/api/v1/products?min_price=1200")).json()["items"]
    assert [item["id"] for item in listed] == [product["id"]]
    cart = (await client.get(f"/api/v1/carts/{cart_id}", headers=customer_headers)).json()
    assert cart["items"][0]["unit_price"] == usd(1_500)

    placed = (await client.get(f"/api/v1/orders/{order['id']}", headers=customer_headers)).json()
    assert placed["lines"][0]["unit_price"] == usd(1_000)
    assert placed["total"] == order["total"]


async def test_patching_refuses_nulls_other_currencies_and_unknown_skus(
    client: httpx.AsyncClient, staff_headers: dict[str, str], customer_headers: dict[str, str]
) -> None:
    product = await create_product(client, staff_headers, "Cup")
    sku = product["variants"][0]["sku"]
    url = f"/api/v1/variants/{sku}"
    null_price = await client.patch(url, json={"price": None}, headers=staff_headers)
    assert null_price.status_code == 422 and problem_slug(null_price) == "validation-error"
    euros = await client.patch(
        url, json={"price": {"amount": 5, "currency": "EUR"}}, headers=staff_headers
    )
    assert euros.status_code == 422 and problem_slug(euros) == "currency-not-accepted"
    unknown = await client.patch(
        "/api/v1/variants/NO-SUCH-SKU", json={"name": "x"}, headers=staff_headers
    )
    assert unknown.status_code == 404 and problem_slug(unknown) == "variant-not-found"
    assert (await client.patch(url, json={"name": "x"})).status_code == 401
    forbidden = await client.patch(url, json={"name": "x"}, headers=customer_headers)
    assert forbidden.status_code == 403 and problem_slug(forbidden) == "permission-denied"
    # Clearing the name is allowed: the product's name stands alone then.
    cleared = await client.patch(url, json={"name": None}, headers=staff_headers)
    assert cleared.status_code == 200 and cleared.json()["name"] is None


async def test_archiving_hides_a_variant_keeps_the_last_one_and_old_orders(
    client: httpx.AsyncClient,
    staff_headers: dict[str, str],
    customer_headers: dict[str, str],
    place_order: PlaceOrder,
) -> None:
    kept = await create_sku(client, staff_headers, price=2_000)
    product = (await client.get("/api/v1/products")).json()["items"][0]
    gone = "CHEAP-ONE"
    added = await client.post(
        f"/api/v1/products/{product['id']}/variants",
        json={"sku": gone, "price": usd(500)},
        headers=staff_headers,
    )
    assert added.status_code == 201
    warehouse = (await stock_of(client, staff_headers, kept))["warehouses"][0]["warehouse"]
    stocked = await client.put(
        f"/api/v1/stock/{gone}/{warehouse}", json={"on_hand": 3}, headers=staff_headers
    )
    assert stocked.status_code == 200, stocked.text
    order = await place_order(customer_headers, [(kept, 1)])
    cart_id = await create_cart(client, customer_headers, [(gone, 1)])
    assert (await client.get("/api/v1/products?max_price=600")).json()["items"] != []

    archived = await client.delete(f"/api/v1/variants/{gone}", headers=staff_headers)
    assert archived.status_code == 204
    detail = (await client.get(f"/api/v1/products/{product['id']}")).json()
    assert [v["sku"] for v in detail["variants"]] == [kept]
    assert (await client.get("/api/v1/products?max_price=600")).json()["items"] == []
    assert (await client.get("/api/v1/products?sort=price")).json()["items"][0]["id"] == product[
        "id"
    ]
    again = await client.delete(f"/api/v1/variants/{gone}", headers=staff_headers)
    assert again.status_code == 404 and problem_slug(again) == "variant-not-found"
    cart = (await client.get(f"/api/v1/carts/{cart_id}", headers=customer_headers)).json()
    assert [(item["sku"], item["archived"]) for item in cart["items"]] == [(gone, True)]

    last = await client.delete(f"/api/v1/variants/{kept}", headers=staff_headers)
    assert last.status_code == 422 and problem_slug(last) == "last-variant"
    placed = await client.get(f"/api/v1/orders/{order['id']}", headers=customer_headers)
    assert placed.json()["lines"][0]["sku"] == kept


async def test_concurrent_archives_never_leave_a_product_without_variants(
    client: httpx.AsyncClient, staff_headers: dict[str, str]
) -> None:
    product = await create_product(client, staff_headers, "Pair", skus=2)
    skus = [v["sku"] for v in product["variants"]]
    answers = await asyncio.gather(
        *(client.delete(f"/api/v1/variants/{sku}", headers=staff_headers) for sku in skus * 3)
    )
    assert sorted(a.status_code for a in answers).count(204) == 1
    assert {problem_slug(a) for a in answers if a.status_code != 204} <= {
        "last-variant",
        "variant-not-found",
    }
    detail = (await client.get(f"/api/v1/products/{product['id']}")).json()
    assert len(detail["variants"]) == 1


@pytest.mark.usefixtures("fresh_redis_namespace")
async def test_catalog_edits_on_one_server_are_visible_at_once_on_another(
    runtime: Runtime,
    client: httpx.AsyncClient,
    settings_factory: Callable[..., Settings],
    server_factory: Callable[..., Any],
) -> None:
    staff = await create_staff(runtime, client)
    product = await create_product(client, staff, "Traveller mug", skus=2)
    first_sku, second_sku = (v["sku"] for v in product["variants"])
    settings = settings_factory(redis_url=REDIS_URL)
    first, second = await asyncio.gather(server_factory(settings), server_factory(settings))
    path = f"/api/v1/products/{product['id']}"

    async def both_cached() -> None:
        for base in (first, second):
            assert (await http.get(base + path)).status_code == 200
            assert (await http.get(base + "/api/v1/products")).status_code == 200

    async with httpx.AsyncClient(timeout=10) as http:
        await both_cached()
        patched = await http.patch(
            f"{first}/api/v1/variants/{first_sku}", json={"price": usd(4_321)}, headers=staff
        )
        assert patched.status_code == 200, patched.text
        shown = (await http.get(second + path)).json()
        assert shown["variants"][0]["price"] == usd(4_321)
        listed = (await http.get(second + "/api/v1/products")).json()["items"][0]
        assert listed["variants"][0]["price"] == usd(4_321)

        await both_cached()
        added = await http.post(
            f"{second}{path}/variants", json={"sku": "TRAVEL-XL", "price": usd(9)}, headers=staff
        )
        assert added.status_code == 201, added.text
        assert [v["sku"] for v in (await http.get(first + path)).json()["variants"]][
            -1
        ] == "TRAVEL-XL"

        await both_cached()
        assert (
            await http.delete(f"{first}/api/v1/variants/{second_sku}", headers=staff)
        ).status_code == 204
        listed = (await http.get(second + "/api/v1/products")).json()["items"][0]
        assert second_sku not in [v["sku"] for v in listed["variants"]]

        # Categories too: a rename and an archive on one server, read at once on the other.
        made = await http.post(f"{first}/api/v1/categories", json={"name": "Mugs"}, headers=staff)
        category = made.json()
        for base in (first, second):
            assert (await http.get(base + "/api/v1/categories")).json() == [category]
        renamed = await http.patch(
            f"{second}/api/v1/categories/{category['id']}", json={"name": "Cups"}, headers=staff
        )
        assert renamed.status_code == 200
        assert [c["name"] for c in (await http.get(first + "/api/v1/categories")).json()] == [
            "Cups"
        ]
        archived = await http.delete(f"{first}/api/v1/categories/{category['id']}", headers=staff)
        assert archived.status_code == 204
        assert (await http.get(second + "/api/v1/categories")).json() == []
