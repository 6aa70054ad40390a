"""Order lifecycle use cases: reading, cancelling, shipping, delivering, payment and refund
marks, and reservation expiry. Checkout itself lives in `checkout.py`.

Every status change is a conditional `UPDATE orders SET status=:to WHERE id=:id AND
status=:from`: of two racing changes (an expiry and a payment, two cancels) exactly one sees its
row count at 1, and only that one touches stock, records the transition and emits events.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from shopkeeper.core.db import utcnow
from shopkeeper.core.errors import Conflict, InvalidInput, NotFound
from shopkeeper.core.messaging.events import record_event
from shopkeeper.core.security import Principal
from shopkeeper.shop.access import READ, Caller
from shopkeeper.shop.inventory import service as inventory_service
from shopkeeper.shop.orders.events import OrderCancelled, OrderShipped, OrderStatusChanged
from shopkeeper.shop.orders.models import Order, OrderTransition
from shopkeeper.shop.orders.state import OrderStatus, can_transition
from shopkeeper.shop.promotions import service as promotions_service

# How often a transition re-reads the status after losing a race before giving up.
_TRANSITION_ATTEMPTS = 3

PAYMENTS_ACTOR = "payments"
EXPIRY_ACTOR = "system:expiry"


class OrderNotFound(NotFound):
    slug, title = "order-not-found", "Order not found"


class InvalidTransition(Conflict):
    slug, title = "invalid-transition", "Invalid order status transition"


class OrderNotPayable(Conflict):
    slug, title = "order-not-payable", "Order cannot be paid"


class InvalidCursor(InvalidInput):
    slug, title = "invalid-cursor", "Invalid cursor"


def actor_of(principal: Principal | None) -> str:
    if principal is None:
        return "guest"
    return f"{'staff' if principal.can(READ) else 'customer'}:{principal.user_id}"


def guest_token_hash(cart_token: str) -> str:
    return hashlib.sha256(cart_token.encode()).hexdigest()


def is_visible(order: Order, caller: Caller) -> bool:
    """Staff see every order, customers their own, guests the ones of their cart token."""
    if caller.can(READ) or (caller.user_id is not None and order.user_id == caller.user_id):
        return True
    return (
        caller.cart_token is not None
        and order.guest_token_hash is not None
        and order.guest_token_hash == guest_token_hash(caller.cart_token)
    )


async def get_order(
    session: AsyncSession,
    *,
    order_id: uuid.UUID,
    caller: Caller,
) -> Order:
    """The order with its lines; 404 unless the caller may see it."""
    order = await session.scalar(
        select(Order)
        .where(Order.id == order_id)
        .options(selectinload(Order.lines))
        .execution_options(populate_existing=True)
    )
    if order is None or not is_visible(order, caller):
        raise OrderNotFound(f"No order {order_id}")
    return order


async def list_orders(
    session: AsyncSession,
    *,
    principal: Principal,
    status: OrderStatus | None = None,
    limit: int = 20,
    cursor: str | None = None,
) -> tuple[Sequence[Order], str | None]:
    """Newest first (ids are UUIDv7, so by id is by time); two statements whatever the size."""
    query = select(Order).options(selectinload(Order.lines)).order_by(Order.id.desc())
    if not principal.can(READ):
        query = query.where(Order.user_id == principal.user_id)
    if status is not None:
        query = query.where(Order.status == status)
    if cursor is not None:
        query = query.where(Order.id < _decode_cursor(cursor))
    orders = list((await session.scalars(query.limit(limit + 1))).all())
    next_cursor = _encode_cursor(orders[limit - 1].id) if len(orders) > limit else None
    return orders[:limit], next_cursor


def _encode_cursor(order_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(order_id.bytes).decode().rstrip("=")


def _decode_cursor(cursor: str) -> uuid.UUID:
    try:
        return uuid.UUID(bytes=base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise InvalidCursor("The cursor is not one this endpoint returned") from exc


async def payable_order(
    session: AsyncSession,
    *,
    order_id: uuid.UUID,
    caller: Caller,
) -> Order:
    """The order if the caller (a user, or a guest holding the order's cart token) may pay it
    now: 404 if not visible, 409 `order-not-payable` unless it is `pending_payment` with its
    reservation still running."""
    order = await get_order(session, order_id=order_id, caller=caller)
    if order.status != OrderStatus.PENDING_PAYMENT:
        raise OrderNotPayable(f"Order {order.number} is {order.status}", order_status=order.status)
    if order.expires_at <= utcnow():
        raise OrderNotPayable(f"The reservation of order {order.number} has run out")
    return order


async def mark_paid(session: AsyncSession, *, order_id: uuid.UUID, at: datetime) -> bool:
    """pending_payment -> paid, in the caller's transaction. False when the order was no longer
    pending (expired or cancelled meanwhile): the caller then refunds the payment."""
    return await _conditional_transition(
        session,
        order_id=order_id,
        from_status=OrderStatus.PENDING_PAYMENT,
        to_status=OrderStatus.PAID,
        actor=PAYMENTS_ACTOR,
        at=at,
        values={"paid_at": at},
    )


async def mark_refunded(session: AsyncSession, *, order_id: uuid.UUID, fully: bool) -> None:
    """Record a refund on the order, in the caller's transaction. A refund of a cancelled or
    expired order (the money went back because of that) leaves its status alone; a full refund
    of an order not yet shipped releases its reserved stock."""
    target = OrderStatus.REFUNDED if fully else OrderStatus.PARTIALLY_REFUNDED
    for _ in range(_TRANSITION_ATTEMPTS):
        current = await _current_status(session, order_id)
        if current in (OrderStatus.CANCELLED, OrderStatus.EXPIRED, OrderStatus.REFUNDED):
            return
        if current == target:
            return
        if not can_transition(current, target):
            raise InvalidTransition(
                f"An order that is {current} cannot become {target}",
                from_status=current,
                to_status=target,
            )
        if await _conditional_transition(
            session,
            order_id=order_id,
            from_status=current,
            to_status=target,
            actor=PAYMENTS_ACTOR,
            at=utcnow(),
        ):
            if target == OrderStatus.REFUNDED:
                # Refunded in full before shipping: it will never ship, so its units return.
                # After shipping nothing is reserved any more and this changes nothing.
                await inventory_service.release_stock(session, reference=order_id)
            return
    raise InvalidTransition("The order changed concurrently; retry")


async def cancel_order(
    session: AsyncSession,
    *,
    order_id: uuid.UUID,
    caller: Caller,
) -> Order:
    """Cancel an unpaid or paid order and release its stock; a paid one is refunded by the
    payments domain on `OrderCancelled(was_paid=True)`."""
    order = await get_order(session, order_id=order_id, caller=caller)
    now = utcnow()
    actor = actor_of(caller.principal)
    previous = await _transition(
        session,
        order=order,
        to_status=OrderStatus.CANCELLED,
        actor=actor,
        at=now,
        values={"cancelled_at": now},
    )
    await inventory_service.release_stock(session, reference=order.id)
    if previous == OrderStatus.PENDING_PAYMENT:
        await _give_back_voucher(session, order.voucher_id, order.voucher_customer)
    record_event(
        session,
        OrderCancelled(
            order_id=order.id,
            was_paid=previous == OrderStatus.PAID,
            number=order.number,
            actor=actor,
            at=now,
        ),
    )
    await session.commit()
    return await get_order(session, order_id=order.id, caller=caller)


async def ship_order(
    session: AsyncSession,
    *,
    order_id: uuid.UUID,
    principal: Principal,
    tracking_number: str | None,
) -> Order:
    """paid (or partially refunded before shipping) -> shipped (staff): the reserved units
    leave `on_hand`."""
    order = await get_order(session, order_id=order_id, caller=Caller(principal))
    if order.shipped_at is not None:
        raise InvalidTransition(
            f"Order {order.number} was already shipped",
            from_status=order.status,
            to_status=OrderStatus.SHIPPED,
        )
    now = utcnow()
    await _transition(
        session,
        order=order,
        to_status=OrderStatus.SHIPPED,
        actor=actor_of(principal),
        at=now,
        values={"shipped_at": now, "tracking_number": tracking_number},
    )
    await inventory_service.ship_stock(session, reference=order.id)
    record_event(
        session,
        OrderShipped(
            order_id=order.id, number=order.number, tracking_number=tracking_number, at=now
        ),
    )
    await session.commit()
    return await get_order(session, order_id=order.id, caller=Caller(principal))


async def deliver_order(
    session: AsyncSession, *, order_id: uuid.UUID, principal: Principal
) -> Order:
    """shipped -> delivered (staff)."""
    order = await get_order(session, order_id=order_id, caller=Caller(principal))
    now = utcnow()
    await _transition(
        session,
        order=order,
        to_status=OrderStatus.DELIVERED,
        actor=actor_of(principal),
        at=now,
        values={"delivered_at": now},
    )
    await session.commit()
    return await get_order(session, order_id=order.id, caller=Caller(principal))


async def due_for_expiry(session: AsyncSession, *, now: datetime, limit: int) -> list[uuid.UUID]:
    """Ids of unpaid orders whose reservation ran out, oldest deadline first."""
    rows = await session.scalars(
        select(Order.id)
        .where(Order.status == OrderStatus.PENDING_PAYMENT, Order.expires_at <= now)
        .order_by(Order.expires_at)
        .limit(limit)
    )
    return list(rows.all())


async def expire_order(session: AsyncSession, *, order_id: uuid.UUID, now: datetime) -> bool:
    """pending_payment -> expired and the stock returns. False when a payment, a cancel or
    another expiry run got there first; then nothing is released."""
    expired = await _conditional_transition(
        session,
        order_id=order_id,
        from_status=OrderStatus.PENDING_PAYMENT,
        to_status=OrderStatus.EXPIRED,
        actor=EXPIRY_ACTOR,
        at=now,
        guard=Order.expires_at <= now,
    )
    if expired:
        await inventory_service.release_stock(session, reference=order_id)
        held = (
            await session.execute(
                select(Order.voucher_id, Order.voucher_customer).where(Order.id == order_id)
            )
        ).first()
        if held is not None:
            await _give_back_voucher(session, held.voucher_id, held.voucher_customer)
    await session.commit()
    return expired


async def _give_back_voucher(
    session: AsyncSession, voucher_id: uuid.UUID | None, customer: str | None
) -> None:
    """An order that ends before payment no longer counts as a use of its voucher; called in
    the transaction of the status change that guarantees it happens once."""
    if voucher_id is not None:
        await promotions_service.give_back_use(session, voucher_id=voucher_id, customer=customer)


async def is_order_visible(
    session: AsyncSession, *, order_id: uuid.UUID, principal: Principal
) -> bool:
    order = await session.get(Order, order_id)
    return order is not None and is_visible(order, Caller(principal))


async def order_transitions(
    session: AsyncSession,
    *,
    order_id: uuid.UUID,
    caller: Caller,
) -> Sequence[OrderTransition]:
    """The audit trail of an order the caller may see, oldest first."""
    order = await session.get(Order, order_id)
    if order is None or not is_visible(order, caller):
        raise OrderNotFound(f"No order {order_id}")
    rows = await session.scalars(
        select(OrderTransition)
        .where(OrderTransition.order_id == order_id)
        .order_by(OrderTransition.at, OrderTransition.id)
    )
    return rows.all()


async def _current_status(session: AsyncSession, order_id: uuid.UUID) -> OrderStatus:
    status = await session.scalar(select(Order.status).where(Order.id == order_id))
    if status is None:
        raise OrderNotFound(f"No order {order_id}")
    return OrderStatus(status)


async def _transition(
    session: AsyncSession,
    *,
    order: Order,
    to_status: OrderStatus,
    actor: str,
    at: datetime,
    values: dict[str, Any] | None = None,
) -> OrderStatus:
    """Move `order` to `to_status` from whatever it is now, if the state machine allows it;
    409 `invalid-transition` otherwise. Returns the status it left."""
    current = OrderStatus(order.status)
    for _ in range(_TRANSITION_ATTEMPTS):
        if not can_transition(current, to_status):
            raise InvalidTransition(
                f"Order {order.number} is {current}; it cannot become {to_status}",
                from_status=current,
                to_status=to_status,
            )
        if await _conditional_transition(
            session,
            order_id=order.id,
            from_status=current,
            to_status=to_status,
            actor=actor,
            at=at,
            values=values,
        ):
            return current
        current = await _current_status(session, order.id)
    raise InvalidTransition("The order changed concurrently; retry")


async def _conditional_transition(
    session: AsyncSession,
    *,
    order_id: uuid.UUID,
    from_status: OrderStatus,
    to_status: OrderStatus,
    actor: str,
    at: datetime,
    values: dict[str, Any] | None = None,
    guard: Any = None,
) -> bool:
    """The one place a status changes: `UPDATE ... WHERE id AND status = from`, and only when it
    hit the row, the audit record and the `OrderStatusChanged` event."""
    statement = (
        update(Order)
        .where(Order.id == order_id, Order.status == from_status)
        .values(status=to_status, updated_at=at, **(values or {}))
        .returning(Order.number)
        .execution_options(synchronize_session=False)
    )
    if guard is not None:
        statement = statement.where(guard)
    number = (await session.execute(statement)).scalar_one_or_none()
    if number is None:
        return False
    session.add(
        OrderTransition(
            order_id=order_id, from_status=from_status, to_status=to_status, at=at, actor=actor
        )
    )
    record_event(
        session,
        OrderStatusChanged(
            order_id=order_id,
            number=number,
            from_status=from_status,
            to_status=to_status,
            actor=actor,
            at=at,
        ),
    )
    return True
