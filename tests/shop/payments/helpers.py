"""Building and delivering callbacks the way each provider does, and reading what they did."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from typing import Any

import httpx
from sqlalchemy import func, select

from shopkeeper.core.mail import OutboundMail
from shopkeeper.core.runtime import Runtime
from shopkeeper.shop.orders.models import OrderTransition
from shopkeeper.shop.payments.models import PaymentCallback
from shopkeeper.shop.payments.providers.sandbox import sign
from tests.shop.payments.conftest import SANDBOX_SECRET

WEBHOOKS = "/api/v1/payments/webhooks"


def sandbox_callback(
    payment: dict[str, Any],
    *,
    kind: str = "payment.succeeded",
    event_id: str | None = None,
    amount: int | None = None,
    currency: str | None = None,
    secret: str = SANDBOX_SECRET,
    timestamp: int | None = None,
) -> tuple[dict[str, str], bytes]:
    """A callback as the sandbox provider signs it (API.md, Callbacks)."""
    event = {
        "id": event_id or f"evt_{secrets.token_hex(8)}",
        "type": kind,
        "created": int(time.time()),
        "data": {
            "reference": payment["provider_reference"],
            "amount": payment["amount"]["amount"] if amount is None else amount,
            "currency": currency or payment["amount"]["currency"],
        },
    }
    body = json.dumps(event).encode()
    at = int(time.time()) if timestamp is None else timestamp
    headers = {"Content-Type": "application/json", "Shopkeeper-Signature": sign(secret, at, body)}
    return headers, body


async def deliver(
    client: httpx.AsyncClient, provider: str, headers: dict[str, str], body: bytes
) -> httpx.Response:
    return await client.post(f"{WEBHOOKS}/{provider}", headers=headers, content=body)


async def callbacks_recorded(runtime: Runtime, *, verified: bool | None = None) -> int:
    async with runtime.db.session() as session:
        query = select(func.count()).select_from(PaymentCallback)
        if verified is not None:
            query = query.where(PaymentCallback.verified.is_(verified))
        return int(await session.scalar(query) or 0)


async def mails(runtime: Runtime, template: str) -> list[str]:
    async with runtime.db.session() as session:
        rows = await session.scalars(
            select(OutboundMail.recipient).where(OutboundMail.template == template)
        )
        return list(rows)


async def paid_transitions(runtime: Runtime, order_id: str) -> int:
    async with runtime.db.session() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(OrderTransition)
            .where(
                OrderTransition.order_id == uuid.UUID(order_id), OrderTransition.to_status == "paid"
            )
        )
        return int(count or 0)


def refund_headers(staff: dict[str, str]) -> dict[str, str]:
    return {**staff, "Idempotency-Key": str(uuid.uuid4())}
