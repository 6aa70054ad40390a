"""Carts: the signed-in owner (bearer token) or the guest holding `X-Cart-Token`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from shopkeeper.accounts.permissions import AppSettings, OptionalUser
from shopkeeper.core.db import Session
from shopkeeper.core.errors import problem_responses
from shopkeeper.core.money import Money
from shopkeeper.core.runtime import AppRuntime, ClientAddress
from shopkeeper.shop.access import CART_TOKEN_HEADER, ShopCaller
from shopkeeper.shop.carts import service
from shopkeeper.shop.carts.schemas import (
    CartItemIn,
    CartItemPatch,
    CartOut,
    CartShippingMethodOut,
    VoucherCodeIn,
)

router = APIRouter(tags=["carts"])

SkuPath = Annotated[str, Path(min_length=1, max_length=64)]

_CART_ERRORS = {"s404": "`cart-not-found` (also for carts that are not yours)"}
_CLOSED = "`cart-closed`: the cart was checked out or merged"


@router.post(
    "/carts",
    status_code=status.HTTP_201_CREATED,
    response_model=CartOut,
    responses={
        200: {"model": CartOut, "description": "The signed-in user's open cart already existed"},
        **problem_responses(
            401,
            429,
            s429="`rate-limited`: this address opened too many guest carts "
            "(`SHOPKEEPER_GUEST_CARTS_PER_ADDRESS`); `Retry-After` says when to retry",
        ),
    },
)
async def create_cart(
    principal: OptionalUser,
    session: Session,
    runtime: AppRuntime,
    address: ClientAddress,
    response: Response,
) -> CartOut:
    """Without auth: a new guest cart, whose secret comes back in `X-Cart-Token` (only then).
    Signed in: the user's open cart, created (201) or the existing one (200)."""
    settings = runtime.settings
    if principal is None:
        # Every guest cart is a row; a client looping on this endpoint must not fill the table.
        await runtime.ratelimiter.hit(settings.guest_carts_per_address, "guest-carts", address)
    new = await service.open_cart(session, principal=principal, settings=settings)
    if new.token is not None:
        response.headers[CART_TOKEN_HEADER] = new.token
    if not new.created:
        response.status_code = status.HTTP_200_OK
    return CartOut.of(new.cart)


@router.get(
    "/carts/{cart_id}",
    response_model=CartOut,
    responses=problem_responses(401, 404, 422, **_CART_ERRORS),
)
async def get_cart(
    cart_id: uuid.UUID,
    caller: ShopCaller,
    session: Session,
    settings: AppSettings,
) -> CartOut:
    cart = await service.get_cart(session, cart_id=cart_id, caller=caller, settings=settings)
    return CartOut.of(cart)


@router.post(
    "/carts/{cart_id}/items",
    response_model=CartOut,
    responses=problem_responses(
        401,
        404,
        409,
        422,
        s404="`cart-not-found`, `sku-not-found`",
        s409=f"`insufficient-stock` (extension `sku`), `item-unavailable`, `cart-full`, {_CLOSED}",
        s422="`validation-error`; `quantity-limit` when the line would exceed 100",
    ),
)
async def add_item(
    cart_id: uuid.UUID,
    body: CartItemIn,
    caller: ShopCaller,
    session: Session,
    settings: AppSettings,
) -> CartOut:
    cart = await service.add_item(
        session,
        cart_id=cart_id,
        caller=caller,
        sku=body.sku,
        quantity=body.quantity,
        settings=settings,
    )
    return CartOut.of(cart)


@router.patch(
    "/carts/{cart_id}/items/{sku}",
    response_model=CartOut,
    responses=problem_responses(
        401,
        404,
        409,
        422,
        s404="`cart-not-found`, `cart-item-not-found`",
        s409=f"`insufficient-stock`, `item-unavailable`, {_CLOSED}",
    ),
)
async def set_item_quantity(
    cart_id: uuid.UUID,
    sku: SkuPath,
    body: CartItemPatch,
    caller: ShopCaller,
    session: Session,
    settings: AppSettings,
) -> CartOut:
    cart = await service.set_item_quantity(
        session,
        cart_id=cart_id,
        caller=caller,
        sku=sku,
        quantity=body.quantity,
        settings=settings,
    )
    return CartOut.of(cart)


@router.delete(
    "/carts/{cart_id}/items/{sku}",
    response_model=CartOut,
    responses=problem_responses(
        401, 404, 409, 422, s404="`cart-not-found`, `cart-item-not-found`", s409=_CLOSED
    ),
)
async def remove_item(
    cart_id: uuid.UUID,
    sku: SkuPath,
    caller: ShopCaller,
    session: Session,
    settings: AppSettings,
) -> CartOut:
    cart = await service.remove_item(
        session,
        cart_id=cart_id,
        caller=caller,
        sku=sku,
        settings=settings,
    )
    return CartOut.of(cart)


@router.post(
    "/carts/{cart_id}/voucher",
    response_model=CartOut,
    responses=problem_responses(
        401,
        404,
        409,
        422,
        s404="`cart-not-found`, `voucher-not-found`",
        s409="`voucher-not-applicable` with `reason`: `expired`, `not-started`, `min-subtotal`, "
        f"`used-up`, `per-customer-limit`, `no-eligible-items`; {_CLOSED}",
    ),
)
async def apply_voucher(
    cart_id: uuid.UUID,
    body: VoucherCodeIn,
    caller: ShopCaller,
    session: Session,
    settings: AppSettings,
) -> CartOut:
    """Put a voucher on the cart; the Cart answers with `voucher_code` and `discount`. Checkout
    checks it again and counts its use."""
    cart = await service.apply_voucher(
        session, cart_id=cart_id, caller=caller, code=body.code, settings=settings
    )
    return CartOut.of(cart)


@router.delete(
    "/carts/{cart_id}/voucher",
    response_model=CartOut,
    responses=problem_responses(401, 404, 409, 422, s404="`cart-not-found`", s409=_CLOSED),
)
async def remove_voucher(
    cart_id: uuid.UUID, caller: ShopCaller, session: Session, settings: AppSettings
) -> CartOut:
    cart = await service.remove_voucher(session, cart_id=cart_id, caller=caller, settings=settings)
    return CartOut.of(cart)


@router.get(
    "/carts/{cart_id}/shipping-methods",
    response_model=list[CartShippingMethodOut],
    responses=problem_responses(401, 404, 422, **_CART_ERRORS),
)
async def shipping_methods(
    cart_id: uuid.UUID,
    caller: ShopCaller,
    session: Session,
    settings: AppSettings,
    country: Annotated[str, Query(min_length=2, max_length=2, pattern=r"^[A-Za-z]{2}$")],
) -> list[CartShippingMethodOut]:
    """The methods that ship this cart to `country`, cheapest first, priced for it (free when
    it reaches a method's `free_over`). Empty when none serves it, or no zone exists (then the
    flat rate applies and checkout needs no method)."""
    methods = await service.shipping_methods(
        session, cart_id=cart_id, caller=caller, country=country, settings=settings
    )
    return [
        CartShippingMethodOut(
            id=method.id,
            name=method.name,
            price=Money(amount=method.price, currency=settings.currency),
        )
        for method in methods
    ]
