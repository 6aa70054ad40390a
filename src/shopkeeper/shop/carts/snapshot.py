"""Checkout's read of a cart: close it and read its lines priced now, in the caller's
transaction (the order commits with it, or both roll back)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from shopkeeper.core.db import is_postgres, table_of, utcnow
from shopkeeper.core.money import Money
from shopkeeper.core.settings import Settings
from shopkeeper.shop.access import Caller
from shopkeeper.shop.carts.errors import CartClosed, CartEmpty, CartNotFound, ItemUnavailable
from shopkeeper.shop.carts.models import Cart, CartItem, CartStatus
from shopkeeper.shop.carts.ownership import owned_cart, owns
from shopkeeper.shop.catalog.service import PRICED_VARIANTS, line_name

# Built once over table columns (see inventory.service for why).
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
    """The caller's own columns, read with the lines (see `snapshot_query`)."""


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
            if not owns(user_id, token_hash, caller):
                raise CartNotFound()
            # A cart without lines still gives one row, of NULLs, from the outer join.
            lines = [row[2:] for row in rows if row[2] is not None]
            return _snapshot(cart_id, user_id, lines, list(query.read.selected_columns))
    closed = (
        await session.execute(_CLOSE_CART, {"cart_id": cart_id, "now": values["now"]})
    ).first()
    if closed is None:
        # Not open, or not there: tell the owner it is closed, anyone else that it isn't theirs.
        await owned_cart(session, cart_id, caller)
        raise CartClosed("This cart was already checked out")
    if not owns(closed.user_id, closed.token_hash, caller):
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
