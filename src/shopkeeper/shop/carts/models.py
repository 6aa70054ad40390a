"""Carts of signed-in users and of guests (who hold a secret token), and their lines."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from shopkeeper.core.db import Base, UTCDateTime, new_id, utcnow

MAX_LINE_QUANTITY = 100


class CartStatus(enum.StrEnum):
    OPEN = "open"
    CHECKED_OUT = "checked_out"
    MERGED = "merged"


class Cart(Base):
    __tablename__ = "carts"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), default=None
    )
    # A guest cart's bearer secret, kept only as its SHA-256 like refresh tokens.
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    status: Mapped[str] = mapped_column(String(16), default=CartStatus.OPEN.value)
    # The voucher the customer applied; checked again (and its use counted) at checkout.
    voucher_code: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        CheckConstraint("user_id IS NOT NULL OR token_hash IS NOT NULL", "has_owner"),
        CheckConstraint("status IN ('open', 'checked_out', 'merged')", "status"),
        # At most one open cart per user: it is "the user's cart" that a guest cart merges into.
        Index(
            "ix_carts_open_user_id",
            "user_id",
            unique=True,
            postgresql_where=text("status = 'open'"),
            sqlite_where=text("status = 'open'"),
        ),
    )


class CartItem(Base):
    """A line: a SKU and how many. Prices are not stored; they are read from the catalog."""

    __tablename__ = "cart_items"

    cart_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("carts.id", ondelete="CASCADE"), primary_key=True
    )
    sku: Mapped[str] = mapped_column(
        String(64), ForeignKey("variants.sku", ondelete="CASCADE"), primary_key=True
    )
    quantity: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint(f"quantity > 0 AND quantity <= {MAX_LINE_QUANTITY}", "quantity"),
    )
