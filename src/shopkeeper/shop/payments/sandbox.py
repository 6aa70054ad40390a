"""Asking the sandbox provider to report an outcome, as a buyer finishing (or abandoning) a
payment page would make a real provider do."""

from __future__ import annotations

import asyncio
import uuid
from typing import Literal

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from shopkeeper.core.errors import Conflict, NotFound
from shopkeeper.core.security import Principal
from shopkeeper.core.settings import Settings
from shopkeeper.shop.payments import service
from shopkeeper.shop.payments.models import PaymentStatus
from shopkeeper.shop.payments.providers.sandbox import SandboxProvider

log = structlog.get_logger(__name__)

# Strong references: the event loop keeps only weak ones to running tasks.
_DELIVERIES: set[asyncio.Task[int]] = set()


class SandboxDisabled(NotFound):
    slug, title = "sandbox-disabled", "The sandbox provider is not enabled"


class NotASandboxPayment(Conflict):
    slug, title = "not-a-sandbox-payment", "Not a sandbox payment"


async def request_sandbox_outcome(
    session: AsyncSession,
    *,
    payment_id: uuid.UUID,
    principal: Principal | None,
    outcome: Literal["succeed", "fail"],
    duplicates: int,
    settings: Settings,
    cart_token: str | None = None,
) -> None:
    """Have the sandbox deliver a signed callback (plus `duplicates` copies) in the background."""
    if not settings.sandbox_enabled:
        raise SandboxDisabled("Set SHOPKEEPER_SANDBOX_ENABLED=true to use the sandbox")
    payment = await service.get_payment(
        session, payment_id=payment_id, principal=principal, cart_token=cart_token
    )
    if payment.provider != "sandbox":
        raise NotASandboxPayment(f"Payment {payment.id} uses {payment.provider}")
    if payment.status != PaymentStatus.PENDING:
        raise Conflict(f"The payment is already {payment.status}", payment_status=payment.status)
    assert payment.provider_reference is not None
    provider = SandboxProvider(settings)
    body = provider.build_event(
        outcome=outcome,
        reference=payment.provider_reference,
        amount=payment.amount,
        currency=payment.currency,
    )
    # Nothing is written here; end the read so the delivery's own requests never wait on it.
    await session.rollback()
    task = asyncio.create_task(provider.deliver(body, copies=1 + duplicates))
    _DELIVERIES.add(task)
    task.add_done_callback(_DELIVERIES.discard)


async def wait_for_sandbox_deliveries() -> None:
    """Let running deliveries finish (shutdown, tests)."""
    while _DELIVERIES:
        await asyncio.gather(*list(_DELIVERIES), return_exceptions=True)
