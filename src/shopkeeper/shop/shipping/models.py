"""Shipping zones, their methods, and tax rates by country."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from shopkeeper.core.db import Base, JSONDocument, UTCDateTime, new_id, utcnow


class ShippingZone(Base):
    __tablename__ = "shipping_zones"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    # ISO 3166-1 alpha-2 codes, upper-case. Zones are few: they are read whole.
    countries: Mapped[list[str]] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ShippingMethod(Base):
    __tablename__ = "shipping_methods"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    zone_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("shipping_zones.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(200))
    price_amount: Mapped[int] = mapped_column(BigInteger)
    # Free when the cart's subtotal less its discount reaches this.
    free_over_amount: Mapped[int | None] = mapped_column(BigInteger, default=None)
    max_weight_grams: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_shipping_methods_zone_id", "zone_id"),)


class TaxRate(Base):
    __tablename__ = "tax_rates"

    country: Mapped[str] = mapped_column(String(2), primary_key=True)
    rate_bps: Mapped[int] = mapped_column(Integer)
    name: Mapped[str | None] = mapped_column(String(100), default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
