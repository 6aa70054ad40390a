"""Reactions to order events: confirmation e-mails and live updates for customers and staff.

Realtime messages are live-only and best-effort (see core.realtime); what must not be missed is
in the database, and a client that reconnects reads the order again.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from shopkeeper.core.events import HandlerContext, handles
from shopkeeper.core.money import Money
from shopkeeper.shop.inventory.events import StockLow
from shopkeeper.shop.orders.events import OrderPlaced, OrderShipped, OrderStatusChanged
from shopkeeper.shop.orders.models import Order
from shopkeeper.shop.orders.state import OrderStatus

ADMIN_TOPIC = "admin"


def order_topic(order_id: uuid.UUID | str) -> str:
    return f"order:{order_id}"


@handles(OrderPlaced)
async def send_order_confirmation(ctx: HandlerContext, payload: dict[str, Any]) -> None:
    await _mail_about_order(ctx, uuid.UUID(payload["order_id"]), "order_confirmation")


@handles(OrderShipped)
async def send_shipping_notice(ctx: HandlerContext, payload: dict[str, Any]) -> None:
    await _mail_about_order(ctx, uuid.UUID(payload["order_id"]), "order_shipped")


async def _mail_about_order(ctx: HandlerContext, order_id: uuid.UUID, template: str) -> None:
    order = await ctx.session.scalar(
        select(Order).where(Order.id == order_id).options(selectinload(Order.lines))
    )
    if order is not None:
        await ctx.runtime.mailer.send(
            to=order.email, template=template, context=_mail_context(order)
        )


@handles(OrderPlaced)
async def announce_order_created(ctx: HandlerContext, payload: dict[str, Any]) -> None:
    await ctx.runtime.realtime.publish(
        ADMIN_TOPIC,
        {
            "type": "order.created",
            "order_id": payload["order_id"],
            "number": payload["number"],
            "total": {"amount": payload["total_amount"], "currency": payload["currency"]},
            "at": payload["at"],
        },
    )


@handles(OrderStatusChanged)
async def publish_order_status(ctx: HandlerContext, payload: dict[str, Any]) -> None:
    status = payload["to_status"]
    await ctx.runtime.realtime.publish(
        order_topic(payload["order_id"]),
        {
            "type": "order.status",
            "order_id": payload["order_id"],
            "status": status,
            "at": payload["at"],
        },
    )
    if status == OrderStatus.PAID:
        await ctx.runtime.realtime.publish(
            ADMIN_TOPIC,
            {
                "type": "order.paid",
                "order_id": payload["order_id"],
                "number": payload["number"],
                "at": payload["at"],
            },
        )


@handles(StockLow)
async def announce_stock_low(ctx: HandlerContext, payload: dict[str, Any]) -> None:
    await ctx.runtime.realtime.publish(
        ADMIN_TOPIC,
        {
            "type": "stock.low",
            "sku": payload["sku"],
            "available": payload["available"],
            "threshold": payload.get("threshold", ctx.runtime.settings.stock_low_threshold),
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
        "shipping": amount(order.shipping_amount),
        "total": amount(order.total_amount),
        "shipping_address": order.shipping_address,
        "tracking_number": order.tracking_number,
        "expires_at": order.expires_at.strftime("%Y-%m-%d %H:%M UTC"),
    }
