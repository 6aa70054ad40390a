"""Staff work on payments: finding them, and resolving the ones that need review.

A payment needs review when its provider reported capturing a different amount or currency than
the payment asked for (`callbacks._apply_success` stores what was reported). Staff decide:

- `accept`: what the provider holds is fine; the payment succeeds for the reported amount and
  the order becomes paid (or, if it closed meanwhile, the money goes back automatically).
- `refund`: the provider refunds exactly what it reported capturing.

Both start with one conditional UPDATE of the payment (`status = 'needs_review' AND
refunded_amount = 0`), so of two staff members, a retried request and a callback arriving at
the same moment, exactly one changes it; the others find it resolved and get the same answer
again (same action) or 409 `payment-not-in-review`. Every decision is kept in
`payment_resolutions`: who, when, what, the note, and how it ended.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import structlog
from sqlalchemy import ColumnElement, and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shopkeeper.core.db import affected_rows, new_id, utcnow
from shopkeeper.core.errors import Conflict, InvalidInput
from shopkeeper.core.messaging.events import record_event
from shopkeeper.core.settings import Settings
from shopkeeper.shop.orders import service as orders_service
from shopkeeper.shop.payments.events import PaymentCapturedForClosedOrder, PaymentSucceeded
from shopkeeper.shop.payments.models import (
    Payment,
    PaymentResolution,
    PaymentStatus,
    Refund,
    RefundStatus,
)
from shopkeeper.shop.payments.providers.base import ProviderError
from shopkeeper.shop.payments.service import (
    PaymentNotFound,
    ProviderFailed,
    complete_refund,
    provider_for,
)

log = structlog.get_logger(__name__)

ResolveAction = Literal["accept", "refund"]
REVIEW_REFUND_REASON = "payment-review"


class PaymentNotInReview(Conflict):
    slug, title = "payment-not-in-review", "Payment is not awaiting review"


class ReportedCurrencyDiffers(Conflict):
    slug, title = "reported-currency-differs", "The provider captured another currency"


class ReportedAmountUnknown(Conflict):
    slug, title = "reported-amount-unknown", "The provider's reported amount is not known"


class InvalidCursor(InvalidInput):
    slug, title = "invalid-cursor", "Invalid cursor"


@dataclass(frozen=True, slots=True)
class PaymentFilter:
    status: PaymentStatus | None = None
    provider: str | None = None
    order_id: uuid.UUID | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


async def list_payments(
    session: AsyncSession, *, filters: PaymentFilter, limit: int = 20, cursor: str | None = None
) -> tuple[Sequence[Payment], str | None]:
    """Newest first (ids are UUIDv7); one statement whatever the page size."""
    query = select(Payment).order_by(Payment.id.desc())
    if filters.status is not None:
        query = query.where(Payment.status == filters.status)
    if filters.provider is not None:
        query = query.where(Payment.provider == filters.provider)
    if filters.order_id is not None:
        query = query.where(Payment.order_id == filters.order_id)
    if filters.created_after is not None:
        query = query.where(Payment.created_at >= filters.created_after)
    if filters.created_before is not None:
        query = query.where(Payment.created_at < filters.created_before)
    if cursor is not None:
        query = query.where(Payment.id < _decode_cursor(cursor))
    payments = list((await session.scalars(query.limit(limit + 1))).all())
    next_cursor = _encode_cursor(payments[limit - 1].id) if len(payments) > limit else None
    return payments[:limit], next_cursor


async def resolve_payment(
    session: AsyncSession,
    *,
    payment_id: uuid.UUID,
    action: ResolveAction,
    actor_id: uuid.UUID | None,
    settings: Settings,
    note: str | None = None,
    reason: str | None = None,
) -> Payment:
    """Accept or refund a payment in `needs_review`; idempotent per action (see the module).
    `reason` is the refund's (default `payment-review`); `note` is kept with the decision."""
    if action == "accept":
        return await _accept(session, payment_id=payment_id, actor_id=actor_id, note=note)
    return await _refund(
        session,
        payment_id=payment_id,
        actor_id=actor_id,
        note=note,
        reason=reason or REVIEW_REFUND_REASON,
        settings=settings,
    )


