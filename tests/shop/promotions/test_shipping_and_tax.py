"""Shipping zones and methods, and tax rates, through the API: the flat rate while no zone
exists, a required method that must serve the address and weight once one does, `free_over`
after the discount, and tax on `subtotal - discount + shipping`."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
from sqlalchemy import select

from shopkeeper.core.mail import OutboundMail
from shopkeeper.core.runtime import Runtime
from tests.shop.promotions.test_vouchers import FLAT, apply, assert_totals, make_voucher, usd
from tests.support.events import drain_events
from tests.support.shop import checkout, create_cart, problem_slug


async def weighted_sku(
    client: httpx.AsyncClient, staff: dict[str, str], *, price: int, grams: int
) -> str:
    sku = f"W-{secrets.token_hex(4).upper()}"
    made = await client.post(
        "/api/v1/products",
        headers=staff,
        json={
            "name": f"Product {sku}",
            "variants": [{"sku": sku, "price": usd(price), "weight_grams": grams}],
        },
    )
    assert made.status_code == 201, made.text
    await client.post("/api/v1/warehouses", headers=staff, json={"code": "WHS", "name": "S"})
    stocked = await client.put(f"/api/v1/stock/{sku}/WHS", headers=staff, json={"on_hand": 100})
    assert stocked.status_code == 200, stocked.text
    return sku


async def zone(
    client: httpx.AsyncClient, staff: dict[str, str], countries: list[str], *methods: dict[str, Any]
) -> list[dict[str, Any]]:
    made = await client.post(
        "/api/v1/shipping-zones", headers=staff, json={"name": "Zone", "countries": countries}
    )
    assert made.status_code == 201, made.text
    assert made.json()["countries"] == sorted(countries)
    created = []
    for method in methods:
        answer = await client.post(
            f"/api/v1/shipping-zones/{made.json()['id']}/methods", headers=staff, json=method
        )
        assert answer.status_code == 201, answer.text
        created.append(answer.json())
    return created


async def test_without_zones_the_flat_rate_applies(
    client: httpx.AsyncClient, staff_headers: dict[str, str], customer_headers: dict[str, str]
) -> None:
    sku = await weighted_sku(client, staff_headers, price=1_000, grams=100)
    cart_id = await create_cart(client, customer_headers, [(sku, 1)])
    listed = await client.get(
        f"/api/v1/carts/{cart_id}/shipping-methods",
        params={"country": "GB"},
        headers=customer_headers,
    )
    assert listed.status_code == 200 and listed.json() == []
    order = (await checkout(client, customer_headers, cart_id)).json()
    assert order["shipping"] == usd(FLAT) and order["shipping_method"] is None


async def test_methods_serve_countries_and_weights_and_checkout_requires_one(
    client: httpx.AsyncClient, staff_headers: dict[str, str], customer_headers: dict[str, str]
) -> None:
    standard, express = await zone(
        client,
        staff_headers,
        ["GB", "IE"],
        {"name": "Standard", "price": usd(400), "free_over": usd(5_000)},
        {"name": "Express", "price": usd(1_500), "max_weight_grams": 1_000},
    )
    (abroad,) = await zone(client, staff_headers, ["FR"], {"name": "Europe", "price": usd(900)})
    heavy = await weighted_sku(client, staff_headers, price=1_000, grams=600)
    cart_id = await create_cart(client, customer_headers, [(heavy, 2)])  # 1200 g
    listed = await client.get(
        f"/api/v1/carts/{cart_id}/shipping-methods",
        params={"country": "gb"},
        headers=customer_headers,
    )
    assert listed.json() == [{"id": standard["id"], "name": "Standard", "price": usd(400)}]

    missing = await checkout(client, customer_headers, cart_id)
    assert missing.status_code == 422 and problem_slug(missing) == "shipping-method-required"
    for method in (express, abroad):
        refused = await checkout(client, customer_headers, cart_id, shipping_method_id=method["id"])
        assert refused.status_code == 409, refused.text
        assert problem_slug(refused) == "shipping-method-unavailable"
    placed = await checkout(client, customer_headers, cart_id, shipping_method_id=standard["id"])
    assert placed.status_code == 201, placed.text
    order = placed.json()
    assert order["shipping"] == usd(400)
    assert order["shipping_method"] == {"id": standard["id"], "name": "Standard"}
    assert_totals(order)


async def test_free_over_compares_with_the_discounted_subtotal(
    client: httpx.AsyncClient, staff_headers: dict[str, str], customer_headers: dict[str, str]
) -> None:
    (standard,) = await zone(
        client,
        staff_headers,
        ["GB"],
        {"name": "Standard", "price": usd(400), "free_over": usd(5_000)},
    )
    sku = await weighted_sku(client, staff_headers, price=2_600, grams=10)
    cart_id = await create_cart(client, customer_headers, [(sku, 2)])  # 5200
    listed = await client.get(
        f"/api/v1/carts/{cart_id}/shipping-methods",
        params={"country": "GB"},
        headers=customer_headers,
    )
    assert listed.json()[0]["price"] == usd(0)
    voucher = await make_voucher(client, staff_headers, kind="fixed", value=300)
    await apply(client, customer_headers, cart_id, voucher["code"])
    listed = await client.get(
        f"/api/v1/carts/{cart_id}/shipping-methods",
        params={"country": "GB"},
        headers=customer_headers,
    )
    assert listed.json()[0]["price"] == usd(400)  # 4900 < 5000
    order = (
        await checkout(client, customer_headers, cart_id, shipping_method_id=standard["id"])
    ).json()
    assert order["discount"] == usd(300) and order["shipping"] == usd(400)
    assert order["total"] == usd(5_200 - 300 + 400)


async def test_tax_is_on_the_discounted_amount_plus_shipping_rounded_half_even(
    client: httpx.AsyncClient, staff_headers: dict[str, str], customer_headers: dict[str, str]
) -> None:
    rate = await client.put(
        "/api/v1/tax-rates/gb", headers=staff_headers, json={"rate_bps": 2_000, "name": "VAT"}
    )
    assert rate.status_code == 200 and rate.json() == {
        "country": "GB",
        "rate_bps": 2_000,
        "name": "VAT",
    }
    sku = await weighted_sku(client, staff_headers, price=1_001, grams=0)
    voucher = await make_voucher(client, staff_headers, kind="fixed", value=3)
    cart_id = await create_cart(client, customer_headers, [(sku, 1)])
    await apply(client, customer_headers, cart_id, voucher["code"])
    order = (await checkout(client, customer_headers, cart_id)).json()
    # (1001 - 3 + 500) * 20 % = 299.6 -> 300
    assert order["tax"] == usd(300)
    assert order["total"] == usd(1_001 - 3 + FLAT + 300)
    assert_totals(order)
    elsewhere = await create_cart(client, customer_headers, [(sku, 1)])
    order = (
        await checkout(
            client,
            customer_headers,
            elsewhere,
            shipping_address={
                "name": "A",
                "line1": "1 Rue",
                "city": "Paris",
                "postal_code": "75001",
                "country": "FR",
            },
        )
    ).json()
    assert order["tax"] == usd(0)  # a country without a rate pays none
    forbidden = await client.put(
        "/api/v1/tax-rates/GB", headers=customer_headers, json={"rate_bps": 1}
    )
    assert forbidden.status_code == 403


async def test_the_confirmation_e_mail_shows_the_breakdown(
    client: httpx.AsyncClient,
    staff_headers: dict[str, str],
    customer_headers: dict[str, str],
    runtime: Runtime,
) -> None:
    await client.put("/api/v1/tax-rates/GB", headers=staff_headers, json={"rate_bps": 1_000})
    (method,) = await zone(client, staff_headers, ["GB"], {"name": "Courier", "price": usd(700)})
    sku = await weighted_sku(client, staff_headers, price=2_000, grams=0)
    voucher = await make_voucher(client, staff_headers, code="MAIL5", kind="fixed", value=500)
    cart_id = await create_cart(client, customer_headers, [(sku, 1)])
    await apply(client, customer_headers, cart_id, voucher["code"])
    order = (
        await checkout(client, customer_headers, cart_id, shipping_method_id=method["id"])
    ).json()
    assert order["tax"] == usd(220) and order["total"] == usd(2_000 - 500 + 700 + 220)
    await drain_events(runtime)
    await drain_events(runtime)
    async with runtime.db.session() as session:
        mail = (
            await session.scalars(
                select(OutboundMail).where(OutboundMail.template == "order_confirmation")
            )
        ).one()
    for text in (mail.text_body, mail.html_body or ""):
        assert "MAIL5" in text and "-5.00 USD" in text
        assert "Courier" in text and "7.00 USD" in text
        assert "2.20 USD" in text and "24.20 USD" in text
