"""Shipping zones, methods and tax rates (shop staff). A cart's methods are the carts API's."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, status

from shopkeeper.accounts.permissions import AppSettings
from shopkeeper.core.db import Session
from shopkeeper.core.errors import InvalidInput, problem_responses
from shopkeeper.core.money import Money
from shopkeeper.shop.access import ShopReader, ShopWriter
from shopkeeper.shop.shipping import service
from shopkeeper.shop.shipping.schemas import (
    MethodIn,
    MethodOut,
    TaxRateIn,
    TaxRateOut,
    ZoneIn,
    ZoneOut,
)

router = APIRouter(tags=["shipping"])

CountryPath = Annotated[str, Path(min_length=2, max_length=2, pattern=r"^[A-Za-z]{2}$")]


class WrongCurrency(InvalidInput):
    slug, title = "currency-mismatch", "Amount in another currency"


def _amount(money: Money | None, currency: str, field: str) -> int | None:
    if money is None:
        return None
    if money.currency != currency or money.amount < 0:
        raise WrongCurrency(f"{field} must be a non-negative {currency} amount", field=field)
    return money.amount


@router.post(
    "/shipping-zones",
    status_code=status.HTTP_201_CREATED,
    response_model=ZoneOut,
    responses=problem_responses(401, 403, 422),
)
async def create_zone(body: ZoneIn, session: Session, _staff: ShopWriter) -> ZoneOut:
    zone = await service.create_zone(session, name=body.name, countries=body.countries)
    return ZoneOut.of(zone)


@router.get("/shipping-zones", response_model=list[ZoneOut], responses=problem_responses(401, 403))
async def list_zones(session: Session, _staff: ShopReader) -> list[ZoneOut]:
    return [ZoneOut.of(zone) for zone in await service.list_zones(session)]


@router.post(
    "/shipping-zones/{zone_id}/methods",
    status_code=status.HTTP_201_CREATED,
    response_model=MethodOut,
    responses=problem_responses(
        401,
        403,
        404,
        422,
        s404="`shipping-zone-not-found`",
        s422="`validation-error`; `currency-mismatch` (an amount not in the shop's currency)",
    ),
)
async def create_method(
    zone_id: uuid.UUID, body: MethodIn, session: Session, settings: AppSettings, _staff: ShopWriter
) -> MethodOut:
    method = await service.create_method(
        session,
        zone_id=zone_id,
        name=body.name,
        price=_amount(body.price, settings.currency, "price") or 0,
        free_over=_amount(body.free_over, settings.currency, "free_over"),
        max_weight_grams=body.max_weight_grams,
    )
    return MethodOut.of(method, settings.currency)


@router.put(
    "/tax-rates/{country}",
    response_model=TaxRateOut,
    responses=problem_responses(401, 403, 422),
)
async def set_tax_rate(
    country: CountryPath, body: TaxRateIn, session: Session, _staff: ShopWriter
) -> TaxRateOut:
    """The country's rate; a country without one pays no tax. Whether catalog prices already
    include it is `SHOPKEEPER_PRICES_INCLUDE_TAX`."""
    rate = await service.set_tax_rate(
        session, country=country, rate_bps=body.rate_bps, name=body.name
    )
    return TaxRateOut.of(rate)


@router.get("/tax-rates", response_model=list[TaxRateOut], responses=problem_responses(401, 403))
async def list_tax_rates(session: Session, _staff: ShopReader) -> list[TaxRateOut]:
    return [TaxRateOut.of(rate) for rate in await service.list_tax_rates(session)]
