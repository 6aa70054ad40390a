"""Request and response models of the shipping and tax API."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shopkeeper.core.money import Money
from shopkeeper.shop.shipping.models import ShippingMethod, ShippingZone, TaxRate

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Country = Annotated[str, StringConstraints(min_length=2, max_length=2, pattern=r"^[A-Za-z]{2}$")]


class ZoneIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    countries: Annotated[list[Country], Field(min_length=1, max_length=300)]


class ZoneOut(BaseModel):
    id: uuid.UUID
    name: str
    countries: list[str]

    @classmethod
    def of(cls, zone: ShippingZone) -> ZoneOut:
        return cls(id=zone.id, name=zone.name, countries=list(zone.countries))


class MethodIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    price: Money
    free_over: Money | None = None
    """Free when the cart's subtotal less its discount is at least this."""
    max_weight_grams: Annotated[int, Field(ge=0, le=100_000_000, strict=True)] | None = None


class MethodOut(BaseModel):
    id: uuid.UUID
    zone_id: uuid.UUID
    name: str
    price: Money
    free_over: Money | None
    max_weight_grams: int | None

    @classmethod
    def of(cls, method: ShippingMethod, currency: str) -> MethodOut:
        return cls(
            id=method.id,
            zone_id=method.zone_id,
            name=method.name,
            price=Money(amount=method.price_amount, currency=currency),
            free_over=(
                None
                if method.free_over_amount is None
                else Money(amount=method.free_over_amount, currency=currency)
            ),
            max_weight_grams=method.max_weight_grams,
        )


class TaxRateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rate_bps: Annotated[int, Field(ge=0, le=10_000, strict=True)]
    """Basis points: 2000 is 20 %."""
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None


class TaxRateOut(BaseModel):
    country: str
    rate_bps: int
    name: str | None

    @classmethod
    def of(cls, rate: TaxRate) -> TaxRateOut:
        return cls(country=rate.country, rate_bps=rate.rate_bps, name=rate.name)
