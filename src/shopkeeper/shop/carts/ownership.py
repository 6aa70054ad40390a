"""Whose cart is it: finding a caller's cart (404 for anyone else's, so cart ids reveal
nothing), and the small writes every change to a cart's lines shares."""

from __future__ import annotations

import hmac
import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from shopkeeper.core.db import is_postgres, utcnow
from shopkeeper.core.security import hash_token
from shopkeeper.shop.access import Caller
from shopkeeper.shop.carts.errors import CartClosed, CartNotFound
from shopkeeper.shop.carts.models import Cart, CartItem, CartStatus


async def owned_cart(
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
    if cart is None or not is_owner(cart, caller):
        raise CartNotFound()
    if open_only and cart.status != CartStatus.OPEN.value:
        raise CartClosed("This cart was already checked out; open a new one")
    return cart


def is_owner(cart: Cart, caller: Caller) -> bool:
    return owns(cart.user_id, cart.token_hash, caller)


def owns(
    user_id: uuid.UUID | None,
    token_hash: str | None,
    caller: Caller,
) -> bool:
    if caller.user_id is not None and user_id == caller.user_id:
        return True
    if caller.cart_token and token_hash:
        return hmac.compare_digest(hash_token(caller.cart_token), token_hash)
    return False


async def open_cart_of(
    session: AsyncSession, user_id: uuid.UUID, *, lock: bool = False
) -> Cart | None:
    query = select(Cart).where(Cart.user_id == user_id, Cart.status == CartStatus.OPEN.value)
    if lock and is_postgres(session):
        query = query.with_for_update()
    return (await session.execute(query)).scalar()


async def touch(session: AsyncSession, cart_id: uuid.UUID) -> None:
    await session.execute(
        update(Cart)
        .where(Cart.id == cart_id)
        .values(updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def insert_item(session: AsyncSession) -> Any:
    dialect = postgresql if is_postgres(session) else sqlite
    return dialect.insert(CartItem)
