"""Catalog use cases: categories, products and variants; reads rendered to cacheable bytes.

Cache tags (core.cache): a product's detail carries `product:<id>` and `sku:<sku>` for each
variant; every listing page carries `catalog:lists`; the category list carries `catalog:categories`.
`invalidate_products` is how other domains (inventory, on stock changes) make them stale.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Subquery

from shopkeeper.core.cache import Cache
from shopkeeper.core.db import is_postgres, table_of, utcnow
from shopkeeper.core.errors import Conflict, InvalidInput, NotFound
from shopkeeper.core.jsonutil import dumps
from shopkeeper.core.money import Money
from shopkeeper.shop.catalog.models import Category, Product, Variant
from shopkeeper.shop.catalog.schemas import CategoryIn, ProductIn, ProductPatch
from shopkeeper.shop.catalog.search import Listed, ProductQuery, find_products, search_key
from shopkeeper.shop.inventory import service as inventory_service
from shopkeeper.shop.inventory.service import available_by_sku, available_of

LISTS_TAG = "catalog:lists"
CATEGORIES_TAG = "catalog:categories"


class ProductNotFound(NotFound):
    slug, title = "product-not-found", "Product not found"


class SlugTaken(Conflict):
    slug, title = "slug-taken", "Slug already in use"


class SkuTaken(Conflict):
    slug, title = "sku-taken", "SKU already in use"


class UnknownCategory(InvalidInput):
    slug, title = "unknown-category", "Unknown category"


class CurrencyNotAccepted(InvalidInput):
    slug, title = "currency-not-accepted", "Currency not accepted"


_variants = table_of(Variant)
# A page's variants with their sellable stock: one statement, plain Core rows (no ORM objects).
_PAGE_VARIANTS = (
    select(
        _variants.c.id,
        _variants.c.product_id,
        _variants.c.sku,
        _variants.c.name,
        _variants.c.price,
        _variants.c.currency,
        _variants.c.attributes,
        available_of(_variants.c.sku).label("available"),
        _variants.c.weight_grams,
    )
    .where(
        _variants.c.product_id.in_(bindparam("product_ids", expanding=True)),
        _variants.c.archived_at.is_(None),
    )
    .order_by(_variants.c.product_id, _variants.c.position)
)


def product_tag(product_id: uuid.UUID) -> str:
    return f"product:{product_id}"


def sku_tag(sku: str) -> str:
    return f"sku:{sku}"


async def invalidate_products(
    cache: Cache,
    *,
    product_ids: Collection[uuid.UUID] = (),
    skus: Collection[str] = (),
) -> None:
    """Make cached product details and listing pages stale in every process; call it after the
    commit that changed what they show (a product, or the stock behind a variant's `available`)."""
    tags = {LISTS_TAG, *(product_tag(each) for each in product_ids), *map(sku_tag, skus)}
    await cache.invalidate(tags)


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:180] or "item"


async def _free_slug(
    session: AsyncSession, model: type[Category] | type[Product], base: str
) -> str:
    """`base`, or `base-2`, `base-3`... whichever is free (one query)."""
    taken = set(
        await session.scalars(
            select(model.slug).where((model.slug == base) | model.slug.like(f"{base}-%"))
        )
    )
    if base not in taken:
        return base
    number = 2
    while f"{base}-{number}" in taken:
        number += 1
    return f"{base}-{number}"


# --- categories -----------------------------------------------------------------------------------


async def create_category(session: AsyncSession, *, cache: Cache, body: CategoryIn) -> Category:
    if body.parent_id is not None and not await live_category_exists(session, body.parent_id):
        raise UnknownCategory("parent_id names no category", parent_id=str(body.parent_id))
    if body.slug is not None:
        if await session.scalar(select(Category.id).where(Category.slug == body.slug)):
            raise SlugTaken(f"slug {body.slug!r} is taken")
        slug = body.slug
    else:
        slug = await _free_slug(session, Category, slugify(body.name))
    category = Category(name=body.name, slug=slug, parent_id=body.parent_id)
    session.add(category)
    try:
        await session.commit()
    except IntegrityError as exc:
        raise SlugTaken(f"slug {slug!r} is taken") from exc
    await cache.invalidate({CATEGORIES_TAG, LISTS_TAG})
    return category