async def resolutions_of(session: AsyncSession, payment_id: uuid.UUID) -> list[PaymentResolution]:
    """The payment's review decisions, oldest first."""
    rows = await session.scalars(
        select(PaymentResolution)
        .where(PaymentResolution.payment_id == payment_id)
        .order_by(PaymentResolution.created_at, PaymentResolution.id)
    )
    return list(rows)


async def _accept(
    session: AsyncSession, *, payment_id: uuid.UUID, actor_id: uuid.UUID | None, note: str | None
) -> Payment:
    payment = await _payment(session, payment_id)
    if payment.status != PaymentStatus.NEEDS_REVIEW or payment.refunded_amount:
        return await _already_resolved(session, payment, "accept")
    if payment.reported_currency is not None and payment.reported_currency != payment.currency:
        raise ReportedCurrencyDiffers(
            f"The provider captured {payment.reported_currency}, the order is in "
            f"{payment.currency}: refund it instead",
            reported_currency=payment.reported_currency,
            currency=payment.currency,
        )
    amount = payment.reported_amount if payment.reported_amount is not None else payment.amount
    order_id, provider = payment.order_id, payment.provider
    now = utcnow()
    accepted = await session.execute(
        update(Payment)
        .where(_in_review(payment_id))
        .values(status=PaymentStatus.SUCCEEDED, amount=amount, succeeded_at=now, updated_at=now)
    )
    if affected_rows(accepted) != 1:
        await session.rollback()
        return await _already_resolved(session, await _payment(session, payment_id), "accept")
    if await orders_service.mark_paid(session, order_id=order_id, at=now):
        await session.execute(
            update(Payment).where(Payment.id == payment_id).values(paid_order=True)
        )
        record_event(
            session,
            PaymentSucceeded(
                payment_id=payment_id,
                order_id=order_id,
                provider=provider,
                amount=amount,
                currency=payment.currency,
            ),
        )
        outcome = "order-paid"
    else:
        # The order expired or was cancelled while the payment waited: the money goes back.
        record_event(
            session, PaymentCapturedForClosedOrder(payment_id=payment_id, order_id=order_id)
        )
        outcome = "order-closed"
    session.add(
        PaymentResolution(
            payment_id=payment_id,
            action="accept",
            outcome=outcome,
            note=note,
            actor_id=actor_id,
            amount=amount,
            currency=payment.currency,
            created_at=now,
        )
    )
    log.info("payment_review_accepted", payment_id=str(payment_id), outcome=outcome)
    return await _committed(session, payment_id)


