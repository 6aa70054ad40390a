"""Voucher limits under concurrent checkouts through two `shopkeeper serve` processes on
PostgreSQL: the limits are conditional updates in the checkout's transaction, so exactly as many
orders as allowed get the voucher, and the others are refused with nothing reserved."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from shopkeeper.core.runtime import Runtime
from shopkeeper.core.settings import Settings
from tests.shop.promotions.test_vouchers import apply, make_voucher, used
from tests.support.shop import ADDRESS, create_cart, create_sku, make_users, stock_of


@pytest.fixture
def postgres_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("cross-process races are proved on PostgreSQL")


def _checkout_request(
    base: str, headers: dict[str, str], cart_id: str, **body: Any
) -> tuple[str, dict[str, str], dict[str, Any]]:
    return (
        f"{base}/api/v1/orders",
        {**headers, "Idempotency-Key": str(uuid.uuid4())},
        {"cart_id": cart_id, "shipping_address": ADDRESS, **body},
    )


async def test_fifty_checkouts_against_a_limit_of_ten_make_ten_discounted_orders(
    postgres_only: None,
    client: httpx.AsyncClient,
    runtime: Runtime,
    settings: Settings,
    server_factory: Any,
    staff_headers: dict[str, str],
) -> None:
    servers = await asyncio.gather(server_factory(settings), server_factory(settings))
    sku = await create_sku(client, staff_headers, price=2_000, on_hand=500)
    voucher = await make_voucher(client, staff_headers, value=2_500, usage_limit=10)
    customers = await make_users(runtime, 50)
    carts = []
    for headers in customers:
        cart_id = await create_cart(client, headers, [(sku, 1)])
        assert (await apply(client, headers, cart_id, voucher["code"])).status_code == 200
        carts.append(cart_id)

    async with httpx.AsyncClient(timeout=60) as http:
        requests = [
            _checkout_request(servers[i % 2], headers, cart_id)
            for i, (headers, cart_id) in enumerate(zip(customers, carts, strict=True))
        ]
        answers = await asyncio.gather(
            *(http.post(url, headers=h, json=body) for url, h, body in requests)
        )

    placed = [a.json() for a in answers if a.status_code == 201]
    refused = [a for a in answers if a.status_code != 201]
    assert len(placed) == 10, [a.text for a in refused[:3]]
    assert all(order["discount"]["amount"] == 500 for order in placed)
    assert all(order["voucher_code"] == voucher["code"] for order in placed)
    assert all(a.status_code == 409 and a.json()["reason"] == "used-up" for a in refused)
    assert await used(client, staff_headers, voucher["id"]) == 10
    # Only the ten placed orders hold stock: the refused checkouts reserved nothing.
    assert (await stock_of(client, staff_headers, sku))["reserved"] == 10


async def test_one_guest_e_mail_racing_many_carts_gets_its_per_customer_limit(
    postgres_only: None,
    client: httpx.AsyncClient,
    settings: Settings,
    server_factory: Any,
    staff_headers: dict[str, str],
) -> None:
    servers = await asyncio.gather(server_factory(settings), server_factory(settings))
    sku = await create_sku(client, staff_headers, price=1_000, on_hand=500)
    voucher = await make_voucher(client, staff_headers, value=1_000, per_customer_limit=3)
    guests = []
    for _ in range(20):
        cart = await client.post("/api/v1/carts")
        token = {"X-Cart-Token": cart.headers["X-Cart-Token"]}
        cart_id = cart.json()["id"]
        await client.post(
            f"/api/v1/carts/{cart_id}/items", headers=token, json={"sku": sku, "quantity": 1}
        )
        assert (await apply(client, token, cart_id, voucher["code"])).status_code == 200
        guests.append((token, cart_id))

    async with httpx.AsyncClient(timeout=60) as http:
        requests = [
            _checkout_request(servers[i % 2], token, cart_id, email="same@example.com")
            for i, (token, cart_id) in enumerate(guests)
        ]
        answers = await asyncio.gather(
            *(http.post(url, headers=h, json=body) for url, h, body in requests)
        )
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(201) == 3, statuses
    assert all(a.json()["reason"] == "per-customer-limit" for a in answers if a.status_code != 201)
    assert await used(client, staff_headers, voucher["id"]) == 3