async def list_categories_json(session: AsyncSession) -> bytes:
    categories = await session.scalars(
        select(Category).where(Category.archived_at.is_(None)).order_by(Category.name, Category.id)
    )
    return dumps([category_dict(each) for each in categories])


def category_dict(category: Category) -> dict[str, Any]:
    return {
        "id": str(category.id),
        "name": category.name,
        "slug": category.slug,
        "parent_id": _str_or_none(category.parent_id),
        "created_at": category.created_at,
    }


# --- products -------------------------------------------------------------------------------------


async def create_product(
    session: AsyncSession, *, cache: Cache, currency: str, body: ProductIn
) -> dict[str, Any]:
    for variant in body.variants:
        if variant.price.currency != currency:
            raise CurrencyNotAccepted(
                f"prices must be in {currency}", sku=variant.sku, currency=variant.price.currency
            )
    skus = [variant.sku for variant in body.variants]
    duplicate = next((sku for sku in skus if skus.count(sku) > 1), None)
    if duplicate is not None:
        raise SkuTaken(f"SKU {duplicate!r} appears twice", sku=duplicate)
    taken = await session.scalar(select(Variant.sku).where(Variant.sku.in_(skus)).limit(1))
    if taken is not None:
        raise SkuTaken(f"SKU {taken!r} is taken", sku=taken)
    await _ensure_category(session, body.category_id)
    if body.slug is not None:
        if await session.scalar(select(Product.id).where(Product.slug == body.slug)):
            raise SlugTaken(f"slug {body.slug!r} is taken")
        slug = body.slug
    else:
        slug = await _free_slug(session, Product, slugify(body.name))
    now = utcnow()
    product = Product(
        slug=slug,
        name=body.name,
        description=body.description,
        category_id=body.category_id,
        attributes=body.attributes,
        min_price=min(variant.price.amount for variant in body.variants),
        search_key=search_key(body.name),
        created_at=now,
        updated_at=now,
    )
    session.add(product)
    await session.flush()
    variants = [
        Variant(
            product_id=product.id,
            sku=variant.sku,
            name=variant.name,
            price=variant.price.amount,
            currency=variant.price.currency,
            attributes=variant.attributes,
            weight_grams=variant.weight_grams,
            position=position,
            created_at=now,
        )
        for position, variant in enumerate(body.variants)
    ]
    session.add_all(variants)
    try:
        await session.commit()
    except IntegrityError as exc:
        # A concurrent create took the slug or a SKU between our checks and the commit.
        raise Conflict("slug or SKU taken concurrently; retry") from exc
    await invalidate_products(cache, product_ids=[product.id], skus=skus)
    return product_dict(product, variants, await available_by_sku(session, skus))


async def update_product(
    session: AsyncSession, *, cache: Cache, product_id: uuid.UUID, body: ProductPatch
) -> dict[str, Any]:
    product = await live_product(session, product_id)
    changes = body.model_dump(exclude_unset=True)
    if "name" in changes:
        if changes["name"] is None:
            raise InvalidInput("name cannot be null", field="name")
        product.name = changes["name"]
        product.search_key = search_key(product.name)
    if "slug" in changes and changes["slug"] is not None and changes["slug"] != product.slug:
        clash = await session.scalar(select(Product.id).where(Product.slug == changes["slug"]))
        if clash is not None:
            raise SlugTaken(f"slug {changes['slug']!r} is taken")
        product.slug = changes["slug"]
    if "description" in changes:
        product.description = changes["description"] or ""
    if "category_id" in changes:
        await _ensure_category(session, changes["category_id"])
        product.category_id = changes["category_id"]
    if "attributes" in changes:
        product.attributes = changes["attributes"] or {}
    product.updated_at = utcnow()
    try:
        await session.commit()
    except IntegrityError as exc:
        raise SlugTaken("slug taken concurrently") from exc
    await invalidate_products(cache, product_ids=[product.id])
    return await _render_one(session, product)


