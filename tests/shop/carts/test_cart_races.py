"""Races on carts, proved on PostgreSQL with concurrent sessions."""

from __future__ import annotations

import asyncio

import pytest

from shopkeeper.accounts import service as users_service
from shopkeeper.core.runtime import Runtime
from shopkeeper.core.security import Principal
from shopkeeper.shop.carts import service
from tests.shop.inventory.conftest import StockFactory


@pytest.fixture(autouse=True)
def _postgres_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("concurrent writers: SQLite serializes them anyway")


async def _customer(runtime: Runtime) -> Principal:
    async with runtime.db.session() as session:
        user = await users_service.register_user(
            session, email="racer@example.com", password="correct-horse-1"
        )
    return Principal(user_id=user.id)


async def _open(runtime: Runtime, principal: Principal | None) -> service.NewCart:
    async with runtime.db.session() as session:
        return await service.open_cart(session, principal=principal, settings=runtime.settings)


async def _add(
    runtime: Runtime, cart: service.NewCart, principal: Principal | None, sku: str, quantity: int
) -> None:
    async with runtime.db.session() as session:
        await service.add_item(
            session,
            cart_id=cart.cart.id,
            principal=principal,
            cart_token=cart.token,
            sku=sku,
            quantity=quantity,
            settings=runtime.settings,
        )


async def test_concurrent_opens_give_a_user_one_cart(runtime: Runtime) -> None:
    principal = await _customer(runtime)
    carts = await asyncio.gather(*(_open(runtime, principal) for _ in range(10)))
    assert len({cart.cart.id for cart in carts}) == 1
    assert sum(cart.created for cart in carts) == 1


async def test_concurrent_sign_ins_merge_a_guest_cart_once(
    runtime: Runtime, stock: StockFactory
) -> None:
    await stock("RACE-1", {"W1": 50})
    principal = await _customer(runtime)
    mine = await _open(runtime, principal)
    await _add(runtime, mine, principal, "RACE-1", 1)
    guest = await _open(runtime, None)
    await _add(runtime, guest, None, "RACE-1", 3)
    assert guest.token is not None

    async def merge() -> bool:
        async with runtime.db.session() as session:
            return await service.merge_guest_cart(
                session, user_id=principal.user_id, cart_token=str(guest.token)
            )

    outcomes = await asyncio.gather(*(merge() for _ in range(8)))
    assert outcomes.count(True) == 1
    async with runtime.db.session() as session:
        cart = await service.get_cart(
            session,
            cart_id=mine.cart.id,
            principal=principal,
            cart_token=None,
            settings=runtime.settings,
        )
    assert [(line.sku, line.quantity) for line in cart.lines] == [("RACE-1", 4)]


async def test_concurrent_adds_to_one_line_all_count(runtime: Runtime, stock: StockFactory) -> None:
    await stock("RACE-2", {"W1": 50})
    guest = await _open(runtime, None)
    await asyncio.gather(*(_add(runtime, guest, None, "RACE-2", 2) for _ in range(10)))
    async with runtime.db.session() as session:
        cart = await service.get_cart(
            session,
            cart_id=guest.cart.id,
            principal=None,
            cart_token=guest.token,
            settings=runtime.settings,
        )
    assert [(line.sku, line.quantity) for line in cart.lines] == [("RACE-2", 20)]
