"""Vouchers, the categories they are limited to, and their per-customer use counters."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from shopkeeper.core.db import Base, UTCDateTime, new_id, utcnow


class VoucherKind(enum.StrEnum):
    PERCENTAGE = "percentage"
    FIXED = "fixed"
    FREE_SHIPPING = "free_shipping"


class Voucher(Base):
    __tablename__ = "vouchers"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    # Basis points for a percentage, minor units for a fixed amount, 0 for free shipping.
    value: Mapped[int] = mapped_column(BigInteger, default=0)
    min_subtotal_amount: Mapped[int | None] = mapped_column(BigInteger, default=None)
    usage_limit: Mapped[int | None] = mapped_column(Integer, default=None)
    per_customer_limit: Mapped[int | None] = mapped_column(Integer, default=None)
    # Orders holding the voucher that are not expired or cancelled. Only ever changed by a
    # conditional UPDATE in the checkout's (or the expiry's, the cancel's) transaction: the
    # row lock orders concurrent checkouts and `used < usage_limit` is re-checked under it.
    used: Mapped[int] = mapped_column(Integer, default=0)
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        CheckConstraint("kind IN ('percentage', 'fixed', 'free_shipping')", "kind"),
        CheckConstraint("used >= 0", "used_non_negative"),
        CheckConstraint("usage_limit IS NULL OR used <= usage_limit", "used_within_limit"),
    )


class VoucherCategory(Base):
    """A voucher limited to categories applies to their products and their sub-categories'."""

    __tablename__ = "voucher_categories"

    voucher_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("vouchers.id", ondelete="CASCADE"), primary_key=True
    )
    category_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("categories.id", ondelete="CASCADE"), primary_key=True
    )


class VoucherCustomerUse(Base):
    """How many live orders one customer (`user:<id>`, or `email:<address>` for guests) holds
    with a voucher; the per-customer limit's counter, changed like `Voucher.used`."""

    __tablename__ = "voucher_customer_uses"

    voucher_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("vouchers.id", ondelete="CASCADE"), primary_key=True
    )
    customer: Mapped[str] = mapped_column(String(330), primary_key=True)
    used: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (CheckConstraint("used >= 0", "used_non_negative"),)
