"""Warehouses and stock levels, for staff."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from shopkeeper.core.db import Session
from shopkeeper.core.errors import problem_responses
from shopkeeper.shop.access import ShopReader, ShopWriter
from shopkeeper.shop.inventory import geo, service
from shopkeeper.shop.inventory.schemas import (
    StockLevelIn,
    StockLevelOut,
    StockOut,
    ThresholdIn,
    WarehouseIn,
    WarehouseNearOut,
    WarehouseOut,
    parse_near,
)

router = APIRouter(tags=["inventory"])

SkuPath = Annotated[str, Path(min_length=1, max_length=64)]


@router.post(
    "/warehouses",
    status_code=status.HTTP_201_CREATED,
    response_model=WarehouseOut,
    responses=problem_responses(401, 403, 409, 422, s409="`warehouse-code-taken`"),
)
async def create_warehouse(body: WarehouseIn, _staff: ShopWriter, session: Session) -> WarehouseOut:
    warehouse = await service.create_warehouse(
        session,
        code=body.code,
        name=body.name,
        latitude=body.latitude,
        longitude=body.longitude,
    )
    return WarehouseOut.model_validate(warehouse)


@router.get(
    "/warehouses",
    response_model=list[WarehouseNearOut],
    responses=problem_responses(401, 403, 422, s422="`validation-error`: a malformed `near`"),
)
async def list_warehouses(
    _staff: ShopReader,
    session: Session,
    near: Annotated[
        str | None,
        Query(
            max_length=64,
            description="`latitude,longitude` in degrees: nearest first, with `distance_km`",
            examples=["48.8566,2.3522"],
        ),
    ] = None,
) -> list[WarehouseNearOut]:
    point = None if near is None else parse_near(near)
    listed = await geo.warehouses_by_distance(session, near=point)
    return [WarehouseNearOut.of(entry) for entry in listed]


@router.put(
    "/stock/{sku}/{warehouse_code}",
    response_model=StockLevelOut,
    responses=problem_responses(
        401,
        403,
        404,
        409,
        422,
        s404="`unknown-sku`, `warehouse-not-found`",
        s409="`stock-below-reserved`: on_hand would fall below the units reserved for orders",
    ),
)
async def set_stock_level(
    sku: SkuPath,
    warehouse_code: Annotated[str, Path(min_length=1, max_length=32)],
    body: StockLevelIn,
    _staff: ShopWriter,
    session: Session,
) -> StockLevelOut:
    level = await service.set_stock_level(
        session, sku=sku, warehouse_code=warehouse_code, on_hand=body.on_hand
    )
    return StockLevelOut.of(level)


@router.get(
    "/stock/{sku}",
    response_model=StockOut,
    responses=problem_responses(401, 403, 404, s404="`unknown-sku`"),
)
async def get_stock(sku: SkuPath, _staff: ShopReader, session: Session) -> StockOut:
    return StockOut.of(await service.get_stock(session, sku=sku))


@router.put(
    "/stock/{sku}",
    response_model=StockOut,
    responses=problem_responses(401, 403, 404, 422, s404="`unknown-sku`"),
)
async def set_low_stock_threshold(
    sku: SkuPath, body: ThresholdIn, _staff: ShopWriter, session: Session
) -> StockOut:
    """The SKU's own low-stock threshold (`stock.low` on `/api/v1/ws/admin` when a reservation
    crosses it); `null` returns it to the shop's `SHOPKEEPER_STOCK_LOW_THRESHOLD`."""
    stock = await service.set_low_stock_threshold(
        session, sku=sku, threshold=body.low_stock_threshold
    )
    return StockOut.of(stock)
