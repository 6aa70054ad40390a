"""Request and response models of the inventory API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from shopkeeper.core.errors import InvalidInput
from shopkeeper.shop.inventory.geo import WarehouseDistance
from shopkeeper.shop.inventory.service import MAX_QUANTITY, SkuStock, StockLevelView

WarehouseCode = Annotated[
    str, StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
]


class WarehouseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: WarehouseCode
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    latitude: Annotated[float, Field(ge=-90, le=90)] | None = None
    longitude: Annotated[float, Field(ge=-180, le=180)] | None = None

    @model_validator(mode="after")
    def _both_coordinates_or_neither(self) -> Self:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("give both latitude and longitude, or neither")
        return self


class WarehouseOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str
    name: str
    latitude: float | None
    longitude: float | None
    created_at: datetime


class WarehouseNearOut(WarehouseOut):
    distance_km: float | None
    """From `near`: PostGIS on the WGS84 spheroid when installed, else the haversine formula.
    None without `near` or without the warehouse's coordinates."""

    @classmethod
    def of(cls, entry: WarehouseDistance) -> WarehouseNearOut:
        listed = WarehouseOut.model_validate(entry.warehouse)
        return cls(**listed.model_dump(), distance_km=entry.distance_km)


def parse_near(value: str) -> tuple[float, float]:
    """`"48.8566,2.3522"` -> (latitude, longitude), as a 422 problem when malformed."""
    parts = value.split(",")
    try:
        latitude, longitude = (float(part) for part in parts)
    except ValueError:
        raise _bad_near("near must be `latitude,longitude` in decimal degrees") from None
    # Negated ranges, so the NaN that float() accepts fails them too.
    if not (-90 <= latitude <= 90):
        raise _bad_near("latitude must be between -90 and 90")
    if not (-180 <= longitude <= 180):
        raise _bad_near("longitude must be between -180 and 180")
    return latitude, longitude


def _bad_near(message: str) -> InvalidInput:
    return InvalidInput(message, errors=[{"loc": ["query", "near"], "msg": message}])


class StockLevelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    on_hand: Annotated[int, Field(ge=0, le=MAX_QUANTITY, strict=True)]


class ThresholdIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    low_stock_threshold: Annotated[int, Field(ge=0, le=MAX_QUANTITY, strict=True)] | None = Field(
        description="`StockLow` fires when a reservation takes the SKU's available units to at "
        "or below this; null returns the SKU to the shop's threshold"
    )


class StockLevelOut(BaseModel):
    sku: str
    warehouse: str
    on_hand: int
    reserved: int
    available: int

    @classmethod
    def of(cls, level: StockLevelView) -> StockLevelOut:
        return cls(
            sku=level.sku,
            warehouse=level.warehouse,
            on_hand=level.on_hand,
            reserved=level.reserved,
            available=level.available,
        )


class StockOut(BaseModel):
    sku: str
    on_hand: int
    reserved: int
    available: int
    low_stock_threshold: int | None = Field(
        description="This SKU's own low-stock threshold; null: the shop's "
        "(`SHOPKEEPER_STOCK_LOW_THRESHOLD`)"
    )
    warehouses: list[StockLevelOut]

    @classmethod
    def of(cls, stock: SkuStock) -> StockOut:
        return cls(
            sku=stock.sku,
            on_hand=stock.on_hand,
            reserved=stock.reserved,
            available=stock.available,
            low_stock_threshold=stock.low_stock_threshold,
            warehouses=[StockLevelOut.of(level) for level in stock.warehouses],
        )
