"""Choosing warehouses for an order line: pure functions over what the warehouses can give."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True, slots=True)
class Source:
    """One warehouse's sellable units of one SKU, as seen under the row lock."""

    warehouse_id: uuid.UUID
    code: str
    available: int
    latitude: float | None
    longitude: float | None


def haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance between two (latitude, longitude) points in degrees."""
    lat1, lon1 = map(math.radians, a)
    lat2, lon2 = map(math.radians, b)
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def rank_sources(sources: Sequence[Source], near: tuple[float, float] | None) -> list[Source]:
    """Nearest first; warehouses without coordinates (or no destination) after, by code, so the
    choice is deterministic."""

    def key(source: Source) -> tuple[float, str]:
        if near is None or source.latitude is None or source.longitude is None:
            return (math.inf, source.code)
        return (haversine_km(near, (source.latitude, source.longitude)), source.code)

    return sorted(sources, key=key)


def plan_line(
    sources: Sequence[Source], quantity: int, near: tuple[float, float] | None
) -> list[tuple[uuid.UUID, int]] | None:
    """Where to take `quantity` units from, or None when all warehouses together lack them.

    One parcel beats several: the nearest warehouse that can fill the whole line wins. Only
    when none can is the line split, taking from the nearest warehouses first.
    """
    ranked = [source for source in rank_sources(sources, near) if source.available > 0]
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
