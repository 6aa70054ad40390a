"""Carts: open one, change its lines, read it priced from the catalog, hand it to checkout.

Who may touch a cart: the signed-in user it belongs to, or whoever holds its guest token.
Anyone else gets 404, so cart ids reveal nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shopkeeper.core.db import affected_rows, utcnow
from shopkeeper.core.money import Money
from shopkeeper.core.security import Principal, hash_token, new_opaque_token
from shopkeeper.core.settings import Settings
from shopkeeper.shop.access import Caller
from shopkeeper.shop.carts.errors import (
    CartClosed,
    CartEmpty,
    CartFull,
    CartItemNotFound,
    CartNotFound,
    ItemUnavailable,
    QuantityLimit,
    SkuNotFound,
)
from shopkeeper.shop.carts.merging import merge_cart_at_sign_in, merge_guest_cart
from shopkeeper.shop.carts.models import MAX_LINE_QUANTITY, Cart, CartItem, CartStatus
from shopkeeper.shop.carts.ownership import insert_item, open_cart_of, owned_cart, touch
from shopkeeper.shop.carts.snapshot import (
    CartSnapshot,
    CartSnapshotLine,
    SnapshotQuery,
    checkout_snapshot,
    snapshot_query,
    voucher_code_of,
)
from shopkeeper.shop.catalog.service import PricedVariant, price_variants
from shopkeeper.shop.inventory.service import InsufficientStock, available_by_sku
from shopkeeper.shop.promotions import service as promotions_service
from shopkeeper.shop.promotions.models import VoucherKind
from shopkeeper.shop.promotions.service import PricedLine, VoucherNotApplicable
from shopkeeper.shop.shipping import service as shipping_service

# The domain's face to the others (orders reads carts through this module) and to its router:
# its own use cases, and those of its modules.
__all__ = [
    "MAX_LINES",
    "CartClosed",
    "CartEmpty",
    "CartFull",
    "CartItemNotFound",
    "CartLine",
    "CartNotFound",
    "CartSnapshot",
    "CartSnapshotLine",
    "CartView",
    "ItemUnavailable",
    "NewCart",
    "QuantityLimit",
    "SkuNotFound",
    "SnapshotQuery",
    "add_item",
    "apply_voucher",
    "checkout_snapshot",
    "get_cart",
    "merge_cart_at_sign_in",
    "merge_guest_cart",
    "open_cart",
    "purge_carts",
    "remove_item",
    "remove_voucher",
    "set_item_quantity",
    "shipping_methods",
    "snapshot_query",
    "voucher_code_of",
]

MAX_LINES = 100


@dataclass(frozen=True, slots=True)
class CartLine:
    sku: str
    product_id: uuid.UUID
    name: str
    quantity: int
    unit_price: Money
    archived: bool
    available: int

    @property
    def total(self) -> Money:
        return self.unit_price * self.quantity


@dataclass(frozen=True, slots=True)
class CartView:
    id: uuid.UUID
    status: str
    lines: list[CartLine]
    subtotal: Money
    voucher_code: str | None = None
    discount: Money | None = None
    """What the voucher takes off now (zero when it no longer applies; checkout says why)."""


@dataclass(frozen=True, slots=True)
class NewCart:
    cart: CartView
    created: bool
    token: str | None
    """The guest token, shown once; only its hash is stored."""


# --- use cases ----------------------------------------------------------------------------------


async def open_cart(
    session: AsyncSession, *, principal: Principal | None, settings: Settings
) -> NewCart:
    """A guest gets a new cart and its token; a user gets their open cart, made if need be."""
    if principal is None:
        token = new_opaque_token()
        cart = Cart(token_hash=hash_token(token))
        session.add(cart)
        await session.commit()
        return NewCart(_empty_view(cart, settings), created=True, token=token)
    existing = await open_cart_of(session, principal.user_id)
    if existing is not None:
        return NewCart(await _view(session, existing, settings), created=False, token=None)
    cart = Cart(user_id=principal.user_id)
    session.add(cart)
    try:
        await session.commit()
    except IntegrityError:
        # A concurrent request made the user's cart first; the partial unique index decided.
        await session.rollback()
        existing = await open_cart_of(session, principal.user_id)
        if existing is None:
            raise
        return NewCart(await _view(session, existing, settings), created=False, token=None)
    return NewCart(_empty_view(cart, settings), created=True, token=None)


async def get_cart(
    session: AsyncSession,
    *,
    cart_id: uuid.UUID,
    caller: Caller,
    settings: Settings,
) -> CartView:
    cart = await owned_cart(session, cart_id, caller)
    return await _view(session, cart, settings)


async def add_item(
    session: AsyncSession,
    *,
    cart_id: uuid.UUID,
    caller: Caller,
    sku: str,
    quantity: int,
    settings: Settings,
) -> CartView:
    """Add units of a SKU, to its line if the cart has one."""
    cart = await owned_cart(session, cart_id, caller, lock=True, open_only=True)
    variant = await _sellable_variant(session, sku)
    current = await session.scalar(
        select(CartItem.quantity).where(CartItem.cart_id == cart.id, CartItem.sku == sku)
    )
    if current is None:
        lines = await session.scalar(
            select(func.count()).select_from(CartItem).where(CartItem.cart_id == cart.id)
        )
        if (lines or 0) >= MAX_LINES:
            raise CartFull(f"A cart holds at most {MAX_LINES} different items")
    wanted = (current or 0) + quantity
    if wanted > MAX_LINE_QUANTITY:
        raise QuantityLimit(
            f"At most {MAX_LINE_QUANTITY} of one item per cart; the line has {current or 0}",
            sku=sku,
            max_quantity=MAX_LINE_QUANTITY,
        )
    await _ensure_available(session, variant.sku, wanted)
    insert = insert_item(session).values(cart_id=cart.id, sku=sku, quantity=quantity)
    await session.execute(
        insert.on_conflict_do_update(
            index_elements=["cart_id", "sku"],
            set_={"quantity": CartItem.quantity + insert.excluded.quantity},
        )
    )
    await touch(session, cart.id)
    await session.commit()
    return await _view(session, cart, settings)


async def set_item_quantity(
    session: AsyncSession,
    *,
    cart_id: uuid.UUID,
    caller: Caller,
    sku: str,
    quantity: int,
    settings: Settings,
) -> CartView:
    """Set a line's quantity; 0 removes the line."""
    if quantity == 0:
        return await remove_item(
            session,
            cart_id=cart_id,
            caller=caller,
            sku=sku,
            settings=settings,
        )
    cart = await owned_cart(session, cart_id, caller, lock=True, open_only=True)
    current = await session.scalar(
        select(CartItem.quantity).where(CartItem.cart_id == cart.id, CartItem.sku == sku)
    )
    if current is None:
        raise CartItemNotFound(f"{sku} is not in this cart", sku=sku)
    if quantity > current:
        await _sellable_variant(session, sku)
        await _ensure_available(session, sku, quantity)
    await session.execute(
        update(CartItem)
        .where(CartItem.cart_id == cart.id, CartItem.sku == sku)
        .values(quantity=quantity)
        .execution_options(synchronize_session=False)
    )
    await touch(session, cart.id)
    await session.commit()
    return await _view(session, cart, settings)


