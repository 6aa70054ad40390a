"""Warehouses, stock per (sku, warehouse), and the allocations that reserve it."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from shopkeeper.core.db import Base, UTCDateTime, new_id, utcnow

SKU_MAX_LENGTH = 64


class Warehouse(Base):
    __tablename__ = "warehouses"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    latitude: Mapped[float | None] = mapped_column(Float, default=None)
    longitude: Mapped[float | None] = mapped_column(Float, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint("latitude IS NULL OR (latitude >= -90 AND latitude <= 90)", "latitude"),
        CheckConstraint(
            "longitude IS NULL OR (longitude >= -180 AND longitude <= 180)", "longitude"
        ),
    )

    def __str__(self) -> str:
        return self.code


class StockLevel(Base):
    """How many units of one SKU one warehouse holds, and how many of those are promised.

    The CHECK constraints are the last line of defence: whatever the code does, the database
    refuses a row whose `available = on_hand - reserved` would go negative.
    """

    __tablename__ = "stock_levels"

    sku: Mapped[str] = mapped_column(
        String(SKU_MAX_LENGTH), ForeignKey("variants.sku", ondelete="RESTRICT"), primary_key=True
    )
    warehouse_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("warehouses.id", ondelete="RESTRICT"), primary_key=True
    )
    on_hand: Mapped[int] = mapped_column(Integer, default=0)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        CheckConstraint("on_hand >= 0", "on_hand_not_negative"),
        CheckConstraint("reserved >= 0", "reserved_not_negative"),
        CheckConstraint("reserved <= on_hand", "reserved_within_on_hand"),
        Index("ix_stock_levels_warehouse_id", "warehouse_id"),
    )


class StockThreshold(Base):
    """A SKU's own low-stock threshold, where it differs from the shop's
    (`SHOPKEEPER_STOCK_LOW_THRESHOLD`): a reservation that takes the SKU's available units
    from above it to at or below it raises `StockLow`."""

    __tablename__ = "stock_thresholds"

    sku: Mapped[str] = mapped_column(
        String(SKU_MAX_LENGTH), ForeignKey("variants.sku", ondelete="CASCADE"), primary_key=True
    )
    low_stock_threshold: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (CheckConstraint("low_stock_threshold >= 0", "threshold_not_negative"),)


class AllocationState(enum.StrEnum):
    RESERVED = "reserved"
    RELEASED = "released"
    SHIPPED = "shipped"


class StockAllocation(Base):
    """Units of one SKU reserved in one warehouse for one reference (an order id).

    Release and ship move a row out of `reserved` with a conditional update, so doing either
    twice, or both at once, changes stock exactly once.
    """

    __tablename__ = "stock_allocations"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    reference: Mapped[uuid.UUID] = mapped_column(Uuid)
    sku: Mapped[str] = mapped_column(String(SKU_MAX_LENGTH))
    warehouse_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("warehouses.id", ondelete="RESTRICT")
    )
    quantity: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default=AllocationState.RESERVED.value)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        CheckConstraint("quantity > 0", "quantity_positive"),
        CheckConstraint("state IN ('reserved', 'released', 'shipped')", "state"),
        Index("ix_stock_allocations_reference", "reference"),
    )
