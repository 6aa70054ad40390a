"""Creating payments, reading them, and refunds. Callbacks live in `callbacks.py`.

A provider call never runs inside a database transaction: the row is committed first (so the
partial unique index has already decided which of two concurrent creates goes ahead, and a
refund has already reserved its amount), then the provider is called, then the outcome is
committed in a second unit of work.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import case, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shopkeeper.core.db import affected_rows, new_id, utcnow
from shopkeeper.core.errors import Conflict, DomainError, NotFound
from shopkeeper.core.messaging.events import record_event
from shopkeeper.core.settings import Settings
from shopkeeper.shop.access import Caller
from shopkeeper.shop.orders import service as orders_service
from shopkeeper.shop.payments.events import PaymentRefunded
from shopkeeper.shop.payments.models import (
    Payment,
    PaymentStatus,
    Refund,
    RefundStatus,
)
from shopkeeper.shop.payments.providers import build_provider
from shopkeeper.shop.payments.providers.base import (
    Charge,
    PaymentProvider,
    ProviderError,
    ProviderNotConfigured,
)

API_PREFIX = "/api/v1"
REFUNDABLE_STATUSES = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED)


class PaymentNotFound(NotFound):
    slug, title = "payment-not-found", "Payment not found"


class PaymentInProgress(Conflict):
    slug, title = "payment-in-progress", "Another payment for this order is in progress"


class ProviderUnavailable(DomainError):
    status, slug, title = 409, "provider-unavailable", "Payment provider not available"


class ProviderFailed(DomainError):
    status, slug, title = 502, "provider-error", "The payment provider refused or did not answer"


class PaymentNotRefundable(Conflict):
    slug, title = "payment-not-refundable", "Payment has no captured money to refund"


class RefundExceedsCaptured(Conflict):
    slug, title = "refund-exceeds-captured", "Refund exceeds the captured amount"


def webhook_url(settings: Settings, provider: str) -> str:
    return f"{settings.base_url}{API_PREFIX}/payments/webhooks/{provider}"


def provider_for(name: str, settings: Settings) -> PaymentProvider:
    try:
        return build_provider(name, settings)
    except ProviderNotConfigured as exc:
        raise ProviderUnavailable(str(exc), provider=name) from exc


async def create_payment(
    session: AsyncSession,
    *,
    order_id: uuid.UUID,
    caller: Caller,
    provider_name: str,
    settings: Settings,
) -> Payment:
    """Start paying an order with a provider: amount and currency come from the order. The
    payer is its owner, staff, or the guest holding the cart token the order was placed with."""
    provider = provider_for(provider_name, settings)
    order = await orders_service.payable_order(session, order_id=order_id, caller=caller)
    payment = Payment(
        id=new_id(),
        order_id=order.id,
        provider=provider_name,
        status=PaymentStatus.PENDING,
        amount=order.total_amount,
        currency=order.currency,
    )
    # Our own reference for providers that let the merchant choose it (Alipay, WeChat Pay).
    payment.provider_reference = payment.id.hex
    session.add(payment)
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        pending = await session.scalar(
            select(Payment.id).where(
                Payment.order_id == order_id, Payment.status == PaymentStatus.PENDING
            )
        )
        raise PaymentInProgress(
            "Finish or wait out the payment already started for this order",
            payment_id=str(pending) if pending else None,
        ) from exc

    charge = Charge(
        payment_id=payment.id,
        reference=payment.id.hex,
        amount=payment.amount,
        currency=payment.currency,
        description=f"Order {order.number}",
        notify_url=webhook_url(settings, provider_name),
        return_url=f"{settings.base_url}/orders/{order.id}",
    )
    try:
        created = await provider.create_payment(charge)
    except ProviderError as exc:
        await session.execute(
            update(Payment)
            .where(Payment.id == payment.id, Payment.status == PaymentStatus.PENDING)
            .values(status=PaymentStatus.FAILED, updated_at=utcnow())
        )
        await session.commit()
        raise ProviderFailed(str(exc), provider=provider_name) from exc
    await session.execute(
        update(Payment)
        .where(Payment.id == payment.id)
        .values(
            provider_reference=created.provider_reference,
            action_type=created.action_type,
            action_value=created.action_value,
            updated_at=utcnow(),
        )
    )
    # Read back before the commit: a read after it would open a new transaction, which on
    # SQLite holds the write lock the idempotency store needs next.
    await session.refresh(payment)
    await session.commit()
    return payment


async def get_payment(
    session: AsyncSession,
    *,
    payment_id: uuid.UUID,
    caller: Caller,
) -> Payment:
    """The payment if its order is visible to the caller (owner, staff, or the guest holding
    the order's cart token); 404 otherwise."""
    payment = await session.get(Payment, payment_id, populate_existing=True)
    if payment is None:
        raise PaymentNotFound(f"No payment {payment_id}")
    try:
        await orders_service.get_order(session, order_id=payment.order_id, caller=caller)
    except NotFound as exc:
        raise PaymentNotFound(f"No payment {payment_id}") from exc
    return payment


async def refund_payment(
    session: AsyncSession,
    *,
    payment_id: uuid.UUID,
    amount: int | None,
    settings: Settings,
    reason: str = "requested",
    dedup_key: str | None = None,
) -> Refund:
    """Refund `amount` (default: all not yet refunded) through the provider.

    The amount is reserved with a conditional UPDATE first, so concurrent refunds can never add
    up to more than was captured; a provider failure gives the reservation back. `dedup_key`
    makes automatic refunds (cancellation, late success) happen once however often they run.
    """
    payment = await session.get(Payment, payment_id, populate_existing=True)
    if payment is None:
        raise PaymentNotFound(f"No payment {payment_id}")
    if dedup_key is not None:
        existing = await _refund_by_key(session, payment_id, dedup_key)
        if existing is not None:
            return existing
    if payment.status == PaymentStatus.REFUNDED:
        raise RefundExceedsCaptured(
            "The payment is already refunded in full",
            captured=payment.amount,
            refunded=payment.refunded_amount,
        )
    if payment.status not in REFUNDABLE_STATUSES:
        raise PaymentNotRefundable(
            f"The payment is {payment.status}", payment_status=payment.status
        )
    observed = payment.refunded_amount
    if amount is None:
        amount = payment.amount - observed
        guard = Payment.refunded_amount == observed
    else:
        guard = Payment.refunded_amount + amount <= Payment.amount
    if amount <= 0:
        raise RefundExceedsCaptured(
            "Nothing is left to refund", captured=payment.amount, refunded=observed
        )
    reserved = await session.execute(
        update(Payment)
        .where(Payment.id == payment_id, Payment.status.in_(REFUNDABLE_STATUSES), guard)
        .values(refunded_amount=Payment.refunded_amount + amount, updated_at=utcnow())
    )
    if affected_rows(reserved) != 1:
        captured = payment.amount  # read before the rollback expires the row
        await session.rollback()
        raise RefundExceedsCaptured(
            f"At most {captured - observed} can still be refunded",
            captured=captured,
            refunded=observed,
        )
    refund = Refund(
        id=new_id(),
        payment_id=payment_id,
        amount=amount,
        currency=payment.currency,
        status=RefundStatus.PENDING,
        reason=reason,
        dedup_key=dedup_key,
    )
    session.add(refund)
    try:
        await session.commit()
    except IntegrityError:
        # The same automatic refund raced us; its reservation stands, ours rolls back.
        await session.rollback()
        existing = await _refund_by_key(session, payment_id, dedup_key or "")
        assert existing is not None
        return existing

    provider = provider_for(payment.provider, settings)
    assert payment.provider_reference is not None
    try:
        result = await provider.refund(
            reference=payment.provider_reference,
            refund_id=refund.id,
            amount=amount,
            total=payment.amount,
            currency=payment.currency,
        )
    except ProviderError as exc:
        await session.execute(
            update(Refund)
            .where(Refund.id == refund.id, Refund.status == RefundStatus.PENDING)
            .values(status=RefundStatus.FAILED, completed_at=utcnow())
        )
        await session.execute(
            update(Payment)
            .where(Payment.id == payment_id)
            .values(refunded_amount=Payment.refunded_amount - amount, updated_at=utcnow())
        )
        await session.commit()
        raise ProviderFailed(str(exc), provider=payment.provider) from exc
    await session.execute(
        update(Refund).where(Refund.id == refund.id).values(provider_reference=result.reference)
    )
    if result.succeeded:
        await complete_refund(session, refund_id=refund.id, at=utcnow())
    await session.refresh(refund)
    await session.commit()
    return refund


async def complete_refund(session: AsyncSession, *, refund_id: uuid.UUID, at: datetime) -> bool:
    """pending -> succeeded for a refund, its payment's status and its order's; caller commits.
    False when it was already complete (the provider's confirmation after a synchronous yes)."""
    done = await session.execute(
        update(Refund)
        .where(Refund.id == refund_id, Refund.status == RefundStatus.PENDING)
        .values(status=RefundStatus.SUCCEEDED, completed_at=at)
    )
    if affected_rows(done) != 1:
        return False
    refund = await session.get(Refund, refund_id, populate_existing=True)
    assert refund is not None
    # A payment in review is refunded whole: what the provider reported (see `review`).
    await session.execute(
        update(Payment)
        .where(
            Payment.id == refund.payment_id,
            Payment.status.in_((*REFUNDABLE_STATUSES, PaymentStatus.NEEDS_REVIEW)),
        )
        .values(
            status=case(
                (Payment.status == PaymentStatus.NEEDS_REVIEW.value, PaymentStatus.REFUNDED.value),
                (Payment.refunded_amount >= Payment.amount, PaymentStatus.REFUNDED.value),
                else_=PaymentStatus.PARTIALLY_REFUNDED.value,
            ),
            updated_at=at,
        )
    )
    payment = await session.get(Payment, refund.payment_id, populate_existing=True)
    assert payment is not None
    fully = payment.status == PaymentStatus.REFUNDED
    if payment.paid_order:
        await orders_service.mark_refunded(session, order_id=payment.order_id, fully=fully)
    record_event(
        session,
        PaymentRefunded(
            payment_id=payment.id,
            refund_id=refund.id,
            order_id=payment.order_id,
            amount=refund.amount,
            currency=refund.currency,
            fully=fully,
        ),
    )
    return True


async def refund_order_payment(
    session: AsyncSession, *, order_id: uuid.UUID, settings: Settings, reason: str
) -> Refund | None:
    """Refund the rest of the payment that paid `order_id`, once (keyed by `reason`)."""
    payment_id = await session.scalar(
        select(Payment.id).where(Payment.order_id == order_id, Payment.paid_order.is_(True))
    )
    await session.rollback()
    if payment_id is None:
        return None
    return await refund_payment(
        session, payment_id=payment_id, amount=None, settings=settings, reason=reason,
        dedup_key=reason,
    )  # fmt: skip


async def _refund_by_key(
    session: AsyncSession, payment_id: uuid.UUID, dedup_key: str
) -> Refund | None:
    return await session.scalar(
        select(Refund).where(Refund.payment_id == payment_id, Refund.dedup_key == dedup_key)
    )
