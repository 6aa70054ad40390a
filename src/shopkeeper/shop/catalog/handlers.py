"""The catalog's reactions to other domains' events."""

from __future__ import annotations

from typing import Any

from shopkeeper.core.events import HandlerContext, handles
from shopkeeper.shop.catalog.service import invalidate_products
from shopkeeper.shop.inventory.events import StockChanged


@handles(StockChanged)
async def drop_cached_stock(ctx: HandlerContext, payload: dict[str, Any]) -> None:
    """Stock moved, so the `available` shown in cached details and listings is stale."""
    await invalidate_products(ctx.runtime.cache, skus=payload["skus"])
