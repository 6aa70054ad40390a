"""A guest cart joins the user's cart at sign-in."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from sqlalchemy import case, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shopkeeper.core.db import affected_rows
from shopkeeper.core.security import hash_token
from shopkeeper.shop.carts.models import MAX_LINE_QUANTITY, Cart, CartItem, CartStatus
from shopkeeper.shop.carts.ownership import insert_item, open_cart_of, touch


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
    target = await open_cart_of(session, user_id, lock=True)
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
        insert = insert_item(session).values(cart_id=target.id, sku=sku, quantity=quantity)
        summed = CartItem.quantity + insert.excluded.quantity
        await session.execute(
            insert.on_conflict_do_update(
                index_elements=["cart_id", "sku"],
                set_={
                    "quantity": case((summed > MAX_LINE_QUANTITY, MAX_LINE_QUANTITY), else_=summed)
                },
            )
        )
    await touch(session, target.id)
    await session.commit()
    return True


async def merge_cart_at_sign_in(
    session: AsyncSession, user_id: uuid.UUID, headers: Mapping[str, str]
) -> None:
    """The sign-in hook (see accounts.hooks): a guest cart sent as `X-Cart-Token` joins the
    user's cart."""
    cart_token = headers.get("x-cart-token")
    if cart_token:
        await merge_guest_cart(session, user_id=user_id, cart_token=cart_token)
