"""Reading, changing and archiving one category. Creating and listing live in `service`.

A category is archived, never deleted: vouchers and old orders may name it. Archiving is refused
(422 `category-not-empty`) while live products or live sub-categories still use it.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shopkeeper.core.cache import Cache
from shopkeeper.core.db import affected_rows, utcnow
from shopkeeper.core.errors import InvalidInput, NotFound
from shopkeeper.shop.catalog.models import Category, Product
from shopkeeper.shop.catalog.schemas import CategoryPatch
from shopkeeper.shop.catalog.service import (
    CATEGORIES_TAG,
    LISTS_TAG,
    SlugTaken,
    UnknownCategory,
    category_dict,
    live_category_exists,
)


class CategoryNotFound(NotFound):
    slug, title = "category-not-found", "Category not found"


class CategoryNotEmpty(InvalidInput):
    slug, title = "category-not-empty", "Category still has live products or sub-categories"


class CategoryCycle(InvalidInput):
    slug, title = "category-cycle", "A category cannot sit below itself"


async def get_category(session: AsyncSession, *, category_id: uuid.UUID) -> dict[str, Any]:
    return category_dict(await live_category(session, category_id))


async def update_category(
    session: AsyncSession, *, cache: Cache, category_id: uuid.UUID, body: CategoryPatch
) -> dict[str, Any]:
    category = await live_category(session, category_id)
    changes = body.model_dump(exclude_unset=True)
    if "name" in changes:
        if body.name is None:
            raise InvalidInput("name cannot be null", field="name")
        category.name = body.name
    if "slug" in changes:
        if body.slug is None:
            raise InvalidInput("slug cannot be null", field="slug")
        if body.slug != category.slug:
            clash = await session.scalar(select(Category.id).where(Category.slug == body.slug))
            if clash is not None:
                raise SlugTaken(f"slug {body.slug!r} is taken")
            category.slug = body.slug
    if "parent_id" in changes:
        if body.parent_id is not None:
            if not await live_category_exists(session, body.parent_id):
                raise UnknownCategory("parent_id names no category", parent_id=str(body.parent_id))
            if await _is_below(session, body.parent_id, category.id):
                raise CategoryCycle(
                    "the new parent is the category itself or one of its descendants",
                    parent_id=str(body.parent_id),
                )
        category.parent_id = body.parent_id
    try:
        await session.commit()
    except IntegrityError as exc:
        raise SlugTaken("slug taken concurrently") from exc
    await cache.invalidate({CATEGORIES_TAG, LISTS_TAG})
    return category_dict(category)


async def archive_category(session: AsyncSession, *, cache: Cache, category_id: uuid.UUID) -> None:
    """Hidden from the category list and refused for new products; 422 while in use."""
    category = await live_category(session, category_id)
    live_product = exists().where(Product.category_id == category.id, Product.archived_at.is_(None))
    child = Category.__table__.alias("child")
    live_child = exists().where(child.c.parent_id == category.id, child.c.archived_at.is_(None))
    # The emptiness checks and the change are one statement: they see the same rows.
    archived = await session.execute(
        update(Category)
        .where(
            Category.id == category.id, Category.archived_at.is_(None), ~live_product, ~live_child
        )
        .values(archived_at=utcnow())
    )
    if affected_rows(archived) != 1:
        await session.rollback()
        raise CategoryNotEmpty(
            "Move or archive its live products and sub-categories first",
            category_id=str(category_id),
        )
    await session.commit()
    await cache.invalidate({CATEGORIES_TAG, LISTS_TAG})


async def live_category(session: AsyncSession, category_id: uuid.UUID) -> Category:
    category = await session.get(Category, category_id, populate_existing=True)
    if category is None or category.archived_at is not None:
        raise CategoryNotFound(f"no category {category_id}", category_id=str(category_id))
    return category


async def _is_below(session: AsyncSession, candidate: uuid.UUID, ancestor: uuid.UUID) -> bool:
    """Whether `candidate` is `ancestor` or sits anywhere below it."""
    rows = await session.execute(select(Category.id, Category.parent_id))
    parents = {child: parent for child, parent in rows}
    seen: set[uuid.UUID] = set()
    current: uuid.UUID | None = candidate
    while current is not None and current not in seen:
        if current == ancestor:
            return True
        seen.add(current)
        current = parents.get(current)
    return False
