"""Reactions: refunds the shop owes without being asked, and the "payment received" mail."""

from __future__ import annotations

import uuid
from typing import Any

import structlog

from shopkeeper.core.events import HandlerContext, handles
from shopkeeper.core.money import Money
from shopkeeper.shop.orders import service as orders_service
from shopkeeper.shop.orders.events import OrderCancelled
from shopkeeper.shop.payments import service
from shopkeeper.shop.payments.callbacks import SYSTEM
from shopkeeper.shop.payments.events import (
    PaymentCapturedForClosedOrder,
    PaymentRefunded,
    PaymentSucceeded,
)

log = structlog.get_logger(__name__)


@handles(OrderCancelled)
async def refund_cancelled_order(ctx: HandlerContext, payload: dict[str, Any]) -> None:
    if not payload["was_paid"]:
        return
    # Own short transactions: the refund calls the provider between them (see dispatch_event).
    async with ctx.runtime.db.session() as session:
        try:
            refund = await service.refund_order_payment(
                session,
                order_id=uuid.UUID(payload["order_id"]),
                settings=ctx.runtime.settings,
                reason="order-cancelled",
            )
        except (service.PaymentNotRefundable, service.RefundExceedsCaptured):
            log.info("cancelled_order_already_refunded", order_id=payload["order_id"])
            return
    log.info("cancelled_order_refunded", order_id=payload["order_id"], refund=bool(refund))


@handles(PaymentCapturedForClosedOrder)
async def refund_payment_for_closed_order(ctx: HandlerContext, payload: dict[str, Any]) -> None:
    async with ctx.runtime.db.session() as session:
        try:
            await service.refund_payment(
                session,
                payment_id=uuid.UUID(payload["payment_id"]),
                amount=None,
                settings=ctx.runtime.settings,
                reason="order-closed",
                dedup_key="order-closed",
            )
        except (service.PaymentNotRefundable, service.RefundExceedsCaptured):
            log.info("closed_order_payment_already_refunded", payment_id=payload["payment_id"])


@handles(PaymentSucceeded)
async def mail_payment_received(ctx: HandlerContext, payload: dict[str, Any]) -> None:
    order = await orders_service.get_order(
        ctx.session, order_id=uuid.UUID(payload["order_id"]), principal=SYSTEM
    )
    await ctx.runtime.mailer.send(
        to=order.email,
        template="payment_received",
        context={
            "order_number": order.number,
            "order_id": str(order.id),
            "amount": _major(payload["amount"], payload["currency"]),
            "currency": payload["currency"],
            "provider": payload["provider"],
        },
        session=ctx.session,
    )


def _major(amount: int, currency: str) -> str:
    return Money(amount=amount, currency=currency).to_decimal_string()


@handles(PaymentRefunded)
async def mail_refund_issued(ctx: HandlerContext, payload: dict[str, Any]) -> None:
    order = await orders_service.get_order(
        ctx.session, order_id=uuid.UUID(payload["order_id"]), principal=SYSTEM
    )
    await ctx.runtime.mailer.send(
        to=order.email,
        template="refund_issued",
        context={
            "order_number": order.number,
            "amount": _major(payload["amount"], payload["currency"]),
            "currency": payload["currency"],
            "fully": payload["fully"],
        },
        session=ctx.session,
    )
