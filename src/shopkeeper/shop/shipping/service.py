"""Shipping zones and methods (staff), the methods that serve a cart, and tax rates.

While no zone exists the shop charges `SHOPKEEPER_SHIPPING_FLAT_RATE` and checkout needs no
method; once one does, checkout requires a method that serves the address and the cart's weight.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from shopkeeper.core.db import is_postgres, utcnow
from shopkeeper.core.errors import Conflict, InvalidInput, NotFound
from shopkeeper.shop.catalog import service as catalog_service
from shopkeeper.shop.shipping.models import ShippingMethod, ShippingZone, TaxRate


class ShippingZoneNotFound(NotFound):
    slug, title = "shipping-zone-not-found", "Shipping zone not found"


class ShippingMethodRequired(InvalidInput):
    slug, title = "shipping-method-required", "Choose a shipping method"


class ShippingMethodUnavailable(Conflict):
    slug, title = "shipping-method-unavailable", "Shipping method does not serve this order"


@dataclass(frozen=True, slots=True)
class PricedMethod:
    id: uuid.UUID
    name: str
    price: int


@dataclass(frozen=True, slots=True)
class Shipping:
    """What an order pays for shipping, and by which method (None: the flat rate)."""

    price: int
    method: ShippingMethod | None


# --- staff --------------------------------------------------------------------------------------


async def create_zone(session: AsyncSession, *, name: str, countries: list[str]) -> ShippingZone:
    zone = ShippingZone(name=name, countries=sorted({c.upper() for c in countries}))
    session.add(zone)
    await session.commit()
    return zone


async def list_zones(session: AsyncSession) -> Sequence[ShippingZone]:
    return (await session.scalars(select(ShippingZone).order_by(ShippingZone.created_at))).all()


async def list_methods(session: AsyncSession) -> Sequence[ShippingMethod]:
    return (await session.scalars(select(ShippingMethod).order_by(ShippingMethod.created_at))).all()


async def create_method(
    session: AsyncSession,
    *,
    zone_id: uuid.UUID,
    name: str,
    price: int,
    free_over: int | None,
    max_weight_grams: int | None,
) -> ShippingMethod:
    if await session.get(ShippingZone, zone_id) is None:
        raise ShippingZoneNotFound()
    method = ShippingMethod(
        zone_id=zone_id,
        name=name,
        price_amount=price,
        free_over_amount=free_over,
        max_weight_grams=max_weight_grams,
    )
    session.add(method)
    await session.commit()
    return method


async def set_tax_rate(
    session: AsyncSession, *, country: str, rate_bps: int, name: str | None
) -> TaxRate:
    dialect = postgresql if is_postgres(session) else sqlite
    values = {
        "country": country.upper(),
        "rate_bps": rate_bps,
        "name": name,
        "updated_at": utcnow(),
    }
    insert = dialect.insert(TaxRate).values(**values)
    await session.execute(
        insert.on_conflict_do_update(
            index_elements=["country"],
            set_={"rate_bps": rate_bps, "name": name, "updated_at": values["updated_at"]},
        )
    )
    await session.commit()
    rate = await session.get(TaxRate, country.upper(), populate_existing=True)
    assert rate is not None
    return rate


async def list_tax_rates(session: AsyncSession) -> Sequence[TaxRate]:
    return (await session.scalars(select(TaxRate).order_by(TaxRate.country))).all()


# --- carts and checkout -------------------------------------------------------------------------


def zone_count_column() -> ColumnElement[Any]:
    """How many shipping zones exist, as a scalar subquery: checkout reads it with the cart
    (`carts.snapshot_query`), so that shipping costs the hot path no round trip of its own."""
    return select(func.count()).select_from(ShippingZone).scalar_subquery()


def tax_rate_column(country: ColumnElement[Any]) -> ColumnElement[Any]:
    """The rate of `country` (upper-case) in basis points, or NULL, as a scalar subquery."""
    return select(TaxRate.rate_bps).where(TaxRate.country == country).scalar_subquery()


async def cart_weight(session: AsyncSession, lines: Sequence[tuple[str, int]]) -> int:
    weights = await catalog_service.weights_of(session, {sku for sku, _ in lines})
    return sum(weights.get(sku, 0) * quantity for sku, quantity in lines)


async def methods_for(
    session: AsyncSession, *, country: str, weight: int, goods: int
) -> list[PricedMethod]:
    """The methods serving `country` and `weight`, priced for goods worth `goods` (subtotal
    less discount), cheapest first."""
    return [
        PricedMethod(method.id, method.name, _price(method, goods))
        for method in await _serving(session, country, weight)
    ]


async def shipping_for(
    session: AsyncSession,
    *,
    zones: int,
    method_id: uuid.UUID | None,
    country: str,
    weight: int,
    goods: int,
    flat_rate: int,
) -> Shipping:
    """Checkout's shipping (`zones`: how many zones exist, read with the cart): the flat
    rate while no zone exists; otherwise the chosen method,
    which must serve the address (422 `shipping-method-required`, 409
    `shipping-method-unavailable`)."""
    if not zones:
        return Shipping(flat_rate, None)
    if method_id is None:
        raise ShippingMethodRequired(
            "Choose a shipping method (GET /carts/{id}/shipping-methods lists them)",
            errors=[{"loc": ["body", "shipping_method_id"], "msg": "required"}],
        )
    for method in await _serving(session, country, weight):
        if method.id == method_id:
            return Shipping(_price(method, goods), method)
    raise ShippingMethodUnavailable(
        f"That method does not ship to {country.upper()} (or not this weight)",
        shipping_method_id=str(method_id),
    )


async def _serving(session: AsyncSession, country: str, weight: int) -> list[ShippingMethod]:
    rows = await session.execute(
        select(ShippingMethod, ShippingZone.countries).join(
            ShippingZone, ShippingZone.id == ShippingMethod.zone_id
        )
    )
    wanted = country.upper()
    serving = [
        method
        for method, countries in rows
        if wanted in countries
        and (method.max_weight_grams is None or weight <= method.max_weight_grams)
    ]
    return sorted(serving, key=lambda method: (method.price_amount, method.name))


def _price(method: ShippingMethod, goods: int) -> int:
    if method.free_over_amount is not None and goods >= method.free_over_amount:
        return 0
    return method.price_amount