async def archive_product(session: AsyncSession, *, cache: Cache, product_id: uuid.UUID) -> None:
    product = await live_product(session, product_id)
    product.archived_at = utcnow()
    product.updated_at = product.archived_at
    await session.commit()
    await invalidate_products(cache, product_ids=[product.id])


async def product_json(session: AsyncSession, *, id_or_slug: str) -> tuple[bytes, set[str]]:
    """A live product rendered for the API, and the cache tags of that rendering."""
    try:
        lookup = Product.id == uuid.UUID(id_or_slug)
    except ValueError:
        lookup = Product.slug == id_or_slug
    product = await session.scalar(select(Product).where(lookup, Product.archived_at.is_(None)))
    if product is None:
        raise ProductNotFound(f"no product {id_or_slug!r}")
    rendered = await _render_one(session, product)
    tags = {product_tag(product.id), *(sku_tag(v["sku"]) for v in rendered["variants"])}
    return dumps(rendered), tags


async def product_page_json(session: AsyncSession, *, query: ProductQuery) -> bytes:
    """One listing page: one statement whatever the page size (products, variants, stock),
    one more to resolve a category, two more when a search falls back to corrected words."""
    if is_postgres(session):
        # Reads only, each statement on its own: no BEGIN and ROLLBACK round trips around them
        # (2 of 5 per page; on this 2-CPU machine each round trip costs the worker about 0.5 ms
        # of CPU in the socket write alone, measured with py-spy --native).
        await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    products, next_cursor = await find_products(session, query)
    return dumps({"items": [_listed_dict(each) for each in products], "next_cursor": next_cursor})


async def render_products(
    session: AsyncSession, products: Sequence[Product | Row[Any]]
) -> list[dict[str, Any]]:
    if not products:
        return []
    rows = await session.execute(_PAGE_VARIANTS, {"product_ids": [p.id for p in products]})
    by_product: dict[uuid.UUID, list[Any]] = {}
    available: dict[str, int] = {}
    for row in rows:
        by_product.setdefault(row.product_id, []).append(row)
        available[row.sku] = int(row.available)
    return [product_dict(p, by_product.get(p.id, []), available) for p in products]


async def _render_one(session: AsyncSession, product: Product) -> dict[str, Any]:
    return (await render_products(session, [product]))[0]


def product_dict(
    product: Product | Row[Any], variants: Sequence[Variant | Row[Any]], available: dict[str, int]
) -> dict[str, Any]:
    """The API's Product, from ORM objects or rows with the same column names."""
    return _product_fields(
        product,
        [
            {
                "id": str(variant.id),
                "sku": variant.sku,
                "name": variant.name,
                "price": {"amount": variant.price, "currency": variant.currency},
                "attributes": variant.attributes,
                "available": max(0, available.get(variant.sku, 0)),
                "weight_grams": variant.weight_grams,
            }
            for variant in variants
        ],
    )


def _listed_dict(listed: Listed) -> dict[str, Any]:
    """`product_dict` for a product of a page, whose variants arrive in the API's shape."""
    return _product_fields(listed.product, listed.variants)


def _product_fields(product: Product | Row[Any], variants: Any) -> dict[str, Any]:
    return {
        "id": str(product.id),
        "slug": product.slug,
        "name": product.name,
        "description": product.description,
        "category_id": _str_or_none(product.category_id),
        "attributes": product.attributes,
        "variants": variants,
        "created_at": product.created_at,
        "updated_at": product.updated_at,
    }


def _str_or_none(value: uuid.UUID | None) -> str | None:
    # asyncpg hands back its own UUID subclass, which orjson does not serialize.
    return None if value is None else str(value)


async def live_product(session: AsyncSession, product_id: uuid.UUID) -> Product:
    product = await session.get(Product, product_id)
    if product is None or product.archived_at is not None:
        raise ProductNotFound(f"no product {product_id}")
    return product


