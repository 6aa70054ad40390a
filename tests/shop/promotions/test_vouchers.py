"""Vouchers through the API: staff manage them, carts show what they take off, checkout counts
their use and refuses when they no longer apply, and an order that ends unpaid gives it back."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

import httpx

from shopkeeper.core.db import utcnow
from shopkeeper.core.runtime import Runtime
from shopkeeper.shop.orders.jobs import expire_reservations
from tests.shop.orders.test_expiry import run_out
from tests.support.shop import (
    checkout,
    create_cart,
    create_category,
    create_sku,
    problem_slug,
    stock_of,
)

FLAT = 500  # SHOPKEEPER_SHIPPING_FLAT_RATE's default


def usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD"}


async def make_voucher(
    client: httpx.AsyncClient, staff: dict[str, str], **fields: Any
) -> dict[str, Any]:
    body = {"code": f"V{secrets.token_hex(4).upper()}", "kind": "percentage", "value": 1000}
    body.update(fields)
    response = await client.post("/api/v1/vouchers", headers=staff, json=body)
    assert response.status_code == 201, response.text
    voucher: dict[str, Any] = response.json()
    return voucher


async def apply(
    client: httpx.AsyncClient, headers: dict[str, str], cart_id: str, code: str
) -> httpx.Response:
    return await client.post(
        f"/api/v1/carts/{cart_id}/voucher", headers=headers, json={"code": code}
    )


async def used(client: httpx.AsyncClient, staff: dict[str, str], voucher_id: str) -> int:
    response = await client.get(f"/api/v1/vouchers/{voucher_id}", headers=staff)
    assert response.status_code == 200, response.text
    return int(response.json()["used"])


def assert_totals(order: dict[str, Any]) -> None:
    total = (
        order["subtotal"]["amount"]
        - order["discount"]["amount"]
        + order["shipping"]["amount"]
        + order["tax"]["amount"]
    )
    assert order["total"]["amount"] == total
    assert order["total"]["amount"] >= 0


async def test_staff_manage_vouchers(
    client: httpx.AsyncClient, staff_headers: dict[str, str], customer_headers: dict[str, str]
) -> None:
    voucher = await make_voucher(
        client, staff_headers, code="summer10", min_subtotal=usd(2000), usage_limit=5
    )
    assert voucher["code"] == "SUMMER10"
    assert voucher["used"] == 0 and voucher["min_subtotal"] == usd(2000)
    taken = await client.post(
        "/api/v1/vouchers",
        headers=staff_headers,
        json={"code": "Summer10", "kind": "fixed", "value": 1},
    )
    assert taken.status_code == 409 and problem_slug(taken) == "voucher-code-taken"
    patched = await client.patch(
        f"/api/v1/vouchers/{voucher['id']}", headers=staff_headers, json={"usage_limit": 7}
    )
    assert patched.status_code == 200 and patched.json()["usage_limit"] == 7
    listed = await client.get("/api/v1/vouchers", headers=staff_headers)
    assert [each["code"] for each in listed.json()] == ["SUMMER10"]
    bad = await client.post(
        "/api/v1/vouchers",
        headers=staff_headers,
        json={"code": "X", "kind": "percentage", "value": 10_001},
    )
    assert bad.status_code == 422
    forbidden = await client.get("/api/v1/vouchers", headers=customer_headers)
    assert forbidden.status_code == 403
    assert (await client.get("/api/v1/vouchers")).status_code == 401


async def test_a_percentage_voucher_is_shown_on_the_cart_and_frozen_on_the_order(
    client: httpx.AsyncClient, staff_headers: dict[str, str], customer_headers: dict[str, str]
) -> None:
    sku = await create_sku(client, staff_headers, price=1_005)
    voucher = await make_voucher(client, staff_headers, value=1_250)  # 12.5 %
    cart_id = await create_cart(client, customer_headers, [(sku, 3)])
    applied = await apply(client, customer_headers, cart_id, voucher["code"].lower())
    assert applied.status_code == 200, applied.text
    # 3015 * 12.5 % = 376.875 -> 377
    assert applied.json()["voucher_code"] == voucher["code"]
    assert applied.json()["discount"] == usd(377)
    assert await used(client, staff_headers, voucher["id"]) == 0  # applying is not a use

    response = await checkout(client, customer_headers, cart_id)
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["discount"] == usd(377) and order["voucher_code"] == voucher["code"]
    assert order["tax"] == usd(0) and order["shipping_method"] is None
    assert order["total"] == usd(3015 - 377 + FLAT)
    assert_totals(order)
    assert await used(client, staff_headers, voucher["id"]) == 1


async def test_fixed_and_free_shipping_never_exceed_what_they_apply_to(
    client: httpx.AsyncClient, staff_headers: dict[str, str], customer_headers: dict[str, str]
) -> None:
    sku = await create_sku(client, staff_headers, price=300)
    fixed = await make_voucher(client, staff_headers, kind="fixed", value=10_000)
    cart_id = await create_cart(client, customer_headers, [(sku, 2)])
    assert (await apply(client, customer_headers, cart_id, fixed["code"])).json()[
        "discount"
    ] == usd(600)
    order = (await checkout(client, customer_headers, cart_id)).json()
    assert order["total"] == usd(FLAT)
    assert_totals(order)

    free = await make_voucher(client, staff_headers, kind="free_shipping", value=0)
    cart_id = await create_cart(client, customer_headers, [(sku, 1)])
    assert (await apply(client, customer_headers, cart_id, free["code"])).json()["discount"] == usd(
        FLAT
    )
    order = (await checkout(client, customer_headers, cart_id)).json()
    assert order["discount"] == usd(FLAT) and order["total"] == usd(300)
    assert_totals(order)


async def test_refusals_say_why(
    client: httpx.AsyncClient, staff_headers: dict[str, str], customer_headers: dict[str, str]
) -> None:
    sku = await create_sku(client, staff_headers, price=1_000)
    cart_id = await create_cart(client, customer_headers, [(sku, 1)])
    now = utcnow()
    cases = {
        "expired": {"ends_at": (now - timedelta(hours=1)).isoformat()},
        "not-started": {"starts_at": (now + timedelta(hours=1)).isoformat()},
        "min-subtotal": {"min_subtotal": usd(1_001)},
        "used-up": {"usage_limit": 0},
    }
    for reason, fields in cases.items():
        voucher = await make_voucher(client, staff_headers, **fields)
        refused = await apply(client, customer_headers, cart_id, voucher["code"])
        assert refused.status_code == 409, refused.text
        assert problem_slug(refused) == "voucher-not-applicable"
        assert refused.json()["reason"] == reason
    missing = await apply(client, customer_headers, cart_id, "NO-SUCH-CODE")
    assert missing.status_code == 404 and problem_slug(missing) == "voucher-not-found"
    # min_subtotal compares with >=
    exact = await make_voucher(client, staff_headers, min_subtotal=usd(1_000))
    assert (await apply(client, customer_headers, cart_id, exact["code"])).status_code == 200


async def test_categories_include_their_sub_categories(
    client: httpx.AsyncClient, staff_headers: dict[str, str], customer_headers: dict[str, str]
) -> None:
    clothes = await create_category(client, staff_headers, "Clothes")
    shirts = await create_category(client, staff_headers, "Shirts", parent_id=clothes["id"])
    books = await create_category(client, staff_headers, "Books")
    shirt = await create_sku(client, staff_headers, price=2_000)
    book = await create_sku(client, staff_headers, price=1_000)
    for sku, category in ((shirt, shirts), (book, books)):
        await _categorise(client, staff_headers, sku, category["id"])
    voucher = await make_voucher(client, staff_headers, value=5_000, category_ids=[clothes["id"]])
    only_books = await create_cart(client, customer_headers, [(book, 1)])
    refused = await apply(client, customer_headers, only_books, voucher["code"])
    assert refused.status_code == 409 and refused.json()["reason"] == "no-eligible-items"
    await client.delete(f"/api/v1/carts/{only_books}/items/{book}", headers=customer_headers)
    both = await create_cart(client, customer_headers, [(book, 1), (shirt, 1)])
    assert both == only_books  # a user has one open cart
    applied = await apply(client, customer_headers, both, voucher["code"])
    assert applied.status_code == 200 and applied.json()["discount"] == usd(1_000)


async def _categorise(
    client: httpx.AsyncClient, staff: dict[str, str], sku: str, category_id: str
) -> None:
    found = await client.get("/api/v1/products", params={"q": sku})
    products = [p for p in found.json()["items"] if any(v["sku"] == sku for v in p["variants"])]
    patched = await client.patch(
        f"/api/v1/products/{products[0]['id']}", headers=staff, json={"category_id": category_id}
    )
    assert patched.status_code == 200, patched.text


async def test_a_used_up_voucher_refuses_checkout_and_reserves_nothing(
    client: httpx.AsyncClient,
    staff_headers: dict[str, str],
    customer_headers: dict[str, str],
    runtime: Runtime,
) -> None:
    sku = await create_sku(client, staff_headers, price=1_000, on_hand=10)
    voucher = await make_voucher(client, staff_headers, usage_limit=1)
    first = await create_cart(client, customer_headers, [(sku, 1)])
    assert (await apply(client, customer_headers, first, voucher["code"])).status_code == 200
    # Another customer's cart took the voucher too, and checks out first.
    from tests.support.shop import make_user

    other = await make_user(runtime)
    second = await create_cart(client, other, [(sku, 2)])
    assert (await apply(client, other, second, voucher["code"])).status_code == 200
    assert (await checkout(client, other, second)).status_code == 201
    before = await stock_of(client, staff_headers, sku)

    refused = await checkout(client, customer_headers, first)
    assert refused.status_code == 409, refused.text
    assert problem_slug(refused) == "voucher-not-applicable"
    assert refused.json()["reason"] == "used-up"
    assert await stock_of(client, staff_headers, sku) == before
    cart = (await client.get(f"/api/v1/carts/{first}", headers=customer_headers)).json()
    assert cart["status"] == "open" and cart["voucher_code"] == voucher["code"]
    assert cart["discount"] == usd(0)

    removed = await client.delete(f"/api/v1/carts/{first}/voucher", headers=customer_headers)
    assert removed.status_code == 200 and removed.json()["voucher_code"] is None
    order = (await checkout(client, customer_headers, first)).json()
    assert order["discount"] == usd(0) and order["voucher_code"] is None


async def test_an_expired_or_cancelled_order_gives_its_use_back(
    client: httpx.AsyncClient,
    staff_headers: dict[str, str],
    customer_headers: dict[str, str],
    runtime: Runtime,
) -> None:
    sku = await create_sku(client, staff_headers, price=1_000)
    voucher = await make_voucher(client, staff_headers, usage_limit=1, per_customer_limit=1)
    cart_id = await create_cart(client, customer_headers, [(sku, 1)])
    await apply(client, customer_headers, cart_id, voucher["code"])
    order = (await checkout(client, customer_headers, cart_id)).json()
    assert await used(client, staff_headers, voucher["id"]) == 1

    await run_out(runtime, order["id"])
    await expire_reservations(runtime)
    assert await used(client, staff_headers, voucher["id"]) == 0
    await expire_reservations(runtime)  # a second run changes nothing
    assert await used(client, staff_headers, voucher["id"]) == 0

    cart_id = await create_cart(client, customer_headers, [(sku, 1)])
    assert (await apply(client, customer_headers, cart_id, voucher["code"])).status_code == 200
    order = (await checkout(client, customer_headers, cart_id)).json()
    assert order["voucher_code"] == voucher["code"]
    assert await used(client, staff_headers, voucher["id"]) == 1
    cancelled = await client.post(f"/api/v1/orders/{order['id']}/cancel", headers=customer_headers)
    assert cancelled.status_code == 200, cancelled.text
    assert await used(client, staff_headers, voucher["id"]) == 0


async def test_the_per_customer_limit_counts_guests_by_e_mail(
    client: httpx.AsyncClient, staff_headers: dict[str, str]
) -> None:
    sku = await create_sku(client, staff_headers, price=1_000)
    voucher = await make_voucher(client, staff_headers, per_customer_limit=1)

    async def guest_checkout(email: str) -> httpx.Response:
        cart = await client.post("/api/v1/carts")
        token = {"X-Cart-Token": cart.headers["X-Cart-Token"]}
        cart_id = cart.json()["id"]
        await client.post(
            f"/api/v1/carts/{cart_id}/items", headers=token, json={"sku": sku, "quantity": 1}
        )
        assert (await apply(client, token, cart_id, voucher["code"])).status_code == 200
        return await checkout(client, token, cart_id, email=email)

    assert (await guest_checkout("guest@example.com")).status_code == 201
    again = await guest_checkout("Guest@Example.com")
    assert again.status_code == 409 and again.json()["reason"] == "per-customer-limit"
    assert (await guest_checkout("other@example.com")).status_code == 201


async def test_the_usage_limit_cannot_drop_below_the_uses(
    client: httpx.AsyncClient, staff_headers: dict[str, str], customer_headers: dict[str, str]
) -> None:
    sku = await create_sku(client, staff_headers, price=1_000)
    voucher = await make_voucher(client, staff_headers, usage_limit=3)
    cart_id = await create_cart(client, customer_headers, [(sku, 1)])
    await apply(client, customer_headers, cart_id, voucher["code"])
    assert (await checkout(client, customer_headers, cart_id)).status_code == 201
    lowered = await client.patch(
        f"/api/v1/vouchers/{voucher['id']}", headers=staff_headers, json={"usage_limit": 0}
    )
    assert lowered.status_code == 422 and problem_slug(lowered) == "invalid-voucher"
    assert lowered.json()["used"] == 1
    closed = await client.patch(
        f"/api/v1/vouchers/{voucher['id']}", headers=staff_headers, json={"usage_limit": 1}
    )
    assert closed.status_code == 200 and closed.json()["used"] == 1
