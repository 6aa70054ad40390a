"""Live order updates on the WebSocket channels, and the confirmation e-mail."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from shopkeeper.core.db import utcnow
from shopkeeper.core.mail import OutboundMail
from shopkeeper.core.runtime import Runtime
from shopkeeper.shop.orders import service
from tests.shop.orders.conftest import PlaceOrder, create_sku, make_user
from tests.shop.orders.wsclient import ASGIWebSocket
from tests.support.events import drain_events


def token_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


async def test_the_owner_sees_status_changes_live(
    app: FastAPI,
    client: httpx.AsyncClient,
    staff_headers: dict[str, str],
    customer_headers: dict[str, str],
    place_order: PlaceOrder,
    runtime: Runtime,
) -> None:
    sku = await create_sku(client, staff_headers)
    order = await place_order(customer_headers, [(sku, 1)])
    await drain_events(runtime)
    url = f"/api/v1/ws/orders/{order['id']}?token="

    async with (
        ASGIWebSocket(app, url + token_of(customer_headers)) as owner,
        ASGIWebSocket(app, url + token_of(staff_headers)) as staff,
    ):
        async with runtime.db.session() as session:
            assert await service.mark_paid(session, order_id=uuid.UUID(order["id"]), at=utcnow())
            await session.commit()
        cancelled = await client.post(
            f"/api/v1/orders/{order['id']}/cancel", headers=customer_headers
        )
        assert cancelled.status_code == 200
        await drain_events(runtime)

        for socket in (owner, staff):
            paid = await socket.receive_json()
            assert paid["type"] == "order.status"
            assert (paid["order_id"], paid["status"]) == (order["id"], "paid")
            assert paid["at"]
            assert (await socket.receive_json())["status"] == "cancelled"


async def test_other_callers_are_closed_with_4403_or_4401(
    app: FastAPI,
    client: httpx.AsyncClient,
    staff_headers: dict[str, str],
    customer_headers: dict[str, str],
    place_order: PlaceOrder,
    runtime: Runtime,
) -> None:
    sku = await create_sku(client, staff_headers)
    order = await place_order(customer_headers, [(sku, 1)])
    other = await make_user(runtime)
    path = f"/api/v1/ws/orders/{order['id']}"

    async with ASGIWebSocket(app, f"{path}?token={token_of(other)}") as socket:
        assert await socket.expect_close() == 4403
    async with ASGIWebSocket(app, path) as socket:
        assert await socket.expect_close() == 4401
    async with ASGIWebSocket(app, f"{path}?token=forged") as socket:
        assert await socket.expect_close() == 4401
    unknown = f"/api/v1/ws/orders/{uuid.uuid4()}?token={token_of(staff_headers)}"
    async with ASGIWebSocket(app, unknown) as socket:
        assert await socket.expect_close() == 4403
    admin = f"/api/v1/ws/admin?token={token_of(customer_headers)}"
    async with ASGIWebSocket(app, admin) as socket:
        assert await socket.expect_close() == 4403


async def test_staff_channel_announces_orders_payments_and_low_stock(
    app: FastAPI,
    client: httpx.AsyncClient,
    staff_headers: dict[str, str],
    customer_headers: dict[str, str],
    place_order: PlaceOrder,
    runtime: Runtime,
) -> None:
    threshold = runtime.settings.stock_low_threshold
    sku = await create_sku(client, staff_headers, on_hand=threshold + 2)
    await drain_events(runtime)

    async with ASGIWebSocket(app, f"/api/v1/ws/admin?token={token_of(staff_headers)}") as admin:
        order = await place_order(customer_headers, [(sku, 2)])
        async with runtime.db.session() as session:
            assert await service.mark_paid(session, order_id=uuid.UUID(order["id"]), at=utcnow())
            await session.commit()
        await drain_events(runtime)

        received = [await admin.receive_json() for _ in range(3)]

    by_type = {message["type"]: message for message in received}
    assert set(by_type) == {"order.created", "order.paid", "stock.low"}
    assert by_type["order.created"]["order_id"] == order["id"]
    assert by_type["order.created"]["number"] == order["number"]
    assert by_type["order.created"]["total"] == order["total"]
    assert by_type["order.paid"]["order_id"] == order["id"]
    assert by_type["stock.low"]["sku"] == sku
    assert by_type["stock.low"]["available"] == threshold


async def test_a_confirmation_email_is_sent_once(
    client: httpx.AsyncClient,
    staff_headers: dict[str, str],
    customer_headers: dict[str, str],
    place_order: PlaceOrder,
    runtime: Runtime,
) -> None:
    sku = await create_sku(client, staff_headers, price=1_999)
    order = await place_order(customer_headers, [(sku, 2)])

    await drain_events(runtime)
    await drain_events(runtime)

    async with runtime.db.session() as session:
        mails = (
            await session.scalars(
                select(OutboundMail).where(OutboundMail.template == "order_confirmation")
            )
        ).all()
    assert len(mails) == 1
    mail = mails[0]
    assert mail.recipient == order["email"]
    assert order["number"] in mail.subject
    assert "19.99 USD" in mail.text_body
    assert mail.html_body is not None and order["number"] in mail.html_body
