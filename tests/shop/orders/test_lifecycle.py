"""The order lifecycle over HTTP: visibility, lists, cancel, ship, deliver, the audit trail."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select

from shopkeeper.core.db import utcnow
from shopkeeper.core.messaging.events import OutboxEvent
from shopkeeper.core.runtime import Runtime
from shopkeeper.shop.orders import service
from tests.shop.orders.conftest import RecordStatements
from tests.support.shop import PlaceOrder, create_sku, make_user, problem_slug, stock_of


async def pay(runtime: Runtime, order_id: str) -> bool:
    """What the payments domain does when a payment succeeds."""
    async with runtime.db.session() as session:
        paid = await service.mark_paid(session, order_id=uuid.UUID(order_id), at=utcnow())
        await session.commit()
    return paid


async def test_other_customers_orders_are_not_found(
    client: httpx.AsyncClient,
    staff_headers: dict[str, str],
    customer_headers: dict[str, str],
    place_order: PlaceOrder,
    runtime: Runtime,
) -> None:
    sku = await create_sku(client, staff_headers)
    order = await place_order(customer_headers, [(sku, 1)])
    other = await make_user(runtime)
    url = f"/api/v1/orders/{order['id']}"

    assert (await client.get(url, headers=customer_headers)).status_code == 200
    assert (await client.get(url, headers=staff_headers)).status_code == 200
    hidden = await client.get(url, headers=other)
    assert hidden.status_code == 404 and problem_slug(hidden) == "order-not-found"
    assert (await client.post(f"{url}/cancel", headers=other)).status_code == 404
    assert (await client.get(f"{url}/transitions", headers=other)).status_code == 404
    assert (await client.get("/api/v1/orders", headers=other)).json()["items"] == []
    assert (
        await client.get(f"/api/v1/orders/{uuid.uuid4()}", headers=staff_headers)
    ).status_code == 404
    customer_ship = await client.post(f"{url}/ship", headers=customer_headers)
    assert customer_ship.status_code == 403
    assert (await stock_of(client, staff_headers, sku))["reserved"] == 1


async def test_list_pages_by_cursor_in_two_statements(
    client: httpx.AsyncClient,
    staff_headers: dict[str, str],
    customer_headers: dict[str, str],
    place_order: PlaceOrder,
    record_statements: RecordStatements,
) -> None:
    one, two = await create_sku(client, staff_headers), await create_sku(client, staff_headers)
    placed = [await place_order(customer_headers, [(one, 1), (two, 1)]) for _ in range(5)]

    with record_statements("SELECT") as statements:
        first = await client.get("/api/v1/orders", params={"limit": 3}, headers=customer_headers)
    assert first.status_code == 200
    assert len(statements) == 2, statements
    page = first.json()
    assert [o["id"] for o in page["items"]] == [o["id"] for o in reversed(placed)][:3]
    assert all(len(o["lines"]) == 2 for o in page["items"])

    second = await client.get(
        "/api/v1/orders",
        params={"limit": 3, "cursor": page["next_cursor"]},
        headers=customer_headers,
    )
    rest = second.json()
    assert [o["id"] for o in rest["items"]] == [o["id"] for o in reversed(placed)][3:]
    assert rest["next_cursor"] is None
    bad = await client.get("/api/v1/orders", params={"cursor": "!!"}, headers=customer_headers)
    assert bad.status_code == 422 and problem_slug(bad) == "invalid-cursor"


async def test_staff_list_all_orders_and_filter_by_status(
    client: httpx.AsyncClient,
    staff_headers: dict[str, str],
    customer_headers: dict[str, str],
    place_order: PlaceOrder,
    runtime: Runtime,
) -> None:
    sku = await create_sku(client, staff_headers)
    other = await make_user(runtime)
    mine = await place_order(customer_headers, [(sku, 1)])
    theirs = await place_order(other, [(sku, 1)])
    assert await pay(runtime, theirs["id"])

    everything = await client.get("/api/v1/orders", headers=staff_headers)
    assert {o["id"] for o in everything.json()["items"]} == {mine["id"], theirs["id"]}
    paid = await client.get("/api/v1/orders", params={"status": "paid"}, headers=staff_headers)
    assert [o["id"] for o in paid.json()["items"]] == [theirs["id"]]
    wrong = await client.get("/api/v1/orders", params={"status": "lost"}, headers=staff_headers)
    assert wrong.status_code == 422
    own = await client.get("/api/v1/orders", headers=customer_headers)
    assert [o["id"] for o in own.json()["items"]] == [mine["id"]]


async def test_cancel_releases_the_reservation_once(
    client: httpx.AsyncClient,
    staff_headers: dict[str, str],
    customer_headers: dict[str, str],
    place_order: PlaceOrder,
) -> None:
    sku = await create_sku(client, staff_headers, on_hand=5)
    order = await place_order(customer_headers, [(sku, 3)])
    url = f"/api/v1/orders/{order['id']}/cancel"

    cancelled = await client.post(url, headers=customer_headers)

    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["cancelled_at"] is not None
    stock = await stock_of(client, staff_headers, sku)
    assert (stock["reserved"], stock["available"]) == (0, 5)
    twice = await client.post(url, headers=customer_headers)
    assert twice.status_code == 409 and problem_slug(twice) == "invalid-transition"
    assert (await stock_of(client, staff_headers, sku))["available"] == 5


async def test_cancelling_a_paid_order_asks_payments_for_a_refund(
    client: httpx.AsyncClient,
    staff_headers: dict[str, str],
    customer_headers: dict[str, str],
    place_order: PlaceOrder,
    runtime: Runtime,
) -> None:
    sku = await create_sku(client, staff_headers, on_hand=5)
    unpaid = await place_order(customer_headers, [(sku, 1)])
    paid = await place_order(customer_headers, [(sku, 2)])
    assert await pay(runtime, paid["id"])

    for order in (unpaid, paid):
        response = await client.post(f"/api/v1/orders/{order['id']}/cancel", headers=staff_headers)
        assert response.status_code == 200 and response.json()["status"] == "cancelled"

    async with runtime.db.session() as session:
        events = (
            await session.scalars(select(OutboxEvent).where(OutboxEvent.name == "OrderCancelled"))
        ).all()
    was_paid = {e.payload["order_id"]: e.payload["was_paid"] for e in events}
    assert was_paid == {unpaid["id"]: False, paid["id"]: True}
    assert (await stock_of(client, staff_headers, sku))["available"] == 5


async def test_ship_and_deliver_a_paid_order(
    client: httpx.AsyncClient,
    staff_headers: dict[str, str],
    customer_headers: dict[str, str],
    place_order: PlaceOrder,
    runtime: Runtime,
) -> None:
    sku = await create_sku(client, staff_headers, on_hand=10)
    order = await place_order(customer_headers, [(sku, 4)])
    url = f"/api/v1/orders/{order['id']}"

    early = await client.post(f"{url}/ship", headers=staff_headers)
    assert early.status_code == 409 and problem_slug(early) == "invalid-transition"
    assert await pay(runtime, order["id"])
    assert not await pay(runtime, order["id"])

    shipped = await client.post(
        f"{url}/ship", headers=staff_headers, json={"tracking_number": "1Z999"}
    )
    assert shipped.status_code == 200, shipped.text
    assert shipped.json()["status"] == "shipped"
    assert shipped.json()["tracking_number"] == "1Z999"
    stock = await stock_of(client, staff_headers, sku)
    assert (stock["on_hand"], stock["reserved"], stock["available"]) == (6, 0, 6)
    cancel = await client.post(f"{url}/cancel", headers=customer_headers)
    assert cancel.status_code == 409
    customer_deliver = await client.post(f"{url}/deliver", headers=customer_headers)
    assert customer_deliver.status_code == 403

    delivered = await client.post(f"{url}/deliver", headers=staff_headers)
    assert delivered.json()["status"] == "delivered"

    trail = (await client.get(f"{url}/transitions", headers=customer_headers)).json()
    assert [(t["from_status"], t["to_status"]) for t in trail] == [
        (None, "pending_payment"),
        ("pending_payment", "paid"),
        ("paid", "shipped"),
        ("shipped", "delivered"),
    ]
    assert trail[0]["actor"].startswith("customer:")
    assert trail[1]["actor"] == "payments"
    assert trail[2]["actor"].startswith("staff:")
    assert (await stock_of(client, staff_headers, sku))["on_hand"] == 6
