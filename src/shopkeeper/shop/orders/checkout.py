"""Checkout: a cart becomes an order holding reserved stock, in one unit of work.

Close the cart and snapshot its names and prices into order lines, number the order, write
it with its first transition and the `OrderPlaced` event, and reserve every line (all or
nothing; inventory locks stock rows in a fixed order so overlapping carts cannot deadlock).
Either all of it commits or none of it does.

It is the hottest write path, so it is counted in round trips. On PostgreSQL: the claim of the
Idempotency-Key, the cart's close, one read of its priced lines together with the buyer's
e-mail, whether their account still exists (the endpoint's 401 `account-gone`), the pricing
settings and the order number, the locked read of the stock rows, and one statement for every
write (`core.writes`), then the commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import Sequence, String, Uuid, bindparam, insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from shopkeeper.accounts import liveness
from shopkeeper.accounts import service as users_service
from shopkeeper.core.db import is_postgres, new_id, table_of, utcnow
from shopkeeper.core.errors import Conflict, InvalidInput
from shopkeeper.core.messaging.events import queue_events
from shopkeeper.core.observability import ORDERS_CREATED
from shopkeeper.core.security import Principal
from shopkeeper.core.settings import Settings
from shopkeeper.core.writes import WriteBatch
from shopkeeper.shop.access import Caller
from shopkeeper.shop.carts import service as carts_service
from shopkeeper.shop.inventory import service as inventory_service
from shopkeeper.shop.orders.events import OrderPlaced, OrderStatusChanged
from shopkeeper.shop.orders.models import Order, OrderLine, OrderNumberCounter, OrderTransition
from shopkeeper.shop.orders.service import PAYMENTS_ACTOR, actor_of, guest_token_hash
from shopkeeper.shop.orders.state import OrderStatus
from shopkeeper.shop.promotions import service as promotions_service
from shopkeeper.shop.promotions.models import Voucher, VoucherKind
from shopkeeper.shop.promotions.pricing import tax_and_total
from shopkeeper.shop.promotions.service import PricedLine
from shopkeeper.shop.shipping import service as shipping_service

ORDER_NUMBER_PREFIX = "SK-"
_COUNTER_NAME = "orders"
# The cart's lines, read with the buyer's e-mail and, on PostgreSQL, the next order number:
# each an uncorrelated subquery, evaluated once per statement. `SK-000123` is unique, and
# gaps are fine (a rolled-back checkout burns its number).
_BUYER_EMAIL = users_service.active_email_of(bindparam("buyer_id", type_=Uuid()))
# Whether the signed-in buyer's account still exists: the endpoint skips the separate check
# every other signed-in request makes (`liveness.ensure_active_user`), a round trip and a pool
# checkout of its own, and this column answers it instead.
_BUYER_ACCOUNT = liveness.account_column(bindparam("buyer_id", type_=Uuid()))
# And what pricing needs besides the lines: the cart's voucher, whether shipping zones exist,
# and the tax rate of the address's country.
_PRICING: dict[str, Any] = {
    "voucher_code": carts_service.voucher_code_of(bindparam("cart_id", type_=Uuid())),
    "zones": shipping_service.zone_count_column(),
    "tax_bps": shipping_service.tax_rate_column(bindparam("country", type_=String())),
}
_READ_CART = carts_service.snapshot_query(email=_BUYER_EMAIL, account=_BUYER_ACCOUNT, **_PRICING)
_READ_CART_AND_NUMBER = carts_service.snapshot_query(
    email=_BUYER_EMAIL,
    account=_BUYER_ACCOUNT,
    **_PRICING,
    number=Sequence("order_number_seq").next_value(),
)


class CurrencyMismatch(Conflict):
    slug, title = "currency-mismatch", "Price in another currency"


StoreAnswer = Callable[[Order, WriteBatch], None]


async def place_order(
    session: AsyncSession,
    *,
    settings: Settings,
    caller: Caller,
    cart_id: uuid.UUID,
    email: str | None,
    shipping_address: dict[str, Any],
    shipping_method_id: uuid.UUID | None = None,
    store_answer: StoreAnswer | None = None,
) -> Order:
    """Check out `cart_id`. `store_answer` adds the write that stores the request's answer
    (the Idempotency-Key layer's) to the order's writes, so answer and order commit together."""
    postgres = is_postgres(session)
    snapshot = await carts_service.checkout_snapshot(
        session,
        cart_id=cart_id,
        caller=caller,
        settings=settings,
        query=_READ_CART_AND_NUMBER if postgres else _READ_CART,
        params={
            "buyer_id": caller.user_id,
            "country": str(shipping_address.get("country") or "").upper(),
        },
    )
    if caller.user_id is not None:
        if snapshot.extra["account"] is None:
            raise liveness.AccountGone("The account this token was issued to no longer exists")
        liveness.remember(caller.user_id)
    for line in snapshot.lines:
        if line.unit_price.currency != settings.currency:
            raise CurrencyMismatch(
                f"{line.sku} is priced in {line.unit_price.currency}, the shop sells in "
                f"{settings.currency}",
                sku=line.sku,
            )
    recipient = _recipient(caller.principal, email, snapshot.extra["email"])
    number = _format_number(snapshot.extra["number"]) if postgres else await _next_number(session)

    # Rows go in as batched INSERTs (no unit of work): checkout writes nothing it reads back.
    # The Order built from the same values answers the request.
    order_id = new_id()
    now = utcnow()
    subtotal = sum(line.unit_price.amount * line.quantity for line in snapshot.lines)
    voucher: Voucher | None = None
    customer: str | None = None
    discount = 0
    country = str(shipping_address.get("country") or "")
    if snapshot.extra["voucher_code"] is not None:
        voucher = await promotions_service.find_voucher(session, snapshot.extra["voucher_code"])
        customer = promotions_service.customer_key(caller.user_id, recipient)
    priced_lines = [PricedLine(line.product_id, line.total.amount) for line in snapshot.lines]
    # Checked before any stock is locked; the voucher's use is counted after (see below). A
    # discount on goods comes first, since a method's `free_over` compares with what is left.
    if voucher is not None and voucher.kind != VoucherKind.FREE_SHIPPING:
        discount = await promotions_service.discount_for(
            session,
            voucher=voucher,
            lines=priced_lines,
            subtotal=subtotal,
            shipping=0,
            now=now,
            customer=customer,
        )
    shipping = await shipping_service.shipping_for(
        session,
        zones=int(snapshot.extra["zones"] or 0),
        method_id=shipping_method_id,
        country=country,
        weight=await shipping_service.cart_weight(
            session, [(line.sku, line.quantity) for line in snapshot.lines]
        )
        if shipping_method_id is not None
        else 0,
        goods=subtotal - discount,
        flat_rate=settings.shipping_flat_rate,
    )
    if voucher is not None and voucher.kind == VoucherKind.FREE_SHIPPING:
        discount = await promotions_service.discount_for(
            session,
            voucher=voucher,
            lines=priced_lines,
            subtotal=subtotal,
            shipping=shipping.price,
            now=now,
            customer=customer,
        )
    tax, total = tax_and_total(
        subtotal=subtotal,
        discount=discount,
        shipping=shipping.price,
        rate_bps=int(snapshot.extra["tax_bps"] or 0),
        prices_include_tax=settings.prices_include_tax,
    )
    order_values: dict[str, Any] = {
        "id": order_id,
        "number": number,
        # Nothing to charge (a voucher took it all): paid at once, as a payment would mark it.
        "status": (OrderStatus.PAID if total == 0 else OrderStatus.PENDING_PAYMENT).value,
        "user_id": caller.user_id,
        "guest_token_hash": (
            guest_token_hash(caller.cart_token)
            if caller.principal is None and caller.cart_token
            else None
        ),
        "cart_id": cart_id,
        "email": recipient,
        "currency": settings.currency,
        "subtotal_amount": subtotal,
        "shipping_amount": shipping.price,
        "discount_amount": discount,
        "tax_amount": tax,
        "total_amount": total,
        "voucher_id": voucher.id if voucher is not None else None,
        "voucher_code": voucher.code if voucher is not None else None,
        "voucher_customer": customer,
        "shipping_method_id": shipping.method.id if shipping.method is not None else None,
        "shipping_method_name": shipping.method.name if shipping.method is not None else None,
        "shipping_address": shipping_address,
        "tracking_number": None,
        "created_at": now,
        "updated_at": now,
        "expires_at": now + timedelta(seconds=settings.reservation_ttl_seconds),
        "paid_at": now if total == 0 else None,
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
    writes = WriteBatch()
    writes.insert(table_of(Order), [order_values])
    writes.insert(table_of(OrderLine), line_values)
    transitions = [
        {
            "id": new_id(),
            "order_id": order_id,
            "from_status": None,
            "to_status": OrderStatus.PENDING_PAYMENT.value,
            "at": now,
            "actor": actor_of(caller.principal),
        }
    ]
    events: list[Any] = []
    if total == 0:
        transitions.append(
            {
                "id": new_id(),
                "order_id": order_id,
                "from_status": OrderStatus.PENDING_PAYMENT.value,
                "to_status": OrderStatus.PAID.value,
                # A microsecond on, so that the audit trail (ordered by time) reads in order.
                "at": now + timedelta(microseconds=1),
                "actor": PAYMENTS_ACTOR,
            }
        )
        events.append(
            OrderStatusChanged(
                order_id=order_id,
                number=number,
                from_status=OrderStatus.PENDING_PAYMENT.value,
                to_status=OrderStatus.PAID.value,
                actor=PAYMENTS_ACTOR,
                at=now,
            )
        )
    writes.insert(table_of(OrderTransition), transitions)
    order = Order(**order_values)
    order.lines = [OrderLine(**values) for values in line_values]
    if store_answer is not None:
        store_answer(order, writes)
    queue_events(
        writes,
        [
            OrderPlaced(
                order_id=order_id,
                number=number,
                user_id=order.user_id,
                email=recipient,
                total_amount=order.total_amount,
                currency=order.currency,
                skus=tuple(line.sku for line in snapshot.lines),
                at=now,
            ),
            *events,
        ],
    )
    # Last, so the stock rows stay locked only for the reservation, the writes and the commit:
    # checkouts sharing a popular SKU queue behind each other for that long, not for the whole
    # checkout. A shortage rolls everything above back.
    await inventory_service.reserve_stock(
        session,
        reference=order_id,
        lines=[(line.sku, line.quantity) for line in snapshot.lines],
        near=_coordinates(shipping_address),
        settings=settings,
        writes=writes,
    )
    if voucher is not None and customer is not None:
        # After the stock, like the expiry and the cancel (stock, then voucher): one lock order,
        # so they cannot deadlock. A used-up voucher rolls the reservation back with the rest.
        await promotions_service.claim_use(session, voucher=voucher, customer=customer)
    await writes.flush(session)
    await session.commit()
    ORDERS_CREATED.inc()
    return order


def _recipient(principal: Principal | None, email: str | None, account_email: str | None) -> str:
    if email is not None:
        return email
    if principal is None:
        raise InvalidInput(
            "A guest checkout needs an e-mail for the confirmation",
            errors=[{"loc": ["body", "email"], "msg": "required for guest checkout"}],
        )
    if account_email is None:
        raise users_service.UserNotFound()
    return account_email


def _format_number(value: int) -> str:
    return f"{ORDER_NUMBER_PREFIX}{value:06d}"


def _coordinates(address: dict[str, Any]) -> tuple[float, float] | None:
    latitude, longitude = address.get("latitude"), address.get("longitude")
    if latitude is None or longitude is None:
        return None
    return float(latitude), float(longitude)


async def _next_number(session: AsyncSession) -> str:
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
    return _format_number(int(value))
