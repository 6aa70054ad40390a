"""Payments, their refunds, the provider events already applied, and the callback audit log."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from shopkeeper.core.db import Base, JSONDocument, UTCDateTime, new_id, utcnow


class PaymentStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    NEEDS_REVIEW = "needs_review"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"


class RefundStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


# Money was captured: what a refund can come from.
CAPTURED_STATUSES = (
    PaymentStatus.SUCCEEDED,
    PaymentStatus.PARTIALLY_REFUNDED,
    PaymentStatus.REFUNDED,
)


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("orders.id"))
    provider: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default=PaymentStatus.PENDING)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    """Refunds requested and not failed; a refund reserves its amount here first."""
    provider_reference: Mapped[str | None] = mapped_column(String(100), default=None)
    action_type: Mapped[str] = mapped_column(String(20), default="none")
    action_value: Mapped[str | None] = mapped_column(Text, default=None)
    reported_amount: Mapped[int | None] = mapped_column(BigInteger, default=None)
    reported_currency: Mapped[str | None] = mapped_column(String(3), default=None)
    """What the provider said it captured when that differed from the payment (needs_review)."""
    paid_order: Mapped[bool] = mapped_column(Boolean, default=False)
    """This payment's success moved the order to paid (otherwise it was refunded at once)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    succeeded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    __table_args__ = (
        UniqueConstraint(
            "provider", "provider_reference", name="uq_payments_provider_provider_reference"
        ),
        Index("ix_payments_order_id", "order_id"),
        Index("ix_payments_status_created_at", "status", "created_at"),
        # One payment in flight per order: a second concurrent create hits this index.
        Index(
            "uq_payments_pending_order_id",
            "order_id",
            unique=True,
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )


class Refund(Base):
    __tablename__ = "refunds"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    payment_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("payments.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(20), default=RefundStatus.PENDING)
    reason: Mapped[str] = mapped_column(String(200))
    dedup_key: Mapped[str | None] = mapped_column(String(100), default=None)
    """Set by automatic refunds ("order-cancelled"), so a re-run handler refunds once."""
    provider_reference: Mapped[str | None] = mapped_column(String(100), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    __table_args__ = (
        UniqueConstraint("payment_id", "dedup_key", name="uq_refunds_payment_id_dedup_key"),
        Index("ix_refunds_payment_id", "payment_id"),
    )


class AppliedProviderEvent(Base):
    """One row per provider event applied: the primary key makes a callback take effect once."""

    __tablename__ = "payment_provider_events"

    provider: Mapped[str] = mapped_column(String(20), primary_key=True)
    event_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    payment_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PaymentCallback(Base):
    """Every callback received, accepted or not, with what we made of it (no secrets, no card
    data: only the fields each provider module chooses to keep)."""

    __tablename__ = "payment_callbacks"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    provider: Mapped[str] = mapped_column(String(20))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    verified: Mapped[bool] = mapped_column(Boolean)
    result: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str | None] = mapped_column(String(300), default=None)
    event_key: Mapped[str | None] = mapped_column(String(200), default=None)
    payment_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDocument)

    __table_args__ = (
        Index("ix_payment_callbacks_provider_received_at", "provider", "received_at"),
        Index("ix_payment_callbacks_payment_id", "payment_id"),
    )


class PaymentResolution(Base):
    """A staff decision on a payment that needed review: who, when, what, and how it ended
    (`refund` can fail at the provider and be tried again, so a payment may have several)."""

    __tablename__ = "payment_resolutions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    payment_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("payments.id"))
    action: Mapped[str] = mapped_column(String(10))
    outcome: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(String(500), default=None)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    amount: Mapped[int | None] = mapped_column(BigInteger, default=None)
    currency: Mapped[str | None] = mapped_column(String(3), default=None)
    refund_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_payment_resolutions_payment_id", "payment_id", "created_at"),)
