"""Reconciliation: ask providers about payments still pending after a while, in case a callback
was lost, and apply what they say through the same path as callbacks."""

from __future__ import annotations

from datetime import timedelta

import structlog
from sqlalchemy import select

from shopkeeper.core.db import utcnow
from shopkeeper.core.jobs import periodic
from shopkeeper.core.runtime import Runtime
from shopkeeper.shop.payments.callbacks import apply_provider_event
from shopkeeper.shop.payments.models import Payment, PaymentStatus
from shopkeeper.shop.payments.providers import build_provider
from shopkeeper.shop.payments.providers.base import (
    CallbackEvent,
    PaymentProvider,
    ProviderError,
    ProviderNotConfigured,
)

RECONCILE_AFTER = timedelta(minutes=2)
RECONCILE_WITHIN = timedelta(days=3)
BATCH_SIZE = 100

log = structlog.get_logger(__name__)


@periodic("payments.reconcile", every_seconds=60)
async def reconcile_payments_job(runtime: Runtime) -> None:
    await reconcile_pending_payments(runtime)


async def reconcile_pending_payments(
    runtime: Runtime, *, older_than: timedelta = RECONCILE_AFTER
) -> dict[str, str]:
    """Returns what happened per payment id, for the log and for tests."""
    now = utcnow()
    async with runtime.db.session() as session:
        rows = (
            await session.execute(
                select(Payment.id, Payment.provider, Payment.provider_reference, Payment.currency)
                .where(
                    Payment.status == PaymentStatus.PENDING,
                    Payment.created_at <= now - older_than,
                    Payment.created_at >= now - RECONCILE_WITHIN,
                )
                .order_by(Payment.created_at)
                .limit(BATCH_SIZE)
            )
        ).all()
    providers: dict[str, PaymentProvider | None] = {}
    results: dict[str, str] = {}
    for payment_id, provider_name, reference, currency in rows:
        if provider_name not in providers:
            try:
                providers[provider_name] = build_provider(provider_name, runtime.settings)
            except ProviderNotConfigured:
                providers[provider_name] = None
        provider = providers[provider_name]
        if provider is None or reference is None:
            continue
        try:
            remote = await provider.query(reference=reference, currency=currency)
        except ProviderError as exc:
            log.warning("reconcile_query_failed", payment_id=str(payment_id), error=str(exc))
            continue
        if remote is None or remote.outcome == "pending":
            continue
        event = CallbackEvent(
            event_key=f"reconcile:{payment_id}:{remote.outcome}",
            outcome=remote.outcome,
            reference=reference,
            amount=remote.amount,
            currency=remote.currency,
            summary={"source": "reconciliation", "outcome": remote.outcome,
                     "amount": remote.amount, "currency": remote.currency},
        )  # fmt: skip
        async with runtime.db.session() as session:
            results[str(payment_id)] = await apply_provider_event(
                session, provider_name=provider_name, event=event, source="reconciliation"
            )
    if results:
        log.info("payments_reconciled", results=results)
    return results
