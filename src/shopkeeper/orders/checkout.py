"""Checkout: a cart becomes an order holding reserved stock, in one unit of work.

Close the cart and snapshot its names and prices into order lines, number the order, write
it with its first transition and the `OrderPlaced` event, and reserve every line (all or
nothing; inventory locks stock rows in a fixed order so overlapping carts cannot deadlock).
Either all of it commits or none of it does.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, literal_column, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from shopkeeper.carts import service as carts_service
from shopkeeper.core.db import is_postgres, new_id, table_of, utcnow
from shopkeeper.core.errors import Conflict, InvalidInput
from shopkeeper.core.events import insert_events
from shopkeeper.core.observability import ORDERS_CREATED
from shopkeeper.core.security import Principal
from shopkeeper.core.settings import Settings
from shopkeeper.inventory import service as inventory_service
from shopkeeper.orders.events import OrderPlaced
from shopkeeper.orders.models import Order, OrderLine, OrderNumberCounter, OrderTransition
from shopkeeper.orders.service import actor_of, guest_token_hash
from shopkeeper.orders.state import OrderStatus
from shopkeeper.users import service as users_service

ORDER_NUMBER_PREFIX = "SK-"
# Built once: Core INSERTs with parameters, no per-call statement building.
_INSERT_ORDER = insert(table_of(Order))
_INSERT_LINE = insert(table_of(OrderLine))
_INSERT_TRANSITION = insert(table_of(OrderTransition))
# `SK-000123`: unique, and gaps are fine (a rolled-back checkout burns its number).
_NUMBER_FROM_SEQUENCE: ColumnElement[str] = literal_column(
    "(SELECT 'SK-' || lpad(n::text, greatest(6, length(n::text)), '0') "
    "FROM nextval('order_number_seq') AS n)"
)
_INSERT_NUMBERED_ORDER = (
    insert(table_of(Order)).values(number=_NUMBER_FROM_SEQUENCE).returning(table_of(Order).c.number)
)
_COUNTER_NAME = "orders"


class CurrencyMismatch(Conflict):
    slug, title = "currency-mismatch", "Price in another currency"


BeforeCommit = Callable[[Order], Awaitable[Any]]


async def place_order(
    session: AsyncSession,
    *,
    settings: Settings,
    principal: Principal | None,
    cart_token: str | None,
    cart_id: uuid.UUID,
    email: str | None,
    shipping_address: dict[str, Any],
    before_commit: BeforeCommit | None = None,
) -> Order:
    """Check out `cart_id`. `before_commit` runs inside the unit of work once the order exists
    (the Idempotency-Key layer stores its response there, so answer and order commit together)."""
    snapshot = await carts_service.checkout_snapshot(
        session,
        cart_id=cart_id,
        principal=principal,
        cart_token=cart_token,
        settings=settings,
    )
    for line in snapshot.lines:
        if line.unit_price.currency != settings.currency:
            raise CurrencyMismatch(
                f"{line.sku} is priced in {line.unit_price.currency}, the shop sells in "
                f"{settings.currency}",
                sku=line.sku,
            )
    recipient = await _recipient(session, principal=principal, email=email)

    # Rows go in as plain INSERTs (no unit of work): checkout is the hottest write path and
    # writes nothing it reads back. The Order built from the same values answers the request.
    order_id = new_id()
    now = utcnow()
    subtotal = sum(line.unit_price.amount * line.quantity for line in snapshot.lines)
    shipping = settings.shipping_flat_rate
    order_values: dict[str, Any] = {
        "id": order_id,
        "number": None if is_postgres(session) else await _sqlite_order_number(session),
        "status": OrderStatus.PENDING_PAYMENT.value,
        "user_id": principal.user_id if principal is not None else None,
        "guest_token_hash": (
            guest_token_hash(cart_token) if principal is None and cart_token else None
        ),
        "cart_id": cart_id,
        "email": recipient,
        "currency": settings.currency,
        "subtotal_amount": subtotal,
        "shipping_amount": shipping,
        "total_amount": subtotal + shipping,
        "shipping_address": shipping_address,
        "tracking_number": None,
        "created_at": now,
        "updated_at": now,
        "expires_at": now + timedelta(seconds=settings.reservation_ttl_seconds),
        "paid_at": None,
        "shipped_at": None,
        "delivered_at": None,
        "cancelled_at": None,
    }
    line_values: list[dict[str, Any]] = [
        {
            "id": new_id(),
            "order_id": order_id,
            "position": position,
            "sku": line.sku,
            "product_id": line.product_id,
            "name": line.name,
            "quantity": line.quantity,
            "unit_price_amount": line.unit_price.amount,
            "total_amount": line.unit_price.amount * line.quantity,
        }
        for position, line in enumerate(snapshot.lines)
    ]
    if is_postgres(session):
        # The number comes from the sequence inside the INSERT: one round trip fewer.
        values = {name: value for name, value in order_values.items() if name != "number"}
        order_values["number"] = await session.scalar(_INSERT_NUMBERED_ORDER, values)
    else:
        await session.execute(_INSERT_ORDER, order_values)
    await session.execute(_INSERT_LINE, line_values)
    await session.execute(
        _INSERT_TRANSITION,
        {
            "id": new_id(),
            "order_id": order_id,
            "from_status": None,
            "to_status": OrderStatus.PENDING_PAYMENT.value,
            "at": now,
            "actor": actor_of(principal),
        },
    )
    order = Order(**order_values)
    order.lines = [OrderLine(**values) for values in line_values]
    if before_commit is not None:
        await before_commit(order)
    events: list[object] = [
        OrderPlaced(
            order_id=order_id,
            number=order.number,
            user_id=order.user_id,
            email=recipient,
            total_amount=order.total_amount,
            currency=order.currency,
            skus=tuple(line.sku for line in snapshot.lines),
            at=now,
        )
    ]
    # Last, so the stock rows stay locked only for the reservation and the commit: checkouts
    # sharing a popular SKU queue behind each other for that long, not for the whole checkout.
    # A shortage rolls everything above back.
    await inventory_service.reserve_stock(
        session,
        reference=order_id,
        lines=[(line.sku, line.quantity) for line in snapshot.lines],
        near=_coordinates(shipping_address),
        settings=settings,
        events=events,
    )
    await insert_events(session, events)
    await session.commit()
    ORDERS_CREATED.inc()
    return order


async def _recipient(
    session: AsyncSession, *, principal: Principal | None, email: str | None
) -> str:
    if email is not None:
        return email
    if principal is None:
        raise InvalidInput(
            "A guest checkout needs an e-mail for the confirmation",
            errors=[{"loc": ["body", "email"], "msg": "required for guest checkout"}],
        )
    return await users_service.active_email(session, user_id=principal.user_id)


def _coordinates(address: dict[str, Any]) -> tuple[float, float] | None:
    latitude, longitude = address.get("latitude"), address.get("longitude")
    if latitude is None or longitude is None:
        return None
    return float(latitude), float(longitude)


async def _sqlite_order_number(session: AsyncSession) -> str:
    """SQLite has no sequences; it has one writer at a time (BEGIN IMMEDIATE), so this
    increment cannot race."""
    value = await session.scalar(
        update(OrderNumberCounter)
        .where(OrderNumberCounter.name == _COUNTER_NAME)
        .values(value=OrderNumberCounter.value + 1)
        .returning(OrderNumberCounter.value)
    )
    if value is None:
        await session.execute(insert(OrderNumberCounter).values(name=_COUNTER_NAME, value=1))
        value = 1
    return f"{ORDER_NUMBER_PREFIX}{int(value):06d}"
