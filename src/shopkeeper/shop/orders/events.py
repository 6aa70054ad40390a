"""What the orders domain tells others. Frozen dataclasses, past tense, ids and plain values."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class OrderPlaced:
    order_id: uuid.UUID
    number: str
    user_id: uuid.UUID | None
    email: str
    total_amount: int
    currency: str
    skus: tuple[str, ...]
    at: datetime


@dataclass(frozen=True)
class OrderStatusChanged:
    order_id: uuid.UUID
    number: str
    from_status: str
    to_status: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class OrderCancelled:
    """A paid order was cancelled when `was_paid`: the payments domain refunds it in full."""

    order_id: uuid.UUID
    was_paid: bool
    number: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class OrderShipped:
    order_id: uuid.UUID
    number: str
    tracking_number: str | None
    at: datetime
