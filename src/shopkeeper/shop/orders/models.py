"""Orders, their lines (prices and names frozen at checkout), and the audit trail of transitions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shopkeeper.core.db import Base, JSONDocument, UTCDateTime, new_id, utcnow


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    status: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    # A guest's order is theirs by the cart token they checked out with, stored only as a hash.
    guest_token_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    cart_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    email: Mapped[str] = mapped_column(String(320))
    currency: Mapped[str] = mapped_column(String(3))
    subtotal_amount: Mapped[int] = mapped_column(BigInteger)
    shipping_amount: Mapped[int] = mapped_column(BigInteger)
    # total = subtotal - discount + shipping + tax (tax 0 while no rate applies), frozen here.
    discount_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    tax_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    total_amount: Mapped[int] = mapped_column(BigInteger)
    voucher_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    voucher_code: Mapped[str | None] = mapped_column(String(64), default=None)
    # Whose per-customer counter the voucher's use went to, so that a give-back finds it.
    voucher_customer: Mapped[str | None] = mapped_column(String(330), default=None)
    shipping_method_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    shipping_method_name: Mapped[str | None] = mapped_column(String(200), default=None)
    shipping_address: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    tracking_number: Mapped[str | None] = mapped_column(String(100), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", order_by="OrderLine.position", lazy="raise"
    )

    __table_args__ = (
        Index("ix_orders_user_id_id", "user_id", "id"),
        Index("ix_orders_status_id", "status", "id"),
        # The expiry job's scan: pending orders by deadline.
        Index("ix_orders_status_expires_at", "status", "expires_at"),
    )


class OrderLine(Base):
    __tablename__ = "order_lines"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("orders.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    sku: Mapped[str] = mapped_column(String(64))
    product_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    name: Mapped[str] = mapped_column(String(300))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_amount: Mapped[int] = mapped_column(BigInteger)
    total_amount: Mapped[int] = mapped_column(BigInteger)

    order: Mapped[Order] = relationship(back_populates="lines", lazy="raise")

    __table_args__ = (Index("ix_order_lines_order_id", "order_id"),)


class OrderTransition(Base):
    """Every status change, who made it and when: the order's audit trail."""

    __tablename__ = "order_transitions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("orders.id", ondelete="CASCADE"))
    from_status: Mapped[str | None] = mapped_column(String(32), default=None)
    to_status: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))

    __table_args__ = (Index("ix_order_transitions_order_id", "order_id"),)


class OrderNumberCounter(Base):
    """Order-number counter for SQLite, which has no sequences (PostgreSQL uses
    `order_number_seq`). SQLite's single writer makes the conditional increment race-free."""

    __tablename__ = "order_number_counters"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)