async def _refund(
    session: AsyncSession,
    *,
    payment_id: uuid.UUID,
    actor_id: uuid.UUID | None,
    note: str | None,
    reason: str,
    settings: Settings,
) -> Payment:
    payment = await _payment(session, payment_id)
    if payment.status != PaymentStatus.NEEDS_REVIEW or payment.refunded_amount:
        return await _already_resolved(session, payment, "refund")
    if payment.reported_amount is None or payment.reported_amount <= 0:
        raise ReportedAmountUnknown(
            "The provider's callback did not say how much it captured: refund it at the "
            "provider and accept here, or refund through POST /payments/{id}/refunds after",
        )
    provider = provider_for(payment.provider, settings)
    amount = payment.reported_amount
    currency = payment.reported_currency or payment.currency
    reference = payment.provider_reference
    assert reference is not None
    now = utcnow()
    # Reserving the amount is what takes the payment out of review for everyone else.
    reserved = await session.execute(
        update(Payment).where(_in_review(payment_id)).values(refunded_amount=amount, updated_at=now)
    )
    if affected_rows(reserved) != 1:
        await session.rollback()
        return await _already_resolved(session, await _payment(session, payment_id), "refund")
    refund = Refund(
        id=new_id(),
        payment_id=payment_id,
        amount=amount,
        currency=currency,
        status=RefundStatus.PENDING,
        reason=reason,
    )
    resolution = PaymentResolution(
        id=new_id(),
        payment_id=payment_id,
        action="refund",
        outcome="refund-pending",
        note=note,
        actor_id=actor_id,
        amount=amount,
        currency=currency,
        refund_id=refund.id,
        created_at=now,
    )
    session.add_all([refund, resolution])
    await session.commit()

    try:
        result = await provider.refund(
            reference=reference, refund_id=refund.id, amount=amount, total=amount, currency=currency
        )
    except ProviderError as exc:
        # Nothing was refunded: the payment goes back to review and can be resolved again.
        await session.execute(
            update(Refund)
            .where(Refund.id == refund.id, Refund.status == RefundStatus.PENDING)
            .values(status=RefundStatus.FAILED, completed_at=utcnow())
        )
        await session.execute(
            update(Payment)
            .where(Payment.id == payment_id, Payment.status == PaymentStatus.NEEDS_REVIEW)
            .values(refunded_amount=0, updated_at=utcnow())
        )
        await _set_outcome(session, resolution.id, "failed")
        await session.commit()
        raise ProviderFailed(str(exc), provider=provider.name) from exc
    await session.execute(
        update(Refund).where(Refund.id == refund.id).values(provider_reference=result.reference)
    )
    if result.succeeded:
        await complete_refund(session, refund_id=refund.id, at=utcnow())
        await _set_outcome(session, resolution.id, "refunded")
    log.info("payment_review_refunded", payment_id=str(payment_id), amount=amount)
    return await _committed(session, payment_id)


async def _already_resolved(
    session: AsyncSession, payment: Payment, action: ResolveAction
) -> Payment:
    """The answer for a payment no longer in review: the same again when the decision that
    took it out was this same action (a retry, or a colleague doing the same), else 409."""
    latest = await session.scalar(
        select(PaymentResolution)
        .where(PaymentResolution.payment_id == payment.id, PaymentResolution.outcome != "failed")
        .order_by(PaymentResolution.created_at.desc(), PaymentResolution.id.desc())
        .limit(1)
    )
    if latest is not None and latest.action == action:
        return await _committed(session, payment.id)
    raise PaymentNotInReview(
        f"The payment is {payment.status}"
        + (f" and was already resolved with {latest.action!r}" if latest is not None else ""),
        payment_status=payment.status,
        resolved_with=latest.action if latest is not None else None,
    )


def _in_review(payment_id: uuid.UUID) -> ColumnElement[bool]:
    return and_(
        Payment.id == payment_id,
        Payment.status == PaymentStatus.NEEDS_REVIEW,
        Payment.refunded_amount == 0,
    )


async def _set_outcome(session: AsyncSession, resolution_id: uuid.UUID, outcome: str) -> None:
    await session.execute(
        update(PaymentResolution)
        .where(PaymentResolution.id == resolution_id)
        .values(outcome=outcome)
    )


async def _committed(session: AsyncSession, payment_id: uuid.UUID) -> Payment:
    """The payment as it is now, read inside the transaction that then commits: on SQLite a
    transaction left open holds the write lock the idempotency record needs next."""
    payment = await _payment(session, payment_id)
    await session.commit()
    return payment


async def _payment(session: AsyncSession, payment_id: uuid.UUID) -> Payment:
    payment = await session.get(Payment, payment_id, populate_existing=True)
    if payment is None:
        raise PaymentNotFound(f"No payment {payment_id}")
    return payment


def _encode_cursor(payment_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(payment_id.bytes).decode().rstrip("=")


def _decode_cursor(cursor: str) -> uuid.UUID:
    try:
        return uuid.UUID(bytes=base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise InvalidCursor("The cursor is not one this endpoint returned") from exc
