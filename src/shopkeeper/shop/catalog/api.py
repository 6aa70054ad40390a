"""Catalog routes: public reads served from the response cache, staff-only writes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from starlette.responses import JSONResponse

from shopkeeper.core.db import Session
from shopkeeper.core.errors import problem_responses
from shopkeeper.core.jsonutil import dumps
from shopkeeper.core.money import MAX_PRICE
from shopkeeper.core.response_cache import cached_json_response
from shopkeeper.core.runtime import AppRuntime
from shopkeeper.shop.access import ShopWriter
from shopkeeper.shop.catalog import categories, service, variants
from shopkeeper.shop.catalog.schemas import (
    CategoryIn,
    CategoryOut,
    CategoryPatch,
    ProductIn,
    ProductOut,
    ProductPage,
    ProductPatch,
    VariantIn,
    VariantOut,
    VariantPatch,
)
from shopkeeper.shop.catalog.search import ProductQuery

router = APIRouter(tags=["catalog"])

ATTRIBUTE_PREFIX = "attr."


class _Json(JSONResponse):
    def render(self, content: object) -> bytes:
        return dumps(content)


@router.post(
    "/categories",
    status_code=status.HTTP_201_CREATED,
    response_model=CategoryOut,
    responses=problem_responses(
        401, 403, 409, 422, s409="`slug-taken`", s422="`unknown-category` parent, invalid input"
    ),
)
async def create_category(
    body: CategoryIn, session: Session, runtime: AppRuntime, _staff: ShopWriter
) -> Response:
    category = await service.create_category(session, cache=runtime.cache, body=body)
    return _Json(service.category_dict(category), status_code=status.HTTP_201_CREATED)


@router.get(
    "/categories",
    response_model=list[CategoryOut],
    responses=problem_responses(422),
)
async def list_categories(request: Request, session: Session, runtime: AppRuntime) -> Response:
    """Every category with its `parent_id`; build the tree client-side."""

    async def load() -> tuple[bytes, set[str]]:
        return await service.list_categories_json(session), {service.CATEGORIES_TAG}

    return await cached_json_response(runtime.cache, request, load)


@router.get(
    "/categories/{category_id}",
    response_model=CategoryOut,
    responses=problem_responses(404, 422, s404="`category-not-found` (or archived)"),
)
async def get_category(category_id: uuid.UUID, session: Session) -> Response:
    return _Json(await categories.get_category(session, category_id=category_id))


@router.patch(
    "/categories/{category_id}",
    response_model=CategoryOut,
    responses=problem_responses(
        401,
        403,
        404,
        409,
        422,
        s404="`category-not-found`",
        s409="`slug-taken`",
        s422="`unknown-category` parent, `category-cycle`, invalid input",
    ),
)
async def update_category(
    category_id: uuid.UUID,
    body: CategoryPatch,
    session: Session,
    runtime: AppRuntime,
    _staff: ShopWriter,
) -> Response:
    category = await categories.update_category(
        session, cache=runtime.cache, category_id=category_id, body=body
    )
    return _Json(category)


@router.delete(
    "/categories/{category_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(
        401,
        403,
        404,
        422,
        s404="`category-not-found`",
        s422="`category-not-empty`: live products or sub-categories still use it",
    ),
)
async def archive_category(
    category_id: uuid.UUID, session: Session, runtime: AppRuntime, _staff: ShopWriter
) -> Response:
    """Archive: gone from the list and refused for new products; kept for what names it."""
    await categories.archive_category(session, cache=runtime.cache, category_id=category_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/products",
    status_code=status.HTTP_201_CREATED,
    response_model=ProductOut,
    responses=problem_responses(
        401,
        403,
        409,
        422,
        s409="`sku-taken`, `slug-taken`",
        s422="`currency-not-accepted`, `unknown-category`, invalid input",
    ),
)
async def create_product(
    body: ProductIn, session: Session, runtime: AppRuntime, _staff: ShopWriter
) -> Response:
    product = await service.create_product(
        session, cache=runtime.cache, currency=runtime.settings.currency, body=body
    )
    return _Json(
        product,
        status_code=status.HTTP_201_CREATED,
        headers={"Location": f"/api/v1/products/{product['id']}"},
    )


@router.get(
    "/products",
    response_model=ProductPage,
    responses=problem_responses(422, s422="`invalid-cursor`, `invalid-query`, invalid input"),
)
async def list_products(
    request: Request,
    session: Session,
    runtime: AppRuntime,
    q: Annotated[str | None, Query(max_length=200, description="Search words")] = None,
    category: Annotated[
        str | None, Query(max_length=200, description="Category id or slug; includes its subtree")
    ] = None,
    min_price: Annotated[int | None, Query(ge=0, le=MAX_PRICE, description="Minor units")] = None,
    max_price: Annotated[int | None, Query(ge=0, le=MAX_PRICE, description="Minor units")] = None,
    sort: Annotated[
        str | None,
        Query(
            pattern=r"^(relevance|price|-price|name|-created_at)$",
            description="`relevance` (default with q), `price`, `-price`, `name`, `-created_at`"
            " (default without q)",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    """A page of live products. Attribute filters: `attr.<name>=<value>` (repeatable, ANDed),
    matching the product's or any variant's attributes."""
    attributes = {
        key.removeprefix(ATTRIBUTE_PREFIX): value
        for key, value in request.query_params.multi_items()
        if key.startswith(ATTRIBUTE_PREFIX)
    }
    query = ProductQuery(
        q=q,
        category=category,
        min_price=min_price,
        max_price=max_price,
        attributes=attributes,
        sort=sort,
        limit=limit,
        cursor=cursor,
    )

    async def load() -> tuple[bytes, set[str]]:
        return await service.product_page_json(session, query=query), {service.LISTS_TAG}

    # Search URLs are a long tail (each visitor's words): this process's L1 keeps the popular
    # ones, and Redis is spared two round trips per one-off search.
    return await cached_json_response(runtime.cache, request, load, shared=q is None)


@router.get(
    "/products/{id_or_slug}",
    response_model=ProductOut,
    responses={
        304: {"description": "Not modified (`If-None-Match` matched the `ETag`)"},
        **problem_responses(404, s404="`product-not-found`"),
    },
)
async def get_product(
    id_or_slug: str, request: Request, session: Session, runtime: AppRuntime
) -> Response:
    """A live product by id or slug, with `ETag`; `If-None-Match` gives 304."""

    async def load() -> tuple[bytes, set[str]]:
        return await service.product_json(session, id_or_slug=id_or_slug)

    return await cached_json_response(runtime.cache, request, load)


@router.patch(
    "/products/{product_id}",
    response_model=ProductOut,
    responses=problem_responses(
        401,
        403,
        404,
        409,
        422,
        s404="`product-not-found`",
        s409="`slug-taken`",
        s422="`unknown-category`, invalid input",
    ),
)
async def update_product(
    product_id: uuid.UUID,
    body: ProductPatch,
    session: Session,
    runtime: AppRuntime,
    _staff: ShopWriter,
) -> Response:
    product = await service.update_product(
        session, cache=runtime.cache, product_id=product_id, body=body
    )
    return _Json(product)


@router.delete(
    "/products/{product_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 422, s404="`product-not-found`"),
)
async def archive_product(
    product_id: uuid.UUID, session: Session, runtime: AppRuntime, _staff: ShopWriter
) -> Response:
    """Archive: hidden from lists and lookups, kept for the orders that name it."""
    await service.archive_product(session, cache=runtime.cache, product_id=product_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/products/{product_id}/variants",
    status_code=status.HTTP_201_CREATED,
    response_model=VariantOut,
    responses=problem_responses(
        401,
        403,
        404,
        409,
        422,
        s404="`product-not-found`",
        s409="`sku-taken` (archived variants keep their SKU)",
        s422="`currency-not-accepted`, invalid input",
    ),
)
async def add_variant(
    product_id: uuid.UUID,
    body: VariantIn,
    session: Session,
    runtime: AppRuntime,
    _staff: ShopWriter,
) -> Response:
    variant = await variants.add_variant(
        session,
        cache=runtime.cache,
        currency=runtime.settings.currency,
        product_id=product_id,
        body=body,
    )
    return _Json(variant, status_code=status.HTTP_201_CREATED)


@router.patch(
    "/variants/{sku}",
    response_model=VariantOut,
    responses=problem_responses(
        401,
        403,
        404,
        422,
        s404="`variant-not-found` (or archived)",
        s422="`currency-not-accepted`, invalid input",
    ),
)
async def update_variant(
    sku: str, body: VariantPatch, session: Session, runtime: AppRuntime, _staff: ShopWriter
) -> Response:
    """Change name, price, attributes or weight; open orders keep the price they were placed
    at."""
    variant = await variants.update_variant(
        session, cache=runtime.cache, currency=runtime.settings.currency, sku=sku, body=body
    )
    return _Json(variant)


@router.delete(
    "/variants/{sku}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(
        401,
        403,
        404,
        422,
        s404="`variant-not-found`",
        s422="`last-variant`: archive the product instead",
    ),
)
async def archive_variant(
    sku: str, session: Session, runtime: AppRuntime, _staff: ShopWriter
) -> Response:
    """Archive: no longer listed or sellable, kept for old orders."""
    await variants.archive_variant(session, cache=runtime.cache, sku=sku)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
