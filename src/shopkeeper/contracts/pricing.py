"""Prices the crawl reads on other shops' pages, for the shop to compare with its own."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class ObservedPrice:
    amount: int
    """Minor units by the currency's ISO 4217 exponent."""
    currency: str


@dataclass(frozen=True, slots=True)
class CompetitorPriceChanged:
    """A watched competitor page shows a price other than the one last read from it; `old` is
    None on the first price read from the page. Never recorded for a page whose price is
    unchanged or could not be read. Recorded with the watch's price-history row."""

    watch_id: uuid.UUID
    sku: str
    url: str
    old: ObservedPrice | None
    new: ObservedPrice
    observed_at: datetime
