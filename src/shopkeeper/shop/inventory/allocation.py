"""Choosing warehouses for an order line: pure functions over what the warehouses can give and
how far they are from the destination (`inventory/geo.py` measures that)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True, slots=True)
class Source:
    """One warehouse's sellable units of one SKU, as seen under the row lock."""

    warehouse_id: uuid.UUID
    code: str
    available: int


def haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance between two (latitude, longitude) points in degrees, on a sphere of
    the Earth's mean radius (off by up to ~0.5% from the WGS84 spheroid)."""
    lat1, lon1 = map(math.radians, a)
    lat2, lon2 = map(math.radians, b)
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def rank_sources(
    sources: Sequence[Source], distances_km: Mapping[uuid.UUID, float]
) -> list[Source]:
    """Nearest first; warehouses with no distance (no coordinates, or no destination) after, by
    code, so the choice is deterministic."""

    def key(source: Source) -> tuple[float, str]:
        return (distances_km.get(source.warehouse_id, math.inf), source.code)

    return sorted(sources, key=key)


def plan_line(
    sources: Sequence[Source], quantity: int, distances_km: Mapping[uuid.UUID, float]
) -> list[tuple[uuid.UUID, int]] | None:
    """Where to take `quantity` units from, or None when all warehouses together lack them.

    One parcel beats several: the nearest warehouse that can fill the whole line wins. Only
    when none can is the line split, taking from the nearest warehouses first.
    """
    ranked = [source for source in rank_sources(sources, distances_km) if source.available > 0]
    if sum(source.available for source in ranked) < quantity:
        return None
    for source in ranked:
        if source.available >= quantity:
            return [(source.warehouse_id, quantity)]
    plan: list[tuple[uuid.UUID, int]] = []
    remaining = quantity
    for source in ranked:
        take = min(source.available, remaining)
        plan.append((source.warehouse_id, take))
        remaining -= take
        if remaining == 0:
            break
    return plan
