"""The catalog's reactions to other domains' events."""

from __future__ import annotations

from shopkeeper.core.messaging.handlers import handles
from shopkeeper.core.runtime import HandlerContext
from shopkeeper.shop.catalog.service import invalidate_products
from shopkeeper.shop.inventory.events import StockChanged


@handles(StockChanged)
async def drop_cached_stock(ctx: HandlerContext, event: StockChanged) -> None:
    """Stock moved, so the `available` shown in cached details and listings is stale."""
    await invalidate_products(ctx.runtime.cache, skus=event.skus)
