"""How far warehouses are from a destination: PostGIS on the WGS84 spheroid when the database
has it, the haversine formula on a sphere otherwise.

PostGIS is optional (migration 0006 installs it where the server offers it). Whether a database
has it is asked once per engine and remembered: installing PostGIS into a running shop takes
effect when its processes restart.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    ColumnExpressionArgument,
    Float,
    literal,
    literal_column,
    select,
    text,
)
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.functions import Function

from shopkeeper.core.db import is_postgres
from shopkeeper.shop.inventory.allocation import haversine_km
from shopkeeper.shop.inventory.models import Warehouse

WGS84_SRID = 4326

# Engine URL -> schema holding PostGIS, or None where it is not installed.
_postgis_schemas: dict[URL, str | None] = {}


@dataclass(frozen=True, slots=True)
class WarehouseDistance:
    warehouse: Warehouse
    distance_km: float | None
    """None when the warehouse has no coordinates or no destination was given."""


async def postgis_schema(session: AsyncSession) -> str | None:
    """The schema PostGIS is installed in on this session's database, or None without it."""
    if not is_postgres(session):
        return None
    url = session.get_bind().engine.url
    if url not in _postgis_schemas:
        _postgis_schemas[url] = await session.scalar(
            text(
                "SELECT n.nspname FROM pg_extension e"
                " JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'postgis'"
            )
        )
    return _postgis_schemas[url]


async def warehouse_distances_km(
    session: AsyncSession, near: tuple[float, float], warehouse_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, float]:
    """Kilometres from `near` (latitude, longitude) to each of the warehouses that has
    coordinates; warehouses without them are left out."""
    if not warehouse_ids:
        return {}
    located = (
        Warehouse.id.in_(warehouse_ids),
        Warehouse.latitude.is_not(None),
        Warehouse.longitude.is_not(None),
    )
    schema = await postgis_schema(session)
    if schema is not None:
        rows = await session.execute(
            select(Warehouse.id, _geodesic_metres(schema, near)).where(*located)
        )
        return {warehouse_id: float(metres) / 1000 for warehouse_id, metres in rows}
    rows_with_coordinates = await session.execute(
        select(Warehouse.id, Warehouse.latitude, Warehouse.longitude).where(*located)
    )
    return {
        warehouse_id: haversine_km(near, (latitude, longitude))
        for warehouse_id, latitude, longitude in rows_with_coordinates
        if latitude is not None and longitude is not None
    }


async def warehouses_by_distance(
    session: AsyncSession, *, near: tuple[float, float] | None
) -> list[WarehouseDistance]:
    """Every warehouse, nearest to `near` first, by the same distances allocation ranks by;
    those without coordinates (all of them, without `near`) after, by code."""
    warehouses = (await session.scalars(select(Warehouse).order_by(Warehouse.code))).all()
    distances = (
        await warehouse_distances_km(session, near, [warehouse.id for warehouse in warehouses])
        if near is not None
        else {}
    )
    listed = [WarehouseDistance(warehouse, distances.get(warehouse.id)) for warehouse in warehouses]
    return sorted(
        listed,
        key=lambda entry: (
            math.inf if entry.distance_km is None else entry.distance_km,
            entry.warehouse.code,
        ),
    )


def _geodesic_metres(schema: str, near: tuple[float, float]) -> ColumnElement[float]:
    """ST_Distance between geography points: metres along the WGS84 spheroid, not a sphere."""

    def postgis(name: str, *arguments: ColumnExpressionArgument[Any]) -> Function[Any]:
        # Schema-qualified, so PostGIS need not be on the search_path (0006 keeps it in its own).
        return Function(name, *arguments, packagenames=(schema,))

    def point(
        latitude: ColumnExpressionArgument[Any], longitude: ColumnExpressionArgument[Any]
    ) -> Function[Any]:
        # Longitude first: PostGIS points are (x, y).
        made = postgis("ST_MakePoint", longitude, latitude)
        return postgis("geography", postgis("ST_SetSRID", made, literal_column(str(WGS84_SRID))))

    latitude, longitude = near
    return Function(
        "ST_Distance",
        point(literal(latitude, Float()), literal(longitude, Float())),
        point(Warehouse.latitude, Warehouse.longitude),
        packagenames=(schema,),
        type_=Float(),
    )
