"""Checkout over HTTP on both databases: totals, reservation, errors, idempotency, visibility."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select, update

from shopkeeper.accounts.liveness import forget
from shopkeeper.accounts.models import User
from shopkeeper.core.messaging.events import OutboxEvent
from shopkeeper.core.runtime import Runtime
from shopkeeper.shop.carts.models import Cart
from shopkeeper.shop.orders.models import Order
from tests.shop.orders.conftest import RecordStatements
from tests.support.shop import (
    ADDRESS,
    PlaceOrder,
    checkout,
    create_cart,
    create_sku,
    make_user,
    problem_slug,
    stock_of,
)


async def test_checkout_reserves_stock_and_snapshots_the_cart(
    client: httpx.AsyncClient,
    staff_headers: dict[str, str],
    customer_headers: dict[str, str],
    runtime: Runtime,
) -> None:
    mug = await create_sku(client, staff_headers, price=1_250, on_hand=10)
    tea = await create_sku(client, staff_headers, price=399, on_hand=5)
    cart_id = await create_cart(client, customer_headers, [(mug, 2), (tea, 3)])

    response = await checkout(client, customer_headers, cart_id)

    assert response.status_code == 201, response.text
    order = response.json()
    assert response.headers["location"] == f"/api/v1/orders/{order['id']}"
    assert re.fullmatch(r"SK-\d{6}", order["number"])
    assert order["status"] == "pending_payment"
    assert order["email"].startswith("user-")
    assert [(line["sku"], line["quantity"]) for line in order["lines"]] == [(mug, 2), (tea, 3)]
    assert order["lines"][0]["name"] == f"Product {mug}"
    assert order["lines"][0]["unit_price"] == {"amount": 1_250, "currency": "USD"}
    assert order["lines"][0]["total"] == {"amount": 2_500, "currency": "USD"}
    assert order["subtotal"] == {"amount": 2_500 + 1_197, "currency": "USD"}
    shipping = runtime.settings.shipping_flat_rate
    assert order["shipping"] == {"amount": shipping, "currency": "USD"}
    assert order["total"]["amount"] == 2_500 + 1_197 + shipping
    assert order["shipping_address"]["city"] == "London"
    assert order["paid_at"] is None
    created = datetime.fromisoformat(order["created_at"])
    expires = datetime.fromisoformat(order["expires_at"])
    assert expires - created == timedelta(seconds=runtime.settings.reservation_ttl_seconds)

    assert (await stock_of(client, staff_headers, mug))["reserved"] == 2
    assert (await stock_of(client, staff_headers, tea))["available"] == 2
    again = await checkout(client, customer_headers, cart_id)
    assert again.status_code == 409
    assert problem_slug(again) == "cart-closed"

    async with runtime.db.session() as session:
        names = (await session.scalars(select(OutboxEvent.name))).all()
    assert "OrderPlaced" in names


async def test_order_numbers_are_distinct_and_increasing(
    client: httpx.AsyncClient,
    staff_headers: dict[str, str],
    customer_headers: dict[str, str],
    place_order: PlaceOrder,
) -> None:
    sku = await create_sku(client, staff_headers)
    numbers = [(await place_order(customer_headers, [(sku, 1)]))["number"] for _ in range(3)]
    values = [int(number.removeprefix("SK-")) for number in numbers]
    assert values == sorted(values) and len(set(values)) == 3


async def test_insufficient_stock_reserves_nothing(
    client: httpx.AsyncClient,
    staff_headers: dict[str, str],
    customer_headers: dict[str, str],
    runtime: Runtime,
) -> None:
    plenty = await create_sku(client, staff_headers, on_hand=10)
    scarce = await create_sku(client, staff_headers, on_hand=3)
    cart_id = await create_cart(client, customer_headers, [(plenty, 4), (scarce, 3)])
    # Someone else takes the scarce units between add-to-cart and checkout.
    other = await make_user(runtime)
    taken = await checkout(client, other, await create_cart(client, other, [(scarce, 2)]))
    assert taken.status_code == 201

    response = await checkout(client, customer_headers, cart_id)

    assert response.status_code == 409
    assert problem_slug(response) == "insufficient-stock"
    assert response.json()["sku"] == scarce
    assert (await stock_of(client, staff_headers, plenty))["reserved"] == 0
    assert (await stock_of(client, staff_headers, scarce))["reserved"] == 2
    listed = await client.get("/api/v1/orders", headers=customer_headers)
    assert listed.json()["items"] == []


async def test_empty_cart_is_refused(
    client: httpx.AsyncClient, customer_headers: dict[str, str]
) -> None:
    cart_id = await create_cart(client, customer_headers, [])
    response = await checkout(client, customer_headers, cart_id)
    assert response.status_code == 409
    assert problem_slug(response) == "cart-empty"


async def test_checkout_needs_an_idempotency_key(
    client: httpx.AsyncClient, staff_headers: dict[str, str], customer_headers: dict[str, str]
) -> None:
    sku = await create_sku(client, staff_headers)
    cart_id = await create_cart(client, customer_headers, [(sku, 1)])
    body = {"cart_id": cart_id, "shipping_address": ADDRESS}
    missing = await client.post("/api/v1/orders", headers=customer_headers, json=body)
    assert missing.status_code == 400
    assert problem_slug(missing) == "idempotency-key-required"
    too_long = await client.post(
        "/api/v1/orders", headers={**customer_headers, "Idempotency-Key": "k" * 256}, json=body
    )
    assert problem_slug(too_long) == "invalid-idempotency-key"
    assert (await stock_of(client, staff_headers, sku))["reserved"] == 0


async def test_a_retry_replays_the_first_answer(
    client: httpx.AsyncClient, staff_headers: dict[str, str], customer_headers: dict[str, str]
) -> None:
    sku = await create_sku(client, staff_headers, on_hand=5)
    cart_id = await create_cart(client, customer_headers, [(sku, 2)])

    first = await checkout(client, customer_headers, cart_id, key="retry-me")
    second = await checkout(client, customer_headers, cart_id, key="retry-me")

    assert first.status_code == second.status_code == 201
    assert second.content == first.content
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert second.headers["location"] == first.headers["location"]
    assert (await stock_of(client, staff_headers, sku))["reserved"] == 2

    reused = await checkout(
        client, customer_headers, cart_id, key="retry-me", email="x@example.com"
    )
    assert reused.status_code == 422
    assert problem_slug(reused) == "idempotency-key-reused"


async def test_keys_are_scoped_per_user(
    client: httpx.AsyncClient,
    staff_headers: dict[str, str],
    customer_headers: dict[str, str],
    runtime: Runtime,
) -> None:
    sku = await create_sku(client, staff_headers)
    other = await make_user(runtime)
    mine = await checkout(
        client, customer_headers, await create_cart(client, customer_headers, [(sku, 1)]), key="k1"
    )
    theirs = await checkout(client, other, await create_cart(client, other, [(sku, 1)]), key="k1")
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]


async def test_a_failed_checkout_is_replayed_too(
    client: httpx.AsyncClient,
    staff_headers: dict[str, str],
    customer_headers: dict[str, str],
    runtime: Runtime,
) -> None:
    sku = await create_sku(client, staff_headers, on_hand=1)
    cart_id = await create_cart(client, customer_headers, [(sku, 1)])
    other = await make_user(runtime)
    assert (await checkout(client, other, await create_cart(client, other, [(sku, 1)]))).is_success

    first = await checkout(client, customer_headers, cart_id, key="k")
    second = await checkout(client, customer_headers, cart_id, key="k")

    assert first.status_code == second.status_code == 409
    assert second.content == first.content
    assert second.headers["idempotent-replayed"] == "true"


async def test_guest_checkout_with_cart_token(
    client: httpx.AsyncClient, staff_headers: dict[str, str]
) -> None:
    sku = await create_sku(client, staff_headers)
    cart = await client.post("/api/v1/carts")
    token = cart.headers["X-Cart-Token"]
    guest = {"X-Cart-Token": token}
    cart_id = cart.json()["id"]
    added = await client.post(
        f"/api/v1/carts/{cart_id}/items", headers=guest, json={"sku": sku, "quantity": 1}
    )
    assert added.status_code == 200

    no_email = await checkout(client, guest, cart_id)
    assert no_email.status_code == 422
    response = await checkout(client, guest, cart_id, email="guest@example.com")

    assert response.status_code == 201, response.text
    order = response.json()
    assert order["email"] == "guest@example.com"
    seen = await client.get(f"/api/v1/orders/{order['id']}", headers=guest)
    assert seen.status_code == 200
    stranger = await client.get(
        f"/api/v1/orders/{order['id']}", headers={"X-Cart-Token": "not-the-token"}
    )
    assert stranger.status_code == 404
    anonymous = await client.get(f"/api/v1/orders/{order['id']}")
    assert anonymous.status_code == 401


async def test_a_deactivated_account_cannot_check_out_and_its_cart_stays_open(
    client: httpx.AsyncClient, staff_headers: dict[str, str], runtime: Runtime
) -> None:
    sku = await create_sku(client, staff_headers, on_hand=5)
    buyer = await make_user(runtime)
    cart_id = await create_cart(client, buyer, [(sku, 1)])
    me = uuid.UUID((await client.get("/api/v1/users/me", headers=buyer)).json()["id"])
    async with runtime.db.session() as session:
        await session.execute(update(User).where(User.id == me).values(is_active=False))
        await session.commit()

    response = await checkout(client, buyer, cart_id)

    assert response.status_code == 404
    assert problem_slug(response) == "user-not-found"
    assert (await stock_of(client, staff_headers, sku))["reserved"] == 0
    async with runtime.db.session() as session:
        status = await session.scalar(select(Cart.status).where(Cart.id == uuid.UUID(cart_id)))
        assert status == "open"
        assert await session.scalar(select(func.count()).select_from(Order)) == 0


@pytest.mark.parametrize("buyer", ["seen-lately", "not-seen-lately"])
async def test_a_checkout_on_postgresql_is_four_statements(
    client: httpx.AsyncClient,
    staff_headers: dict[str, str],
    customer_headers: dict[str, str],
    backend: str,
    record_statements: RecordStatements,
    buyer: str,
) -> None:
    """The round-trip budget of the hottest write path (docs/orders.md#performance): the
    Idempotency-Key claim, the cart's close with its priced lines, the stock rows' lock, and
    every write in one statement (BEGIN and COMMIT are not cursor statements). Also for a buyer
    this process has not seen for a while: whether their account still exists is read with the
    cart's lines, not asked first."""
    if backend != "postgresql":
        pytest.skip("SQLite runs the same writes one statement each")
    skus = [await create_sku(client, staff_headers) for _ in range(3)]
    cart_id = await create_cart(client, customer_headers, [(sku, 1) for sku in skus])
    if buyer == "not-seen-lately":
        me = await client.get("/api/v1/users/me", headers=customer_headers)
        forget(uuid.UUID(me.json()["id"]))  # as if their last request was long ago
    with record_statements() as statements:
        response = await checkout(client, customer_headers, cart_id)

    assert response.status_code == 201, response.text
    assert len(statements) == 4, "\n\n".join(statements)
