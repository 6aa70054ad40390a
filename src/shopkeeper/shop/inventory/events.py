"""What the inventory domain tells others. Frozen dataclasses, past tense, plain values."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StockLow:
    """A reservation took a SKU's sellable stock (all warehouses) down to the low threshold."""

    sku: str
    available: int
    threshold: int | None = None
    """The threshold crossed (the SKU's own or the shop's); None in events recorded before
    thresholds were per SKU."""


@dataclass(frozen=True)
class StockChanged:
    """The sellable stock of these SKUs changed; caches showing `available` are stale."""

    skus: list[str]
