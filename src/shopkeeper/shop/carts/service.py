"""Carts: open one, change its lines, read it priced from the catalog, hand it to checkout.

Who may touch a cart: the signed-in user it belongs to, or whoever holds its guest token.
Anyone else gets 404, so cart ids reveal nothing.
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, case, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from shopkeeper.core.db import affected_rows, is_postgres, table_of, utcnow
from shopkeeper.core.errors import Conflict, InvalidInput, NotFound
from shopkeeper.core.money import Money
from shopkeeper.core.security import Principal, hash_token, new_opaque_token
from shopkeeper.core.settings import Settings
from shopkeeper.shop.access import Caller
from shopkeeper.shop.carts.models import MAX_LINE_QUANTITY, Cart, CartItem, CartStatus
from shopkeeper.shop.catalog.service import (
    PRICED_VARIANTS,
    PricedVariant,
    line_name,
    price_variants,
)
from shopkeeper.shop.inventory.service import InsufficientStock, available_by_sku
from shopkeeper.shop.promotions import service as promotions_service
from shopkeeper.shop.promotions.models import VoucherKind
from shopkeeper.shop.promotions.service import PricedLine, VoucherNotApplicable
from shopkeeper.shop.shipping import service as shipping_service

MAX_LINES = 100

# Checkout's statements, built once over table columns (see inventory.service for why).
_carts, _items_table = table_of(Cart), table_of(CartItem)
_priced = PRICED_VARIANTS
_CLOSE_CART = (
    update(_carts)
    .where(_carts.c.id == bindparam("cart_id"), _carts.c.status == CartStatus.OPEN.value)
    .values(status=CartStatus.CHECKED_OUT.value, updated_at=bindparam("now"))
    .returning(_carts.c.user_id, _carts.c.token_hash)
)
_PRICED_ITEMS = (
    select(
        _items_table.c.sku,
        _items_table.c.quantity,
        _priced.c.product_id,
        _priced.c.product_name,
        _priced.c.variant_name,
        _priced.c.price,
        _priced.c.currency,
        _priced.c.archived_at,
    )
    .join(_priced, _priced.c.sku == _items_table.c.sku)
    .where(_items_table.c.cart_id == bindparam("cart_id"))
    .order_by(_items_table.c.created_at, _items_table.c.sku)
)
_PRICED_COLUMNS = len(_PRICED_ITEMS.selected_columns)


class CartNotFound(NotFound):
    slug, title = "cart-not-found", "Cart not found"


class CartItemNotFound(NotFound):
    slug, title = "cart-item-not-found", "Item not in cart"


class SkuNotFound(NotFound):
    slug, title = "sku-not-found", "Unknown SKU"


class CartClosed(Conflict):
    slug, title = "cart-closed", "Cart already checked out"


class CartEmpty(Conflict):
    slug, title = "cart-empty", "Cart is empty"


class CartFull(Conflict):
    slug, title = "cart-full", "Too many lines in the cart"


class ItemUnavailable(Conflict):
    slug, title = "item-unavailable", "Item no longer sold"


class QuantityLimit(InvalidInput):
    slug, title = "quantity-limit", "Quantity over the per-line limit"


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
class CartSnapshotLine:
    sku: str
    product_id: uuid.UUID
    name: str
    quantity: int
    unit_price: Money

    @property
    def total(self) -> Money:
        return self.unit_price * self.quantity


@dataclass(frozen=True, slots=True)
class CartSnapshot:
    """What checkout needs of a cart, priced now; the order copies it and never looks back."""

    cart_id: uuid.UUID
    user_id: uuid.UUID | None
    lines: list[CartSnapshotLine]
    subtotal: Money
    extra: Mapping[str, Any] = field(default_factory=dict)
    """The caller's own columns, read with the lines (see `priced_items_query`)."""


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
    existing = await _open_cart_of(session, principal.user_id)
    if existing is not None:
        return NewCart(await _view(session, existing, settings), created=False, token=None)
    cart = Cart(user_id=principal.user_id)
    session.add(cart)
    try:
        await session.commit()
    except IntegrityError:
        # A concurrent request made the user's cart first; the partial unique index decided.
        await session.rollback()
        existing = await _open_cart_of(session, principal.user_id)
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
    cart = await _owned_cart(session, cart_id, caller)
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
    cart = await _owned_cart(session, cart_id, caller, lock=True, open_only=True)
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
    insert = _insert(session).values(cart_id=cart.id, sku=sku, quantity=quantity)
    await session.execute(
        insert.on_conflict_do_update(
            index_elements=["cart_id", "sku"],
            set_={"quantity": CartItem.quantity + insert.excluded.quantity},
        )
    )
    await _touch(session, cart.id)
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
    cart = await _owned_cart(session, cart_id, caller, lock=True, open_only=True)
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
    await _touch(session, cart.id)
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
    cart = await _owned_cart(session, cart_id, caller, lock=True, open_only=True)
    result = await session.execute(
        delete(CartItem)
        .where(CartItem.cart_id == cart.id, CartItem.sku == sku)
        .execution_options(synchronize_session=False)
    )
    if affected_rows(result) == 0:
        raise CartItemNotFound(f"{sku} is not in this cart", sku=sku)
    await _touch(session, cart.id)
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
    cart = await _owned_cart(session, cart_id, caller, lock=True, open_only=True)
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
    cart = await _owned_cart(session, cart_id, caller)
    return await _view(session, cart, settings)


