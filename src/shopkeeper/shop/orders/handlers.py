"""Reactions to order events: confirmation e-mails and live updates for customers and staff.

Realtime messages are live-only and best-effort (see core.realtime); what must not be missed is
in the database, and a client that reconnects reads the order again.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from shopkeeper.core.messaging.handlers import handles
from shopkeeper.core.money import Money
from shopkeeper.core.runtime import HandlerContext
from shopkeeper.shop.inventory.events import StockLow
from shopkeeper.shop.orders.events import OrderPlaced, OrderShipped, OrderStatusChanged
from shopkeeper.shop.orders.models import Order
from shopkeeper.shop.orders.state import OrderStatus

ADMIN_TOPIC = "admin"


def order_topic(order_id: uuid.UUID | str) -> str:
    return f"order:{order_id}"


@handles(OrderPlaced)
async def send_order_confirmation(ctx: HandlerContext, event: OrderPlaced) -> None:
    await _mail_about_order(ctx, event.order_id, "order_confirmation")


@handles(OrderShipped)
async def send_shipping_notice(ctx: HandlerContext, event: OrderShipped) -> None:
    await _mail_about_order(ctx, event.order_id, "order_shipped")


async def _mail_about_order(ctx: HandlerContext, order_id: uuid.UUID, template: str) -> None:
    order = await ctx.session.scalar(
        select(Order).where(Order.id == order_id).options(selectinload(Order.lines))
    )
    if order is not None:
        await ctx.mailer.send(
            ctx.session, to=order.email, template=template, context=_mail_context(order)
        )


@handles(OrderPlaced)
async def announce_order_created(ctx: HandlerContext, event: OrderPlaced) -> None:
    await ctx.runtime.realtime.publish(
        ADMIN_TOPIC,
        {
            "type": "order.created",
            "order_id": str(event.order_id),
            "number": event.number,
            "total": {"amount": event.total_amount, "currency": event.currency},
            "at": event.at.isoformat(),
        },
    )


@handles(OrderStatusChanged)
async def publish_order_status(ctx: HandlerContext, event: OrderStatusChanged) -> None:
    order_id, at = str(event.order_id), event.at.isoformat()
    await ctx.runtime.realtime.publish(
        order_topic(order_id),
        {"type": "order.status", "order_id": order_id, "status": event.to_status, "at": at},
    )
    if event.to_status == OrderStatus.PAID:
        await ctx.runtime.realtime.publish(
            ADMIN_TOPIC,
            {"type": "order.paid", "order_id": order_id, "number": event.number, "at": at},
        )


@handles(StockLow)
async def announce_stock_low(ctx: HandlerContext, event: StockLow) -> None:
    # Events recorded before thresholds were per SKU carry none: the shop's applied then.
    threshold = event.threshold
    if threshold is None:
        threshold = ctx.runtime.settings.stock_low_threshold
    await ctx.runtime.realtime.publish(
        ADMIN_TOPIC,
        {
            "type": "stock.low",
            "sku": event.sku,
            "available": event.available,
            "threshold": threshold,
        },
    )


def _mail_context(order: Order) -> dict[str, Any]:
    def amount(value: int) -> str:
        decimal = Money(amount=value, currency=order.currency).to_decimal_string()
        return f"{decimal} {order.currency}"

    return {
        "number": order.number,
        "status": order.status,
        "email": order.email,
        "lines": [
            {
                "sku": line.sku,
                "name": line.name,
                "quantity": line.quantity,
                "unit_price": amount(line.unit_price_amount),
                "total": amount(line.total_amount),
            }
            for line in order.lines
        ],
        "subtotal": amount(order.subtotal_amount),
        "discount": amount(order.discount_amount) if order.discount_amount else None,
        "voucher_code": order.voucher_code,
        "shipping": amount(order.shipping_amount),
        "shipping_method": order.shipping_method_name,
        "tax": amount(order.tax_amount),
        "total": amount(order.total_amount),
        "shipping_address": order.shipping_address,
        "tracking_number": order.tracking_number,
        "expires_at": order.expires_at.strftime("%Y-%m-%d %H:%M UTC"),
    }
