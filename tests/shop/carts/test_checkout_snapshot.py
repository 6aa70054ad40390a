"""checkout_snapshot: what the orders domain gets from a cart, which it closes."""

from __future__ import annotations

import pytest

from shopkeeper.accounts import service as users_service
from shopkeeper.core.money import Money
from shopkeeper.core.runtime import Runtime
from shopkeeper.core.security import Principal
from shopkeeper.shop.carts import service
from tests.shop.inventory.conftest import StockFactory


async def _user(runtime: Runtime) -> Principal:
    async with runtime.db.session() as session:
        user = await users_service.register_user(
            session, email="buyer@example.com", password="correct-horse-1"
        )
    return Principal(user_id=user.id)


async def test_snapshot_prices_lines_and_a_cart_checks_out_once(
    runtime: Runtime, stock: StockFactory
) -> None:
    await stock("MUG-1", {"W1": 10})
    principal = await _user(runtime)
    async with runtime.db.session() as session:
        new = await service.open_cart(session, principal=principal, settings=runtime.settings)
        await service.add_item(
            session,
            cart_id=new.cart.id,
            principal=principal,
            cart_token=None,
            sku="MUG-1",
            quantity=3,
            settings=runtime.settings,
        )
    async with runtime.db.session() as session:
        snapshot = await service.checkout_snapshot(
            session, cart_id=new.cart.id, principal=principal, cart_token=None
        )
        assert [(line.sku, line.quantity, line.unit_price) for line in snapshot.lines] == [
            ("MUG-1", 3, Money(amount=1000, currency="USD"))
        ]
        assert snapshot.subtotal == Money(amount=3000, currency="USD")
        await session.commit()
    async with runtime.db.session() as session:
        with pytest.raises(service.CartClosed):
            await service.checkout_snapshot(
                session, cart_id=new.cart.id, principal=principal, cart_token=None
            )
