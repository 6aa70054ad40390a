"""Provider callbacks: verify first, answer in the provider's format, apply at most once.

`apply_provider_event` is the one path by which a provider's word changes a payment: webhooks
and the reconciliation job both go through it. Its guarantees:

- the (provider, event key) row commits in the same transaction as the change, so a duplicate
  delivery, even a concurrent one in another process, changes nothing;
- status moves only by conditional UPDATE: `succeeded` is never downgraded, and of two racing
  events one wins;
- a success whose amount or currency differs from the payment's marks it `needs_review` and
  leaves the order unpaid;
- the order becomes paid (`orders.service.mark_paid`) in the same transaction; if the order had
  expired or been cancelled, the money is refunded automatically (an outbox event does it).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

import structlog
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from shopkeeper.core.db import Database, affected_rows, utcnow
from shopkeeper.core.errors import problem_response
from shopkeeper.core.inputs import body_is_clean, contains_forbidden, scrub
from shopkeeper.core.messaging.events import record_event
from shopkeeper.core.money import parse_decimal_amount
from shopkeeper.core.observability import CALLBACKS_REJECTED, PAYMENTS_SUCCEEDED
from shopkeeper.core.security import Principal
from shopkeeper.core.settings import Settings
from shopkeeper.shop.access import READ, Caller
from shopkeeper.shop.orders import service as orders_service
from shopkeeper.shop.payments import service
from shopkeeper.shop.payments.events import (
    PaymentCapturedForClosedOrder,
    PaymentFailed,
    PaymentNeedsReview,
    PaymentSucceeded,
)
from shopkeeper.shop.payments.models import (
    AppliedProviderEvent,
    Payment,
    PaymentCallback,
    PaymentStatus,
    Refund,
)
from shopkeeper.shop.payments.providers import PROVIDER_NAMES, build_provider
from shopkeeper.shop.payments.providers.base import (
    CallbackEvent,
    CallbackRejected,
    ProviderNotConfigured,
)

# Reading the order to address the "payment received" mail is the payments domain acting for
# the shop itself, not for a caller.
SYSTEM = Caller(Principal(user_id=uuid.UUID(int=0), permissions=frozenset({READ})))

# Kept out of the audit copy of an unverified body: card and wallet details, client secrets.
_REDACTED_KEYS = frozenset({"payment_method_details", "payment_method", "card", "source",
                            "billing_details", "client_secret", "buyer_logon_id", "buyer_id",
                            "payer", "sign"})  # fmt: skip
_MAX_AUDIT_BODY = 4000
_MAX_EVENT_KEY = 200
_PAYABLE_FROM = (PaymentStatus.PENDING, PaymentStatus.FAILED)

log = structlog.get_logger(__name__)


async def receive_callback(
    db: Database,
    *,
    settings: Settings,
    provider_name: str,
    headers: Mapping[str, str],
    body: bytes,
) -> Response:
    now = utcnow()
    if contains_forbidden(provider_name) or not body_is_clean(body):
        # Refused like any other input with a NUL or a lone surrogate, but kept (scrubbed) for
        # audit first: a provider or an attacker sent it and someone may need to know.
        await _audit_rejection(db, scrub(provider_name)[:20], "invalid-characters", "", body)
        CALLBACKS_REJECTED.labels("unknown", "invalid-characters").inc()
        return problem_response(
            422,
            "validation-error",
            "Invalid input",
            "NUL characters, unpaired surrogates and non-UTF-8 text are not accepted",
        )
    try:
        provider = build_provider(provider_name, settings)
    except ProviderNotConfigured:
        # Anyone can post to any path: only known names become metric labels.
        label = provider_name if provider_name in PROVIDER_NAMES else "unknown"
        await _audit_rejection(db, provider_name[:20], "not-configured", "", body)
        CALLBACKS_REJECTED.labels(label, "not-configured").inc()
        return problem_response(404, "not-found", "Not found", "No such payment provider")
    try:
        event = provider.parse_callback(headers, body, now)
    except CallbackRejected as rejection:
        CALLBACKS_REJECTED.labels(provider_name, rejection.reason).inc()
        log.warning("payment_callback_rejected", provider=provider_name, reason=rejection.reason)
        await _audit_rejection(db, provider_name, rejection.reason, rejection.detail, body)
        return provider.respond(rejection)
    async with db.session() as session:
        result = await apply_provider_event(session, provider_name=provider_name, event=event)
    log.info("payment_callback", provider=provider_name, event_key=event.event_key, result=result)
    return provider.respond(None)


async def apply_provider_event(
    session: AsyncSession, *, provider_name: str, event: CallbackEvent, source: str = "callback"
) -> str:
    """Apply one verified provider event; returns what happened (also in the audit row)."""
    now = utcnow()
    event_key = scrub(event.event_key)
    if len(event_key) > _MAX_EVENT_KEY:
        event_key = "sha256:" + hashlib.sha256(event_key.encode()).hexdigest()
    session.add(AppliedProviderEvent(provider=provider_name, event_key=event_key))
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        return await _finish(session, provider_name, event, "duplicate", None, source)

    payment = None
    if event.reference is not None:
        payment = await session.scalar(
            select(Payment)
            .where(Payment.provider == provider_name, Payment.provider_reference == event.reference)
            .execution_options(populate_existing=True)
        )
    if payment is None:
        if event.outcome == "ignored":
            return await _finish(session, provider_name, event, "ignored", None, source)
        # Not consumed: the provider's retry may find the payment (a create still committing).
        await session.rollback()
        return await _finish(session, provider_name, event, "unknown-payment", None, source)

    result = "ignored"
    if event.outcome == "succeeded":
        result = await _apply_success(session, payment, event, now)
    elif event.outcome == "failed":
        failed = await session.execute(
            update(Payment)
            .where(Payment.id == payment.id, Payment.status == PaymentStatus.PENDING)
            .values(status=PaymentStatus.FAILED, updated_at=now)
        )
        if affected_rows(failed) == 1:
            record_event(
                session,
                PaymentFailed(
                    payment_id=payment.id, order_id=payment.order_id, provider=provider_name
                ),
            )
            result = "failed"
        else:
            result = f"kept-{payment.status}"
    elif event.outcome == "refunded":
        result = await _apply_refund_confirmation(session, payment, event, now)
    await session.execute(
        update(AppliedProviderEvent)
        .where(
            AppliedProviderEvent.provider == provider_name,
            AppliedProviderEvent.event_key == event_key,
        )
        .values(payment_id=payment.id)
    )
    outcome = await _finish(session, provider_name, event, result, payment.id, source)
    if result == "succeeded" or result == "succeeded-order-closed":
        PAYMENTS_SUCCEEDED.labels(provider_name).inc()
    return outcome


async def _apply_success(
    session: AsyncSession, payment: Payment, event: CallbackEvent, now: Any
) -> str:
    amount = event.amount
    if amount is None and event.decimal_amount is not None:
        try:
            amount = parse_decimal_amount(event.decimal_amount, payment.currency)
        except ValueError:
            amount = None
    currency_matches = event.currency is None or event.currency == payment.currency
    if amount != payment.amount or not currency_matches:
        review = await session.execute(
            update(Payment)
            .where(Payment.id == payment.id, Payment.status.in_(_PAYABLE_FROM))
            .values(
                status=PaymentStatus.NEEDS_REVIEW,
                reported_amount=amount,
                reported_currency=event.currency or payment.currency,
                updated_at=now,
            )
        )
        if affected_rows(review) != 1:
            return f"kept-{payment.status}"
        record_event(
            session,
            PaymentNeedsReview(
                payment_id=payment.id,
                order_id=payment.order_id,
                provider=payment.provider,
                expected_amount=payment.amount,
                expected_currency=payment.currency,
                reported_amount=amount,
                reported_currency=event.currency,
            ),
        )
        return "needs-review"
    # A failed attempt can still be followed by a success (a second card on one intent).
    captured = await session.execute(
        update(Payment)
        .where(Payment.id == payment.id, Payment.status.in_(_PAYABLE_FROM))
        .values(status=PaymentStatus.SUCCEEDED, succeeded_at=now, updated_at=now)
    )
    if affected_rows(captured) != 1:
        return f"kept-{payment.status}"
    if await orders_service.mark_paid(session, order_id=payment.order_id, at=now):
        await session.execute(
            update(Payment).where(Payment.id == payment.id).values(paid_order=True)
        )
        record_event(
            session,
            PaymentSucceeded(
                payment_id=payment.id,
                order_id=payment.order_id,
                provider=payment.provider,
                amount=payment.amount,
                currency=payment.currency,
            ),
        )
        return "succeeded"
    record_event(
        session, PaymentCapturedForClosedOrder(payment_id=payment.id, order_id=payment.order_id)
    )
    return "succeeded-order-closed"


async def _apply_refund_confirmation(
    session: AsyncSession, payment: Payment, event: CallbackEvent, now: Any
) -> str:
    query = select(Refund.id).where(Refund.payment_id == payment.id, Refund.status == "pending")
    if event.refund_reference is not None:
        query = query.where(Refund.provider_reference == event.refund_reference)
    refund_ids = list(await session.scalars(query.order_by(Refund.created_at)))
    completed = 0
    for refund_id in refund_ids:
        if await service.complete_refund(session, refund_id=refund_id, at=now):
            completed += 1
    return "refund-confirmed" if completed else "refund-noted"


async def _finish(
    session: AsyncSession,
    provider_name: str,
    event: CallbackEvent,
    result: str,
    payment_id: uuid.UUID | None,
    source: str,
) -> str:
    session.add(
        PaymentCallback(
            provider=provider_name,
            verified=True,
            result=result,
            detail=source,
            event_key=scrub(event.event_key)[:200],
            payment_id=payment_id,
            payload=scrub(event.summary),
        )
    )
    await session.commit()
    return result


async def _audit_rejection(
    db: Database, provider_name: str, reason: str, detail: str, body: bytes
) -> None:
    async with db.session() as session:
        session.add(
            PaymentCallback(
                provider=provider_name,
                verified=False,
                result="rejected",
                detail=f"{reason}: {detail}"[:300],
                payload=scrub(unverified_payload(body)),
            )
        )
        await session.commit()


def unverified_payload(body: bytes) -> dict[str, Any]:
    """What we keep of a body we could not verify: parsed if possible, redacted, bounded."""
    text = body[:_MAX_AUDIT_BODY].decode("utf-8", "replace")
    try:
        return {"json": _redact(json.loads(body))}
    except ValueError:
        pass
    if "=" in text and "{" not in text:
        pairs = parse_qsl(text, keep_blank_values=True)
        if pairs:
            return {"form": {k: v for k, v in pairs if k not in _REDACTED_KEYS}}
    return {"text": text, "truncated": len(body) > _MAX_AUDIT_BODY}


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _redact(v) for k, v in value.items() if k not in _REDACTED_KEYS}
    if isinstance(value, list):
        return [_redact(item) for item in value[:50]]
    if isinstance(value, str):
        return value[:500]
    return value
