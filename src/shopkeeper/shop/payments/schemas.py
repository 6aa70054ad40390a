from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shopkeeper.core.money import Money
from shopkeeper.shop.payments.models import Payment, Refund
from shopkeeper.shop.payments.providers import ProviderName


class CreatePaymentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: ProviderName


class RefundRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: int | None = Field(
        default=None, gt=0, description="Minor units; default: everything not yet refunded"
    )


class SandboxOutcomeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    duplicates: int = Field(
        default=0, ge=0, le=20, description="Extra identical deliveries of the same event"
    )


class PaymentAction(BaseModel):
    type: Literal["redirect", "client_secret", "qr_code", "none"]
    value: str | None


class PaymentOut(BaseModel):
    id: uuid.UUID
    order_id: uuid.UUID
    provider: str
    status: str
    amount: Money
    refunded: Money
    provider_reference: str | None
    action: PaymentAction
    created_at: datetime

    @classmethod
    def of(cls, payment: Payment) -> PaymentOut:
        return cls(
            id=payment.id,
            order_id=payment.order_id,
            provider=payment.provider,
            status=payment.status,
            amount=Money(amount=payment.amount, currency=payment.currency),
            refunded=Money(amount=payment.refunded_amount, currency=payment.currency),
            provider_reference=payment.provider_reference,
            action=PaymentAction(type=payment.action_type, value=payment.action_value),
            created_at=payment.created_at,
        )


class RefundOut(BaseModel):
    id: uuid.UUID
    payment_id: uuid.UUID
    status: str
    amount: Money
    reason: str
    provider_reference: str | None
    created_at: datetime

    @classmethod
    def of(cls, refund: Refund) -> RefundOut:
        return cls(
            id=refund.id,
            payment_id=refund.payment_id,
            status=refund.status,
            amount=Money(amount=refund.amount, currency=refund.currency),
            reason=refund.reason,
            provider_reference=refund.provider_reference,
            created_at=refund.created_at,
        )
