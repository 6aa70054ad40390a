"""The catalog facts a cart line needs, read at the moment the cart is read.

The catalog service has no look-up by SKU, so this reads the catalog's variant and product
tables directly (read only, one query); it belongs in `catalog.service` once it has one.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shopkeeper.core.money import Money
from shopkeeper.shop.catalog.models import Product, Variant


@dataclass(frozen=True, slots=True)
class PricedVariant:
    sku: str
    product_id: uuid.UUID
    name: str
    price: Money
    archived: bool


def line_name(product_name: str, variant_name: str | None) -> str:
    return f"{product_name} ({variant_name})" if variant_name else product_name


async def price_variants(session: AsyncSession, skus: Collection[str]) -> dict[str, PricedVariant]:
    """Current price, name and archived flag per SKU; SKUs the catalog does not know are absent."""
    wanted = set(skus)
    if not wanted:
        return {}
    rows = await session.execute(
        select(
            Variant.sku,
            Variant.product_id,
            Product.name,
            Variant.name,
            Variant.price,
            Variant.currency,
            Product.archived_at,
        )
        .join(Product, Product.id == Variant.product_id)
        .where(Variant.sku.in_(wanted))
    )
    return {
        sku: PricedVariant(
            sku=sku,
            product_id=product_id,
            name=line_name(product_name, variant_name),
            price=Money(amount=price, currency=currency),
            archived=archived_at is not None,
        )
        for sku, product_id, product_name, variant_name, price, currency, archived_at in (rows)
    }
