from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shopkeeper.core.bounds import WholeNumber, between
from shopkeeper.core.money import MAX_AMOUNT, Money
from shopkeeper.shop.payments.models import Payment, Refund
from shopkeeper.shop.payments.providers import ProviderName

RefundReason = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
]


class CreatePaymentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: ProviderName


class RefundRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Annotated[int, between(1, MAX_AMOUNT), WholeNumber] | None = Field(
        default=None, description="Minor units; default: everything not yet refunded"
    )
    reason: RefundReason | None = Field(
        default=None, description="Why, kept on the refund; default `requested`"
    )


class ResolveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["accept", "refund"] = Field(
        description="`accept`: the provider holds the reported amount and that is fine, the "
        "order becomes paid; `refund`: the provider refunds the amount it reported"
    )
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = Field(
        default=None, description="Kept with the decision, for the audit trail"
    )
    reason: RefundReason | None = Field(
        default=None, description="With `refund`: the refund's reason (default `payment-review`)"
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
    reported_amount: Money | None = Field(
        description="What the provider reported capturing when it differed (`needs_review`)"
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, payment: Payment) -> PaymentOut:
        reported = None
        if payment.reported_amount is not None:
            reported = Money(
                amount=payment.reported_amount,
                currency=payment.reported_currency or payment.currency,
            )
        return cls(
            id=payment.id,
            order_id=payment.order_id,
            provider=payment.provider,
            status=payment.status,
            amount=Money(amount=payment.amount, currency=payment.currency),
            refunded=Money(amount=payment.refunded_amount, currency=payment.currency),
            provider_reference=payment.provider_reference,
            action=PaymentAction(type=payment.action_type, value=payment.action_value),
            reported_amount=reported,
            created_at=payment.created_at,
            updated_at=payment.updated_at,
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


class PaymentPage(BaseModel):
    items: list[PaymentOut]
    next_cursor: str | None
