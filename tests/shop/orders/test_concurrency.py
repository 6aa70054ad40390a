"""Checkout under real concurrency on PostgreSQL: never oversell, never deadlock, never
reserve part of a cart, and one order per Idempotency-Key however many retries race."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert, select, text, update

from shopkeeper.core.db import utcnow
from shopkeeper.core.runtime import Runtime
from shopkeeper.core.settings import Settings
from shopkeeper.shop.carts.models import Cart, CartItem
from shopkeeper.shop.orders.models import Order
from tests.shop.orders.conftest import (
    checkout,
    create_cart,
    create_sku,
    make_user,
    make_users,
    stock_of,
)


@pytest.fixture(autouse=True)
def _postgres_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("concurrency is proved on PostgreSQL; SQLite has a single writer")


async def count_orders(runtime: Runtime) -> int:
    async with runtime.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(Order)) or 0)


def slug(response: httpx.Response) -> str:
    if response.status_code < 400:
        return str(response.status_code)
    return str(response.json().get("type", "")).rsplit("/", 1)[-1]


async def test_200_clients_on_two_servers_buy_exactly_the_50_in_stock(
    runtime: Runtime, settings: Settings, server_factory: Any
) -> None:
    first = await server_factory(settings, workers=1)
    second = await server_factory(settings, workers=1)
    # No keep-alive: a pooled connection the server closes as idle would fail a request
    # (httpx does not retry those), which is the client's problem, not the shop's.
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)
    async with (
        httpx.AsyncClient(base_url=first, timeout=60, limits=limits) as one,
        httpx.AsyncClient(base_url=second, timeout=60, limits=limits) as two,
    ):
        staff = await make_user(runtime, staff=True)
        sku = await create_sku(one, staff, on_hand=50)
        buyers = await make_users(runtime, 200)
        servers = [one if index % 2 == 0 else two for index in range(200)]
        carts = await asyncio.gather(
            *(
                create_cart(server, buyer, [(sku, 1)])
                for server, buyer in zip(servers, buyers, strict=True)
            )
        )

        responses = await asyncio.gather(
            *(
                checkout(server, buyer, cart_id)
                for server, buyer, cart_id in zip(servers, buyers, carts, strict=True)
            )
        )

        outcomes = Counter(slug(response) for response in responses)
        assert outcomes == {"201": 50, "insufficient-stock": 150}, outcomes
        assert all(r.json()["sku"] == sku for r in responses if slug(r) == "insufficient-stock")
        served_by = Counter(
            server is one for server, r in zip(servers, responses, strict=True) if r.is_success
        )
        assert set(served_by) == {True, False}, "both processes sold"
        stock = await stock_of(two, staff, sku)
        assert (stock["on_hand"], stock["reserved"], stock["available"]) == (50, 50, 0)
        assert await count_orders(runtime) == 50
        numbers = {r.json()["number"] for r in responses if r.is_success}
        assert len(numbers) == 50


async def test_overlapping_multi_line_carts_never_deadlock_or_reserve_partly(
    client: httpx.AsyncClient, runtime: Runtime, settings: Settings, staff_headers: dict[str, str]
) -> None:
    skus = [await create_sku(client, staff_headers, on_hand=16) for _ in range(4)]
    shopper = random.Random(5)
    buyers = await make_users(runtime, 40)
    wanted: list[list[tuple[str, int]]] = []
    for _ in buyers:
        chosen = shopper.sample(skus, shopper.randint(2, 4))  # random order: locks must not care
        wanted.append([(sku, shopper.randint(1, 3)) for sku in chosen])
    carts = await asyncio.gather(
        *(create_cart(client, buyer, items) for buyer, items in zip(buyers, wanted, strict=True))
    )

    responses = await asyncio.gather(
        *(checkout(client, buyer, cart) for buyer, cart in zip(buyers, carts, strict=True))
    )

    outcomes = Counter(slug(response) for response in responses)
    assert set(outcomes) <= {"201", "insufficient-stock"}, outcomes
    assert outcomes["201"] > 0 and outcomes["insufficient-stock"] > 0, outcomes
    reserved: Counter[str] = Counter()
    for response, items in zip(responses, wanted, strict=True):
        if response.is_success:
            for sku, quantity in items:
                reserved[sku] += quantity
    for sku in skus:
        stock = await stock_of(client, staff_headers, sku)
        assert stock["reserved"] == reserved[sku], sku
        assert 0 <= stock["available"] == 16 - reserved[sku]
    assert await count_orders(runtime) == outcomes["201"]


async def test_twenty_concurrent_retries_of_one_key_create_one_order(
    client: httpx.AsyncClient, runtime: Runtime, settings: Settings, staff_headers: dict[str, str]
) -> None:
    sku = await create_sku(client, staff_headers, on_hand=10)
    [buyer] = await make_users(runtime, 1)
    cart_id = await create_cart(client, buyer, [(sku, 2)])

    responses = await asyncio.gather(
        *(checkout(client, buyer, cart_id, key="one-key") for _ in range(20))
    )

    outcomes = Counter(slug(response) for response in responses)
    assert set(outcomes) <= {"201", "idempotency-key-in-progress"}, outcomes
    created = [r for r in responses if r.is_success]
    assert {r.json()["id"] for r in created} == {created[0].json()["id"]}
    assert sum("idempotent-replayed" not in r.headers for r in created) == 1
    assert await count_orders(runtime) == 1
    assert (await stock_of(client, staff_headers, sku))["reserved"] == 2
    late = await checkout(client, buyer, cart_id, key="one-key")
    assert late.status_code == 201 and late.headers["idempotent-replayed"] == "true"
    original = next(r for r in created if "idempotent-replayed" not in r.headers)
    assert late.content == original.content


async def test_a_line_added_while_checkout_waits_for_the_cart_is_in_the_order(
    client: httpx.AsyncClient, runtime: Runtime, staff_headers: dict[str, str]
) -> None:
    first = await create_sku(client, staff_headers)
    second = await create_sku(client, staff_headers)
    [buyer] = await make_users(runtime, 1)
    cart_id = await create_cart(client, buyer, [(first, 1)])

    async with runtime.db.session() as adding:
        # What an add-to-cart request does (carts.service.add_item): lock the cart, add, touch.
        await adding.execute(select(Cart.id).where(Cart.id == cart_id).with_for_update())
        await adding.execute(insert(CartItem).values(cart_id=cart_id, sku=second, quantity=2))
        await adding.execute(update(Cart).where(Cart.id == cart_id).values(updated_at=utcnow()))
        placing = asyncio.create_task(checkout(client, buyer, cart_id))
        await until_a_session_waits_for_a_lock(runtime)
        await adding.commit()
    response = await placing

    assert response.status_code == 201, response.text
    lines = {line["sku"]: line["quantity"] for line in response.json()["lines"]}
    assert lines == {first: 1, second: 2}
    assert (await stock_of(client, staff_headers, second))["reserved"] == 2


async def until_a_session_waits_for_a_lock(runtime: Runtime) -> None:
    async with runtime.db.session() as watcher:
        for _ in range(500):
            waiting = await watcher.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
            )
            if waiting:
                return
            await watcher.rollback()  # a fresh snapshot of pg_stat_activity
            await asyncio.sleep(0.02)
    raise AssertionError("checkout never waited for the cart's lock")