async def remove_voucher(
    session: AsyncSession, *, cart_id: uuid.UUID, caller: Caller, settings: Settings
) -> CartView:
    cart = await _owned_cart(session, cart_id, caller, lock=True, open_only=True)
    await session.execute(
        update(Cart)
        .where(Cart.id == cart.id)
        .values(voucher_code=None, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    await session.commit()
    cart = await _owned_cart(session, cart_id, caller)
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
    cart = await _owned_cart(session, cart_id, caller)
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


async def merge_guest_cart(session: AsyncSession, *, user_id: uuid.UUID, cart_token: str) -> bool:
    """Fold the guest cart behind `cart_token` into the user's open cart at sign-in.

    Quantities of the same SKU add up, capped at the per-line limit. Without an open cart the
    user simply adopts the guest cart. False when the token names no open guest cart (unknown,
    or merged already: a repeated login changes nothing).
    """
    guest = await session.scalar(
        select(Cart).where(
            Cart.token_hash == hash_token(cart_token),
            Cart.user_id.is_(None),
            Cart.status == CartStatus.OPEN.value,
        )
    )
    if guest is None:
        return False
    target = await _open_cart_of(session, user_id, lock=True)
    if target is None:
        try:
            adopted = await session.execute(
                update(Cart)
                .where(
                    Cart.id == guest.id,
                    Cart.user_id.is_(None),
                    Cart.status == CartStatus.OPEN.value,
                )
                .values(user_id=user_id, token_hash=None)
                .execution_options(synchronize_session=False)
            )
            await session.commit()
        except IntegrityError:
            # The user opened a cart meanwhile (another tab): merge into that one instead.
            await session.rollback()
            return await merge_guest_cart(session, user_id=user_id, cart_token=cart_token)
        return affected_rows(adopted) == 1
    # Claiming the guest cart first makes a concurrent second merge match nothing.
    claimed = await session.execute(
        update(Cart)
        .where(Cart.id == guest.id, Cart.status == CartStatus.OPEN.value)
        .values(status=CartStatus.MERGED.value)
        .execution_options(synchronize_session=False)
    )
    if affected_rows(claimed) != 1:
        await session.rollback()
        return False
    items = await session.execute(
        select(CartItem.sku, CartItem.quantity).where(CartItem.cart_id == guest.id)
    )
    for sku, quantity in items:
        insert = _insert(session).values(cart_id=target.id, sku=sku, quantity=quantity)
        summed = CartItem.quantity + insert.excluded.quantity
        await session.execute(
            insert.on_conflict_do_update(
                index_elements=["cart_id", "sku"],
                set_={
                    "quantity": case((summed > MAX_LINE_QUANTITY, MAX_LINE_QUANTITY), else_=summed)
                },
            )
        )
    await _touch(session, target.id)
    await session.commit()
    return True


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


# --- checkout (caller's transaction) ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SnapshotQuery:
    """Checkout's read of a cart (see `snapshot_query`)."""

    read: Select[Any]
    """The priced lines, read after `_CLOSE_CART` (any database)."""
    close_and_read: Select[Any]
    """PostgreSQL: the close and the read in one statement, conditional on the cart being
    unchanged since the statement's snapshot (`checkout_snapshot` explains)."""


def snapshot_query(**extra: ColumnElement[Any]) -> SnapshotQuery:
    """Checkout's read of a cart's lines, priced now, with columns a caller adds for its own
    needs (checkout: the buyer's e-mail, the order number). Build it once, at import: an
    uncorrelated scalar subquery added here is evaluated once per statement, so the extra
    columns cost no round trip of their own. Their bind parameters go in `checkout_snapshot`'s
    `params`."""
    extra_columns = [column.label(name) for name, column in extra.items()]
    seen = _carts.alias("seen")
    closed = (
        update(_carts)
        .where(
            _carts.c.id == bindparam("cart_id"),
            _carts.c.status == CartStatus.OPEN.value,
            # Every change to a cart's lines touches `updated_at` under the cart's row lock. If
            # one committed while this UPDATE waited for that lock, the re-check against the
            # new row version fails here, since the subquery keeps the statement's snapshot.
            _carts.c.updated_at
            == select(seen.c.updated_at).where(seen.c.id == bindparam("cart_id")).scalar_subquery(),
        )
        .values(status=CartStatus.CHECKED_OUT.value, updated_at=bindparam("now"))
        .returning(_carts.c.id, _carts.c.user_id, _carts.c.token_hash)
        .cte("closed")
    )
    priced = _items_table.join(_priced, _priced.c.sku == _items_table.c.sku)
    close_and_read = (
        select(
            closed.c.user_id, closed.c.token_hash, *_PRICED_ITEMS.selected_columns, *extra_columns
        )
        .select_from(closed.outerjoin(priced, _items_table.c.cart_id == closed.c.id))
        .order_by(_items_table.c.created_at, _items_table.c.sku)
    )
    return SnapshotQuery(
        read=_PRICED_ITEMS.add_columns(*extra_columns), close_and_read=close_and_read
    )


_PLAIN_SNAPSHOT = snapshot_query()


def voucher_code_of(cart_id: ColumnElement[Any]) -> ColumnElement[Any]:
    """The cart's voucher code as a scalar subquery, an extra column for `snapshot_query`."""
    return select(_carts.c.voucher_code).where(_carts.c.id == cart_id).scalar_subquery()


async def checkout_snapshot(
    session: AsyncSession,
    *,
    cart_id: uuid.UUID,
    caller: Caller,
    settings: Settings | None = None,
    query: SnapshotQuery = _PLAIN_SNAPSHOT,
    params: Mapping[str, Any] | None = None,
) -> CartSnapshot:
    """Close the cart for checkout and return it priced now, in the caller's transaction (which
    commits the order with it, or rolls both back). `query` is `snapshot_query(...)` when the
    caller wants columns of its own; their values are in the snapshot's `extra`.

    The closing UPDATE is also the lock: a second checkout of the same cart waits for the first
    transaction and then finds the cart closed, and lines cannot change under the order being
    written. On PostgreSQL the close and the read are one statement, whose read sees the
    statement's snapshot: a line committed by a request that held the cart's lock first would
    be missing, so the close is made conditional on the cart being unchanged, and when it is
    not (or the cart is closed, absent or someone else's) the close and the read run as two
    statements, the read after the lock. 404 if the cart is not the caller's; 409
    `cart-closed`, `cart-empty`, or `item-unavailable` (extension `sku`) for a line whose
    product is archived.
    """
    values = {**(params or {}), "cart_id": cart_id, "now": utcnow()}
    if is_postgres(session):
        rows = (await session.execute(query.close_and_read, values)).all()
        if rows:
            user_id, token_hash = rows[0][:2]
            if not _owns(user_id, token_hash, caller):
                raise CartNotFound()
            # A cart without lines still gives one row, of NULLs, from the outer join.
            lines = [row[2:] for row in rows if row[2] is not None]
            return _snapshot(cart_id, user_id, lines, list(query.read.selected_columns))
    closed = (
        await session.execute(_CLOSE_CART, {"cart_id": cart_id, "now": values["now"]})
    ).first()
    if closed is None:
        # Not open, or not there: tell the owner it is closed, anyone else that it isn't theirs.
        await _owned_cart(session, cart_id, caller)
        raise CartClosed("This cart was already checked out")
    if not _owns(closed.user_id, closed.token_hash, caller):
        raise CartNotFound()
    result = await session.execute(query.read, values)
    return _snapshot(cart_id, closed.user_id, result.all(), list(query.read.selected_columns))


def _snapshot(
    cart_id: uuid.UUID,
    user_id: uuid.UUID | None,
    rows: Sequence[Sequence[Any]],
    columns: Sequence[ColumnElement[Any]],
) -> CartSnapshot:
    """The snapshot of priced rows (`_PRICED_ITEMS` columns, then the caller's extras)."""
    lines: list[CartSnapshotLine] = []
    for sku, quantity, product_id, product_name, variant_name, price, currency, archived_at in (
        row[:_PRICED_COLUMNS] for row in rows
    ):
        if archived_at is not None:
            raise ItemUnavailable(f"{sku} is no longer sold; remove it from the cart", sku=sku)
        lines.append(
            CartSnapshotLine(
                sku=sku,
                product_id=product_id,
                name=line_name(product_name, variant_name),
                quantity=quantity,
                unit_price=Money(amount=price, currency=currency),
            )
        )
    if not lines:
        raise CartEmpty("The cart has no items")
    names = [str(column.key) for column in columns[_PRICED_COLUMNS:]]
    extra = dict(zip(names, rows[0][_PRICED_COLUMNS:], strict=True))
    currency = lines[0].unit_price.currency
    subtotal = Money.zero(currency)
    for line in lines:
        subtotal = subtotal + line.total
    return CartSnapshot(
        cart_id=cart_id, user_id=user_id, lines=lines, subtotal=subtotal, extra=extra
    )


# --- helpers ------------------------------------------------------------------------------------


async def _owned_cart(
    session: AsyncSession,
    cart_id: uuid.UUID,
    caller: Caller,
    *,
    lock: bool = False,
    open_only: bool = False,
) -> Cart:
    query = select(Cart).where(Cart.id == cart_id)
    if lock and is_postgres(session):
        query = query.with_for_update()
    cart = (await session.execute(query.execution_options(populate_existing=True))).scalar()
    if cart is None or not _is_owner(cart, caller):
        raise CartNotFound()
    if open_only and cart.status != CartStatus.OPEN.value:
        raise CartClosed("This cart was already checked out; open a new one")
    return cart


def _is_owner(cart: Cart, caller: Caller) -> bool:
    return _owns(cart.user_id, cart.token_hash, caller)


def _owns(
    user_id: uuid.UUID | None,
    token_hash: str | None,
    caller: Caller,
) -> bool:
    if caller.user_id is not None and user_id == caller.user_id:
        return True
    if caller.cart_token and token_hash:
        return hmac.compare_digest(hash_token(caller.cart_token), token_hash)
    return False


async def _open_cart_of(
    session: AsyncSession, user_id: uuid.UUID, *, lock: bool = False
) -> Cart | None:
    query = select(Cart).where(Cart.user_id == user_id, Cart.status == CartStatus.OPEN.value)
    if lock and is_postgres(session):
        query = query.with_for_update()
    return (await session.execute(query)).scalar()


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


async def _touch(session: AsyncSession, cart_id: uuid.UUID) -> None:
    await session.execute(
        update(Cart)
        .where(Cart.id == cart_id)
        .values(updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def _insert(session: AsyncSession) -> Any:
    dialect = postgresql if is_postgres(session) else sqlite
    return dialect.insert(CartItem)


async def merge_cart_at_sign_in(
    session: AsyncSession, user_id: uuid.UUID, headers: Mapping[str, str]
) -> None:
    """The sign-in hook (see accounts.hooks): a guest cart sent as `X-Cart-Token` joins the
    user's cart."""
    cart_token = headers.get("x-cart-token")
    if cart_token:
        await merge_guest_cart(session, user_id=user_id, cart_token=cart_token)
