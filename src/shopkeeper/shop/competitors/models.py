"""The latest price read on each competitor page watched for a SKU."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shopkeeper.core.db import Base, UTCDateTime
from shopkeeper.shop.catalog.models import Variant


class CompetitorPrice(Base):
    """One row per watch (a SKU and a competitor URL), overwritten by each newer price."""

    __tablename__ = "shop_competitor_prices"

    watch_id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), index=True)
    url: Mapped[str] = mapped_column(Text())
    amount: Mapped[int] = mapped_column(BigInteger())
    currency: Mapped[str] = mapped_column(String(3))
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime())

    variant: Mapped[Variant | None] = relationship(
        Variant,
        primaryjoin="foreign(CompetitorPrice.sku) == Variant.sku",
        viewonly=True,
        lazy="selectin",
    )
    """Our variant of that SKU, if the catalog has one: its price is ours."""
