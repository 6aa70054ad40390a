"""Reactions: refunds the shop owes without being asked, and the "payment received" mail."""

from __future__ import annotations

import structlog

from shopkeeper.core.messaging.handlers import handles
from shopkeeper.core.money import Money
from shopkeeper.core.runtime import HandlerContext
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
async def refund_cancelled_order(ctx: HandlerContext, event: OrderCancelled) -> None:
    if not event.was_paid:
        return
    # Own short transactions: the refund calls the provider between them (see dispatch_event).
    async with ctx.runtime.db.session() as session:
        try:
            refund = await service.refund_order_payment(
                session,
                order_id=event.order_id,
                settings=ctx.runtime.settings,
                reason="order-cancelled",
            )
        except (service.PaymentNotRefundable, service.RefundExceedsCaptured):
            log.info("cancelled_order_already_refunded", order_id=str(event.order_id))
            return
    log.info("cancelled_order_refunded", order_id=str(event.order_id), refund=bool(refund))


@handles(PaymentCapturedForClosedOrder)
async def refund_payment_for_closed_order(
    ctx: HandlerContext, event: PaymentCapturedForClosedOrder
) -> None:
    async with ctx.runtime.db.session() as session:
        try:
            await service.refund_payment(
                session,
                payment_id=event.payment_id,
                amount=None,
                settings=ctx.runtime.settings,
                reason="order-closed",
                dedup_key="order-closed",
            )
        except (service.PaymentNotRefundable, service.RefundExceedsCaptured):
            log.info("closed_order_payment_already_refunded", payment_id=str(event.payment_id))


@handles(PaymentSucceeded)
async def mail_payment_received(ctx: HandlerContext, event: PaymentSucceeded) -> None:
    order = await orders_service.get_order(ctx.session, order_id=event.order_id, principal=SYSTEM)
    await ctx.mailer.send(
        ctx.session,
        to=order.email,
        template="payment_received",
        context={
            "order_number": order.number,
            "order_id": str(order.id),
            "amount": _major(event.amount, event.currency),
            "currency": event.currency,
            "provider": event.provider,
        },
    )


def _major(amount: int, currency: str) -> str:
    return Money(amount=amount, currency=currency).to_decimal_string()


@handles(PaymentRefunded)
async def mail_refund_issued(ctx: HandlerContext, event: PaymentRefunded) -> None:
    order = await orders_service.get_order(ctx.session, order_id=event.order_id, principal=SYSTEM)
    await ctx.mailer.send(
        ctx.session,
        to=order.email,
        template="refund_issued",
        context={
            "order_number": order.number,
            "amount": _major(event.amount, event.currency),
            "currency": event.currency,
            "fully": event.fully,
        },
    )
