"""Guest carts are bounded: a client address may open only so many, and abandoned or closed
carts are purged by a periodic job, while a signed-in user's open cart stays."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from shopkeeper.core.db import utcnow
from shopkeeper.core.runtime import Runtime
from shopkeeper.core.settings import Settings
from shopkeeper.shop.carts import jobs
from shopkeeper.shop.carts.models import Cart, CartItem
from tests.shop.orders.conftest import create_cart, create_sku, make_user, problem_slug

API = "/api/v1"


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(guest_carts_per_address="3/minute", cart_retention_days=30)


async def count_carts(runtime: Runtime) -> int:
    async with runtime.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(Cart)) or 0)


async def test_an_address_may_open_only_so_many_guest_carts(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    for _ in range(3):
        assert (await client.post(f"{API}/carts")).status_code == 201

    refused = await client.post(f"{API}/carts")

    assert refused.status_code == 429
    assert problem_slug(refused) == "rate-limited"
    assert int(refused.headers["retry-after"]) >= 1
    assert "x-cart-token" not in refused.headers
    assert await count_carts(runtime) == 3
    # Signed-in users are not guests: their one open cart is not limited this way.
    user = await make_user(runtime)
    assert (await client.post(f"{API}/carts", headers=user)).status_code == 201


async def age(runtime: Runtime, cart_id: str, days: int, **values: Any) -> None:
    async with runtime.db.session() as session:
        await session.execute(
            update(Cart)
            .where(Cart.id == uuid.UUID(cart_id))
            .values(updated_at=utcnow() - timedelta(days=days), **values)
        )
        await session.commit()


async def test_the_purge_deletes_abandoned_and_closed_carts_and_keeps_open_user_carts(
    client: httpx.AsyncClient,
    runtime: Runtime,
    staff_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sku = await create_sku(client, staff_headers)
    guest = {"X-Cart-Token": ""}
    created = await client.post(f"{API}/carts")
    abandoned_guest = created.json()["id"]
    guest["X-Cart-Token"] = created.headers["X-Cart-Token"]
    added = await client.post(
        f"{API}/carts/{abandoned_guest}/items", headers=guest, json={"sku": sku, "quantity": 1}
    )
    assert added.status_code == 200, added.text
    await age(runtime, abandoned_guest, days=31)
    recent_guest = (await client.post(f"{API}/carts")).json()["id"]
    await age(runtime, recent_guest, days=29)
    faithful = await make_user(runtime)
    old_open_user_cart = await create_cart(client, faithful, [(sku, 2)])
    await age(runtime, old_open_user_cart, days=400)
    buyer = await make_user(runtime)
    closed_user_cart = await create_cart(client, buyer, [(sku, 1)])
    await age(runtime, closed_user_cart, days=31, status="checked_out")
    # Batches smaller than the work: the job keeps going until a batch comes back short.
    monkeypatch.setattr(jobs, "PURGE_BATCH", 1)

    await jobs.purge_carts(runtime)
    await jobs.purge_carts(runtime)  # a second run finds nothing more

    async with runtime.db.session() as session:
        left = set((await session.scalars(select(Cart.id))).all())
        lines = (await session.execute(select(CartItem.cart_id, CartItem.quantity))).all()
    assert left == {uuid.UUID(recent_guest), uuid.UUID(old_open_user_cart)}
    assert [(str(cart_id), quantity) for cart_id, quantity in lines] == [(old_open_user_cart, 2)]
    kept = await client.get(f"{API}/carts/{old_open_user_cart}", headers=faithful)
    assert kept.status_code == 200 and kept.json()["items"][0]["quantity"] == 2
    gone = await client.get(f"{API}/carts/{abandoned_guest}", headers=guest)
    assert gone.status_code == 404
