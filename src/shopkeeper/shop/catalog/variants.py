"""Editing a product's variants one at a time: add, change, archive.

Every change commits first, then makes the product's cached detail, the listing pages and the
SKU's tags stale in every process (`service.invalidate_products`). A variant is archived, never
deleted: orders and carts keep naming it, and its stock rows stay where they are.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from shopkeeper.core.cache import Cache
from shopkeeper.core.db import affected_rows, utcnow
from shopkeeper.core.errors import InvalidInput, NotFound
from shopkeeper.shop.catalog.models import Product, Variant
from shopkeeper.shop.catalog.schemas import VariantIn, VariantPatch
from shopkeeper.shop.catalog.service import (
    CurrencyNotAccepted,
    SkuTaken,
    invalidate_products,
    live_product,
)
from shopkeeper.shop.inventory.service import available_by_sku


class VariantNotFound(NotFound):
    slug, title = "variant-not-found", "Variant not found"


class LastVariant(InvalidInput):
    slug, title = "last-variant", "A product keeps at least one variant"


async def add_variant(
    session: AsyncSession, *, cache: Cache, currency: str, product_id: uuid.UUID, body: VariantIn
) -> dict[str, Any]:
    """A new variant at the end of a live product's list; 409 `sku-taken` for any SKU ever
    used, archived ones included (old orders name them)."""
    if body.price.currency != currency:
        raise CurrencyNotAccepted(
            f"prices must be in {currency}", sku=body.sku, currency=body.price.currency
        )
    product = await live_product(session, product_id)
    await _lock_product(session, product.id)
    if await session.scalar(select(Variant.id).where(Variant.sku == body.sku)) is not None:
        raise SkuTaken(f"SKU {body.sku!r} is taken", sku=body.sku)
    position = await session.scalar(
        select(func.coalesce(func.max(Variant.position), -1) + 1).where(
            Variant.product_id == product.id
        )
    )
    now = utcnow()
    variant = Variant(
        product_id=product.id,
        sku=body.sku,
        name=body.name,
        price=body.price.amount,
        currency=body.price.currency,
        attributes=body.attributes,
        weight_grams=body.weight_grams,
        position=position or 0,
        created_at=now,
    )
    session.add(variant)
    await session.flush()
    await _refresh_min_price(session, product.id, now)
    try:
        await session.commit()
    except IntegrityError as exc:
        raise SkuTaken(f"SKU {body.sku!r} was taken concurrently", sku=body.sku) from exc
    await invalidate_products(cache, product_ids=[product.id], skus=[body.sku])
    return await variant_dict(session, variant)


async def update_variant(
    session: AsyncSession, *, cache: Cache, currency: str, sku: str, body: VariantPatch
) -> dict[str, Any]:
    """Change name, price, attributes or weight. Placed orders froze their lines' prices at
    checkout, so a new price reaches carts and later orders only."""
    variant = await live_variant(session, sku)
    await _lock_product(session, variant.product_id)
    changes = body.model_dump(exclude_unset=True)
    for field in ("price", "attributes", "weight_grams"):
        if field in changes and changes[field] is None:
            raise InvalidInput(f"{field} cannot be null", field=field)
    if body.price is not None:
        if body.price.currency != currency:
            raise CurrencyNotAccepted(
                f"prices must be in {currency}", sku=sku, currency=body.price.currency
            )
        variant.price = body.price.amount
    if "name" in changes:
        variant.name = body.name
    if body.attributes is not None:
        variant.attributes = body.attributes
    if body.weight_grams is not None:
        variant.weight_grams = body.weight_grams
    now = utcnow()
    await session.flush()
    await _refresh_min_price(session, variant.product_id, now)
    await session.commit()
    await invalidate_products(cache, product_ids=[variant.product_id], skus=[sku])
    return await variant_dict(session, variant)


async def archive_variant(session: AsyncSession, *, cache: Cache, sku: str) -> None:
    """No longer listed or sellable (carts holding it see it unavailable); kept for old orders.
    The last live variant of a product cannot go: archive the product instead (422)."""
    variant = await live_variant(session, sku)
    # With the product locked two concurrent archives cannot each see the other's variant still
    # live (PostgreSQL); SQLite runs the one conditional statement below atomically.
    await _lock_product(session, variant.product_id)
    sibling = aliased(Variant)
    now = utcnow()
    archived = await session.execute(
        update(Variant)
        .where(
            Variant.id == variant.id,
            Variant.archived_at.is_(None),
            exists().where(
                sibling.product_id == variant.product_id,
                sibling.archived_at.is_(None),
                sibling.id != variant.id,
            ),
        )
        .values(archived_at=now)
    )
    if affected_rows(archived) != 1:
        await session.rollback()
        raise LastVariant(
            "This is the product's last variant; archive the product instead",
            sku=sku,
        )
    await _refresh_min_price(session, variant.product_id, now)
    await session.commit()
    await invalidate_products(cache, product_ids=[variant.product_id], skus=[sku])


async def live_variant(session: AsyncSession, sku: str) -> Variant:
    """The live variant of a live product with this SKU, or 404 `variant-not-found`."""
    variant = await session.scalar(
        select(Variant)
        .join(Product, Product.id == Variant.product_id)
        .where(Variant.sku == sku, Variant.archived_at.is_(None), Product.archived_at.is_(None))
        .execution_options(populate_existing=True)
    )
    if variant is None:
        raise VariantNotFound(f"no variant {sku!r}", sku=sku)
    return variant


async def variant_dict(session: AsyncSession, variant: Variant) -> dict[str, Any]:
    """The API's Variant, stock included."""
    available = await available_by_sku(session, [variant.sku])
    return {
        "id": str(variant.id),
        "sku": variant.sku,
        "name": variant.name,
        "price": {"amount": variant.price, "currency": variant.currency},
        "attributes": variant.attributes,
        "available": max(0, available.get(variant.sku, 0)),
        "weight_grams": variant.weight_grams,
    }


async def _lock_product(session: AsyncSession, product_id: uuid.UUID) -> None:
    """Serialize changes to one product's variants (PostgreSQL), so `min_price`, computed in SQL
    from the live variants, never misses a concurrent change."""
    await session.execute(select(Product.id).where(Product.id == product_id).with_for_update())


async def _refresh_min_price(session: AsyncSession, product_id: uuid.UUID, now: Any) -> None:
    """The product's `min_price` (what price sorting pages by) from its live variants, in SQL."""
    cheapest = (
        select(func.min(Variant.price))
        .where(Variant.product_id == product_id, Variant.archived_at.is_(None))
        .scalar_subquery()
    )
    await session.execute(
        update(Product)
        .where(Product.id == product_id)
        .values(min_price=func.coalesce(cheapest, Product.min_price), updated_at=now)
    )
