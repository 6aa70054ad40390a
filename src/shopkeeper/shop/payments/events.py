"""What the payments domain tells others. Frozen dataclasses, past tense, ids and plain values."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class PaymentSucceeded:
    payment_id: uuid.UUID
    order_id: uuid.UUID
    provider: str
    amount: int
    currency: str


@dataclass(frozen=True)
class PaymentFailed:
    payment_id: uuid.UUID
    order_id: uuid.UUID
    provider: str


@dataclass(frozen=True)
class PaymentNeedsReview:
    payment_id: uuid.UUID
    order_id: uuid.UUID
    provider: str
    expected_amount: int
    expected_currency: str
    reported_amount: int | None
    reported_currency: str | None


@dataclass(frozen=True)
class PaymentCapturedForClosedOrder:
    """Money arrived for an order that had expired or been cancelled: it goes back in full."""

    payment_id: uuid.UUID
    order_id: uuid.UUID


@dataclass(frozen=True)
class PaymentRefunded:
    payment_id: uuid.UUID
    refund_id: uuid.UUID
    order_id: uuid.UUID
    amount: int
    currency: str
    fully: bool
