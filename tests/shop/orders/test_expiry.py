"""Reservations run out: unpaid orders expire once, their stock returns once, and a payment
racing the expiry is never lost."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select, update

from shopkeeper.core.db import utcnow
from shopkeeper.core.runtime import Runtime
from shopkeeper.core.security import Principal
from shopkeeper.shop.orders import service
from shopkeeper.shop.orders.jobs import expire_reservations
from shopkeeper.shop.orders.models import Order, OrderTransition
from tests.shop.orders.conftest import PlaceOrder, create_sku, problem_slug, stock_of


async def run_out(runtime: Runtime, *order_ids: str) -> None:
    """Move these orders' reservation deadline into the past."""
    async with runtime.db.session() as session:
        await session.execute(
            update(Order)
            .where(Order.id.in_([uuid.UUID(order_id) for order_id in order_ids]))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()


async def transitions_to(runtime: Runtime, order_id: str, status: str) -> int:
    async with runtime.db.session() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(OrderTransition)
            .where(
                OrderTransition.order_id == uuid.UUID(order_id),
                OrderTransition.to_status == status,
            )
        )
    return int(count or 0)


async def test_the_expiry_job_returns_stock_once(
    client: httpx.AsyncClient,
    staff_headers: dict[str, str],
    customer_headers: dict[str, str],
    place_order: PlaceOrder,
    runtime: Runtime,
) -> None:
    sku = await create_sku(client, staff_headers, on_hand=10)
    stale = await place_order(customer_headers, [(sku, 3)])
    fresh = await place_order(customer_headers, [(sku, 2)])
    await run_out(runtime, stale["id"])

    await expire_reservations(runtime)
    await expire_reservations(runtime)

    stale_now = await client.get(f"/api/v1/orders/{stale['id']}", headers=customer_headers)
    assert stale_now.json()["status"] == "expired"
    fresh_now = await client.get(f"/api/v1/orders/{fresh['id']}", headers=customer_headers)
    assert fresh_now.json()["status"] == "pending_payment"
    stock = await stock_of(client, staff_headers, sku)
    assert (stock["on_hand"], stock["reserved"], stock["available"]) == (10, 2, 8)
    assert await transitions_to(runtime, stale["id"], "expired") == 1
    trail = await client.get(f"/api/v1/orders/{stale['id']}/transitions", headers=staff_headers)
    assert trail.json()[-1]["actor"] == "system:expiry"


async def test_an_expired_order_cannot_be_paid_or_cancelled(
    client: httpx.AsyncClient,
    staff_headers: dict[str, str],
    customer_headers: dict[str, str],
    place_order: PlaceOrder,
    runtime: Runtime,
) -> None:
    sku = await create_sku(client, staff_headers, on_hand=10)
    order = await place_order(customer_headers, [(sku, 1)])
    await run_out(runtime, order["id"])
    order_id = uuid.UUID(order["id"])

    me = (await client.get("/api/v1/users/me", headers=customer_headers)).json()
    owner = Principal(user_id=uuid.UUID(me["id"]))
    async with runtime.db.session() as session:
        with pytest.raises(service.OrderNotPayable):
            await service.payable_order(session, order_id=order_id, principal=owner)
    await expire_reservations(runtime)
    async with runtime.db.session() as session:
        assert not await service.mark_paid(session, order_id=order_id, at=utcnow())
        await session.commit()
    cancel = await client.post(f"/api/v1/orders/{order['id']}/cancel", headers=customer_headers)
    assert cancel.status_code == 409 and problem_slug(cancel) == "invalid-transition"
    assert (await stock_of(client, staff_headers, sku))["available"] == 10


async def test_expiry_racing_payments_never_loses_one(
    client: httpx.AsyncClient,
    staff_headers: dict[str, str],
    customer_headers: dict[str, str],
    place_order: PlaceOrder,
    runtime: Runtime,
    backend: str,
) -> None:
    if backend != "postgresql":
        pytest.skip("a real race needs concurrent writers: PostgreSQL")
    sku = await create_sku(client, staff_headers, on_hand=40)
    orders = [await place_order(customer_headers, [(sku, 2)]) for _ in range(12)]
    await run_out(runtime, *(order["id"] for order in orders))
    now = utcnow()

    async def expire(order_id: uuid.UUID) -> bool:
        async with runtime.db.session() as session:
            return await service.expire_order(session, order_id=order_id, now=now)

    async def pay(order_id: uuid.UUID) -> bool:
        async with runtime.db.session() as session:
            paid = await service.mark_paid(session, order_id=order_id, at=now)
            await session.commit()
            return paid

    ids = [uuid.UUID(order["id"]) for order in orders]
    outcomes = await asyncio.gather(
        *(call(order_id) for order_id in ids for call in (expire, pay, expire))
    )

    paid_count = 0
    for index, order_id in enumerate(ids):
        expired_a, paid, expired_b = outcomes[3 * index : 3 * index + 3]
        assert [expired_a, paid, expired_b].count(True) == 1, (expired_a, paid, expired_b)
        status = "paid" if paid else "expired"
        async with runtime.db.session() as session:
            order = await session.get(Order, order_id)
            assert order is not None and order.status == status
        assert await transitions_to(runtime, str(order_id), status) == 1
        paid_count += paid
    stock = await stock_of(client, staff_headers, sku)
    assert stock["reserved"] == 2 * paid_count
    assert stock["available"] == 40 - 2 * paid_count
