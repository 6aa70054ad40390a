"""Guests pay the order they checked out with the cart's `X-Cart-Token`, like a signed-in owner;
nobody else sees that order's payments."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx

from shopkeeper.core.runtime import Runtime
from shopkeeper.core.settings import Settings
from tests.shop.orders.conftest import checkout, create_sku, problem_slug
from tests.shop.payments.conftest import order_status, payment_of, start_payment
from tests.shop.payments.helpers import (
    deliver,
    mails,
    paid_transitions,
    refund_headers,
    sandbox_callback,
)

GUEST_EMAIL = "guest-buyer@example.com"


async def guest_token(client: httpx.AsyncClient) -> dict[str, str]:
    cart = await client.post("/api/v1/carts")
    assert cart.status_code == 201, cart.text
    return {"X-Cart-Token": cart.headers["X-Cart-Token"]}


async def guest_order(
    client: httpx.AsyncClient, staff_headers: dict[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """A `pending_payment` order checked out by a guest, and the guest's headers."""
    sku = await create_sku(client, staff_headers, price=1_500)
    cart = await client.post("/api/v1/carts")
    assert cart.status_code == 201, cart.text
    guest = {"X-Cart-Token": cart.headers["X-Cart-Token"]}
    added = await client.post(
        f"/api/v1/carts/{cart.json()['id']}/items", headers=guest, json={"sku": sku, "quantity": 2}
    )
    assert added.status_code == 200, added.text
    placed = await checkout(client, guest, cart.json()["id"], email=GUEST_EMAIL)
    assert placed.status_code == 201, placed.text
    return placed.json(), guest


async def test_guest_pays_their_order_and_it_becomes_paid(
    client: httpx.AsyncClient,
    runtime: Runtime,
    staff_headers: dict[str, str],
    drained: Any,
) -> None:
    order, guest = await guest_order(client, staff_headers)
    payment = await start_payment(client, guest, order["id"], "sandbox")
    assert payment["order_id"] == order["id"] and payment["status"] == "pending"
    assert payment["amount"] == {"amount": 3_000 + order["shipping"]["amount"], "currency": "USD"}
    assert (await payment_of(client, guest, payment["id"]))["status"] == "pending"

    accepted = await deliver(client, "sandbox", *sandbox_callback(payment))
    assert accepted.status_code == 200, accepted.text
    assert await order_status(client, guest, order["id"]) == "paid"
    assert (await payment_of(client, guest, payment["id"]))["status"] == "succeeded"
    await drained()
    assert await mails(runtime, "payment_received") == [GUEST_EMAIL]
    # The guest reaches the sandbox endpoint too: the payment is simply no longer pending.
    again = await client.post(f"/api/v1/payments/{payment['id']}/sandbox/succeed", headers=guest)
    assert again.status_code == 409 and problem_slug(again) == "conflict"
    # Refunds stay with staff.
    refund = await client.post(
        f"/api/v1/payments/{payment['id']}/refunds", headers=refund_headers(guest), json={}
    )
    assert refund.status_code == 401
    assert (await payment_of(client, guest, payment["id"]))["status"] == "succeeded"


async def test_guest_plays_the_sandbox_buyer_over_http(
    client: httpx.AsyncClient,
    runtime: Runtime,
    settings: Settings,
    server_factory: Any,
    staff_headers: dict[str, str],
) -> None:
    server = await server_factory(settings)
    async with httpx.AsyncClient(base_url=server, timeout=30) as http:
        order, guest = await guest_order(http, staff_headers)
        payment = await start_payment(http, guest, order["id"], "sandbox")
        assert payment["action"]["type"] == "none"
        asked = await http.post(f"/api/v1/payments/{payment['id']}/sandbox/succeed", headers=guest)
        assert asked.status_code == 202, asked.text
        deadline = time.monotonic() + 20
        status = "pending_payment"
        while status != "paid" and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            status = await order_status(http, guest, order["id"])
        assert status == "paid"
        assert (await payment_of(http, guest, payment["id"]))["status"] == "succeeded"
    assert await paid_transitions(runtime, order["id"]) == 1


async def test_only_the_guest_holding_the_token_sees_the_payment(
    client: httpx.AsyncClient,
    staff_headers: dict[str, str],
    customer_headers: dict[str, str],
) -> None:
    order, guest = await guest_order(client, staff_headers)
    other_guest = await guest_token(client)
    outsiders = [other_guest, customer_headers, {"X-Cart-Token": "not-a-cart-token"}]
    for outsider in outsiders:
        started = await client.post(
            f"/api/v1/orders/{order['id']}/payments",
            headers={**outsider, "Idempotency-Key": str(uuid.uuid4())},
            json={"provider": "sandbox"},
        )
        assert started.status_code == 404 and problem_slug(started) == "order-not-found"

    payment = await start_payment(client, guest, order["id"], "sandbox")
    for outsider in outsiders:
        read = await client.get(f"/api/v1/payments/{payment['id']}", headers=outsider)
        assert read.status_code == 404 and problem_slug(read) == "payment-not-found"
        played = await client.post(
            f"/api/v1/payments/{payment['id']}/sandbox/succeed", headers=outsider
        )
        assert played.status_code == 404 and problem_slug(played) == "payment-not-found"

    anonymous = [
        await client.post(
            f"/api/v1/orders/{order['id']}/payments",
            headers={"Idempotency-Key": str(uuid.uuid4())},
            json={"provider": "sandbox"},
        ),
        await client.get(f"/api/v1/payments/{payment['id']}"),
        await client.post(f"/api/v1/payments/{payment['id']}/sandbox/succeed"),
    ]
    assert [response.status_code for response in anonymous] == [401, 401, 401]
    assert (await payment_of(client, staff_headers, payment["id"]))["status"] == "pending"
    assert await order_status(client, guest, order["id"]) == "pending_payment"


async def test_guest_retry_with_the_same_key_replays_the_payment(
    client: httpx.AsyncClient, staff_headers: dict[str, str], customer_headers: dict[str, str]
) -> None:
    order, guest = await guest_order(client, staff_headers)
    url = f"/api/v1/orders/{order['id']}/payments"
    headers = {**guest, "Idempotency-Key": "guest-pays-once"}
    first = await client.post(url, headers=headers, json={"provider": "sandbox"})
    replay = await client.post(url, headers=headers, json={"provider": "sandbox"})
    assert first.status_code == replay.status_code == 201, first.text
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    assert first.headers["Location"] == replay.headers["Location"]
    reused = await client.post(url, headers=headers, json={"provider": "stripe"})
    assert reused.status_code == 422 and problem_slug(reused) == "idempotency-key-reused"
    # The key belongs to this guest's token: anyone else with it gets their own answer.
    for outsider in (await guest_token(client), customer_headers):
        foreign = await client.post(
            url, headers={**outsider, "Idempotency-Key": "guest-pays-once"},
            json={"provider": "sandbox"},
        )  # fmt: skip
        assert foreign.status_code == 404 and "Idempotent-Replayed" not in foreign.headers
    fresh_key = await client.post(
        url, headers={**guest, "Idempotency-Key": "another"}, json={"provider": "sandbox"}
    )
    assert fresh_key.status_code == 409 and problem_slug(fresh_key) == "payment-in-progress"
    assert fresh_key.json()["payment_id"] == first.json()["id"]