async def remove_item(
    session: AsyncSession,
    *,
    cart_id: uuid.UUID,
    caller: Caller,
    sku: str,
    settings: Settings,
) -> CartView:
    cart = await owned_cart(session, cart_id, caller, lock=True, open_only=True)
    result = await session.execute(
        delete(CartItem)
        .where(CartItem.cart_id == cart.id, CartItem.sku == sku)
        .execution_options(synchronize_session=False)
    )
    if affected_rows(result) == 0:
        raise CartItemNotFound(f"{sku} is not in this cart", sku=sku)
    await touch(session, cart.id)
    await session.commit()
    return await _view(session, cart, settings)


async def apply_voucher(
    session: AsyncSession,
    *,
    cart_id: uuid.UUID,
    caller: Caller,
    code: str,
    settings: Settings,
) -> CartView:
    """Put a voucher on the cart after checking it applies now (404 `voucher-not-found`, 409
    `voucher-not-applicable` with its `reason`). Applying does not count as a use."""
    cart = await owned_cart(session, cart_id, caller, lock=True, open_only=True)
    view = await _view(session, cart, settings)
    customer = promotions_service.customer_key(caller.user_id, None) if caller.user_id else None
    voucher = await promotions_service.find_voucher(session, code)
    await _discount(session, voucher.code, view.lines, view.subtotal, settings, customer)
    await session.execute(
        update(Cart)
        .where(Cart.id == cart.id)
        .values(voucher_code=voucher.code, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    await session.commit()
    cart = await owned_cart(session, cart_id, caller)
    return await _view(session, cart, settings)


async def remove_voucher(
    session: AsyncSession, *, cart_id: uuid.UUID, caller: Caller, settings: Settings
) -> CartView:
    cart = await owned_cart(session, cart_id, caller, lock=True, open_only=True)
    await session.execute(
        update(Cart)
        .where(Cart.id == cart.id)
        .values(voucher_code=None, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    await session.commit()
    cart = await owned_cart(session, cart_id, caller)
    return await _view(session, cart, settings)


async def shipping_methods(
    session: AsyncSession,
    *,
    cart_id: uuid.UUID,
    caller: Caller,
    country: str,
    settings: Settings,
) -> list[shipping_service.PricedMethod]:
    """The methods that serve `country` and this cart's weight, priced for it (a method's
    `free_over` compares with the subtotal less a voucher's discount on goods)."""
    cart = await owned_cart(session, cart_id, caller)
    view = await _view(session, cart, settings)
    goods = view.subtotal.amount
    if view.discount is not None and cart.voucher_code is not None:
        voucher = await promotions_service.find_voucher(session, cart.voucher_code)
        if voucher.kind != VoucherKind.FREE_SHIPPING:
            goods -= view.discount.amount
    weight = await shipping_service.cart_weight(
        session, [(line.sku, line.quantity) for line in view.lines if not line.archived]
    )
    return await shipping_service.methods_for(session, country=country, weight=weight, goods=goods)


async def purge_carts(session: AsyncSession, *, before: datetime, limit: int) -> int:
    """Delete up to `limit` carts last touched before `before` that nobody will come back to:
    guest carts in any state, and users' closed (checked-out or merged) carts. A user's open
    cart stays however old it is. Their lines go with them (ON DELETE CASCADE); orders keep
    their own copy. Returns how many were deleted; commits."""
    doomed = (
        select(Cart.id)
        .where(
            Cart.updated_at < before,
            (Cart.user_id.is_(None)) | (Cart.status != CartStatus.OPEN.value),
        )
        .limit(limit)
        .scalar_subquery()
    )
    result = await session.execute(
        delete(Cart).where(Cart.id.in_(doomed)).execution_options(synchronize_session=False)
    )
    await session.commit()
    return affected_rows(result)


# --- helpers ------------------------------------------------------------------------------------


async def _sellable_variant(session: AsyncSession, sku: str) -> PricedVariant:
    variant = (await price_variants(session, [sku])).get(sku)
    if variant is None:
        raise SkuNotFound(f"No product variant with SKU {sku!r}", sku=sku)
    if variant.archived:
        raise ItemUnavailable(f"{sku} is no longer sold", sku=sku)
    return variant


async def _ensure_available(session: AsyncSession, sku: str, quantity: int) -> None:
    available = (await available_by_sku(session, [sku]))[sku]
    if quantity > available:
        raise InsufficientStock(
            f"Only {available} of {sku} available, {quantity} requested",
            sku=sku,
            requested=quantity,
            available=available,
        )


async def _items(session: AsyncSession, cart_id: uuid.UUID) -> list[tuple[str, int]]:
    rows = await session.execute(
        select(CartItem.sku, CartItem.quantity)
        .where(CartItem.cart_id == cart_id)
        .order_by(CartItem.created_at, CartItem.sku)
    )
    return list(rows)


async def _view(session: AsyncSession, cart: Cart, settings: Settings) -> CartView:
    items = await _items(session, cart.id)
    skus = [sku for sku, _ in items]
    variants = await price_variants(session, skus)
    stock = await available_by_sku(session, skus)
    lines: list[CartLine] = []
    subtotal = Money.zero(settings.currency)
    for sku, quantity in items:
        variant = variants.get(sku)
        if variant is None:
            continue  # the variant was deleted from the catalog; nothing to show or sell
        line = CartLine(
            sku=sku,
            product_id=variant.product_id,
            name=variant.name,
            quantity=quantity,
            unit_price=variant.price,
            archived=variant.archived,
            available=stock.get(sku, 0),
        )
        lines.append(line)
        if not line.archived:
            subtotal = subtotal + line.total
    discount = Money.zero(settings.currency)
    if cart.voucher_code is not None:
        # Shown as no discount when it no longer applies; applying again or checkout says why.
        with suppress(VoucherNotApplicable, promotions_service.VoucherNotFound):
            discount = await _discount(session, cart.voucher_code, lines, subtotal, settings)
    return CartView(
        id=cart.id,
        status=cart.status,
        lines=lines,
        subtotal=subtotal,
        voucher_code=cart.voucher_code,
        discount=discount,
    )


async def _discount(
    session: AsyncSession,
    code: str,
    lines: Sequence[CartLine],
    subtotal: Money,
    settings: Settings,
    customer: str | None = None,
) -> Money:
    voucher = await promotions_service.find_voucher(session, code)
    amount = await promotions_service.discount_for(
        session,
        voucher=voucher,
        lines=[
            PricedLine(line.product_id, line.total.amount) for line in lines if not line.archived
        ],
        subtotal=subtotal.amount,
        shipping=settings.shipping_flat_rate,
        now=utcnow(),
        customer=customer,
    )
    return Money(amount=amount, currency=settings.currency)


def _empty_view(cart: Cart, settings: Settings) -> CartView:
    zero = Money.zero(settings.currency)
    return CartView(
        id=cart.id, status=cart.status, lines=[], subtotal=zero, voucher_code=None, discount=zero
    )