async def _ensure_category(session: AsyncSession, category_id: uuid.UUID | None) -> None:
    if category_id is None:
        return
    if not await live_category_exists(session, category_id):
        raise UnknownCategory("category_id names no category", category_id=str(category_id))


async def live_category_exists(session: AsyncSession, category_id: uuid.UUID) -> bool:
    found = await session.scalar(
        select(func.count()).where(Category.id == category_id, Category.archived_at.is_(None))
    )
    return bool(found)


@dataclass(frozen=True, slots=True)
class PricedVariant:
    sku: str
    product_id: uuid.UUID
    name: str
    price: Money
    archived: bool


def line_name(product_name: str, variant_name: str | None) -> str:
    return f"{product_name} ({variant_name})" if variant_name else product_name


def _priced_variants() -> Subquery:
    return (
        select(
            Variant.sku,
            Variant.product_id,
            Product.name.label("product_name"),
            Variant.name.label("variant_name"),
            Variant.price,
            Variant.currency,
            # An archived variant, or any variant of an archived product, is no longer sold.
            func.coalesce(Variant.archived_at, Product.archived_at).label("archived_at"),
        )
        .join(Product, Product.id == Variant.product_id)
        .subquery("priced_variants")
    )


PRICED_VARIANTS = _priced_variants()
"""Every variant's SKU, product, names, price and archived flag as one selectable, for a domain
that reads them inside its own statement (carts price their lines and close in one statement).
Databases flatten it into a plain join."""


async def price_variants(session: AsyncSession, skus: Collection[str]) -> dict[str, PricedVariant]:
    """Current price, name and archived flag per SKU; SKUs the catalog does not know are absent."""
    wanted = set(skus)
    if not wanted:
        return {}
    priced = PRICED_VARIANTS
    rows = await session.execute(select(priced).where(priced.c.sku.in_(wanted)))
    return {
        sku: PricedVariant(
            sku=sku,
            product_id=product_id,
            name=line_name(product_name, variant_name),
            price=Money(amount=price, currency=currency),
            archived=archived_at is not None,
        )
        for sku, product_id, product_name, variant_name, price, currency, archived_at in rows
    }


async def sold_skus(session: AsyncSession, skus: Sequence[str]) -> set[str]:
    """Which of `skus` are catalog variants (archived ones included: their stock is kept)."""
    if not skus:
        return set()
    return set(await session.scalars(select(Variant.sku).where(Variant.sku.in_(skus))))


inventory_service.use_sku_directory(sold_skus)


async def category_subtree(
    session: AsyncSession, category_ids: Collection[uuid.UUID]
) -> set[uuid.UUID]:
    """`category_ids` and every category below them, at any depth."""
    if not category_ids:
        return set()
    rows = await session.execute(select(Category.id, Category.parent_id))
    children: dict[uuid.UUID, list[uuid.UUID]] = {}
    for child, parent in rows:
        if parent is not None:
            children.setdefault(parent, []).append(child)
    found: set[uuid.UUID] = set()
    pending = list(category_ids)
    while pending:
        current = pending.pop()
        if current in found:
            continue  # a cycle made by hand in the table must not loop forever
        found.add(current)
        pending.extend(children.get(current, ()))
    return found


async def categories_of_products(
    session: AsyncSession, product_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID | None]:
    """Each product's category (None for an uncategorised one)."""
    if not product_ids:
        return {}
    rows = await session.execute(
        select(Product.id, Product.category_id).where(Product.id.in_(list(product_ids)))
    )
    return {product_id: category_id for product_id, category_id in rows}


async def weights_of(session: AsyncSession, skus: Collection[str]) -> dict[str, int]:
    """Each SKU's unit shipping weight in grams."""
    if not skus:
        return {}
    rows = await session.execute(
        select(Variant.sku, Variant.weight_grams).where(Variant.sku.in_(list(skus)))
    )
    return {sku: weight for sku, weight in rows}
