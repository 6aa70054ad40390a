"""Fixtures of the orders tests: a catalog with stock, carts, and checkout over HTTP."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from shopkeeper.accounts.models import User, UserRole
from shopkeeper.accounts.roles import ROLES
from shopkeeper.core.db import new_id, utcnow
from shopkeeper.core.runtime import Runtime
from shopkeeper.core.security import create_access_token, hash_password

ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "12 St James's Square",
    "city": "London",
    "postal_code": "SW1Y 4JH",
    "country": "GB",
}


# Hashed once: argon2 per test user would spend the suite's time on password hashing. Sign-in
# itself is tested in tests/users; here users are inserted and given the tokens login would give.
_PASSWORD_HASH = hash_password("orders-tests-password")


async def make_users(runtime: Runtime, count: int, *, staff: bool = False) -> list[dict[str, str]]:
    """`count` users inserted in one statement, each as `Authorization` headers."""
    rows = [
        {
            "id": new_id(),
            "email": f"{'staff' if staff else 'user'}-{secrets.token_hex(5)}@example.com",
            "password_hash": _PASSWORD_HASH,
            "full_name": None,
            "is_staff": staff,
            "is_active": True,
            "created_at": utcnow(),
        }
        for _ in range(count)
    ]
    async with runtime.db.session() as session:
        await session.execute(insert(User), rows)
        if staff:
            await session.execute(
                insert(UserRole), [{"user_id": row["id"], "role": "shop_staff"} for row in rows]
            )
        await session.commit()
    permissions = ROLES["shop_staff"] if staff else frozenset()
    return [
        {
            "Authorization": "Bearer "
            + create_access_token(
                settings=runtime.settings, user_id=row["id"], permissions=permissions
            )
        }
        for row in rows
    ]


async def make_user(runtime: Runtime, *, staff: bool = False) -> dict[str, str]:
    [headers] = await make_users(runtime, 1, staff=staff)
    return headers


@pytest.fixture
async def customer_headers(runtime: Runtime) -> dict[str, str]:
    return await make_user(runtime)


@pytest.fixture
async def staff_headers(runtime: Runtime) -> dict[str, str]:
    return await make_user(runtime, staff=True)


async def create_sku(
    client: httpx.AsyncClient,
    staff: dict[str, str],
    *,
    sku: str | None = None,
    price: int = 1_000,
    on_hand: int = 50,
    warehouse: str | None = None,
) -> str:
    """A product with one variant and `on_hand` units in a warehouse, made through the API."""
    sku = sku or f"SKU-{secrets.token_hex(4).upper()}"
    product = await client.post(
        "/api/v1/products",
        headers=staff,
        json={
            "name": f"Product {sku}",
            "variants": [{"sku": sku, "price": {"amount": price, "currency": "USD"}}],
        },
    )
    assert product.status_code == 201, product.text
    code = warehouse or f"WH{secrets.token_hex(3).upper()}"
    made = await client.post(
        "/api/v1/warehouses", headers=staff, json={"code": code, "name": f"Warehouse {code}"}
    )
    assert made.status_code in (201, 409), made.text
    stock = await client.put(
        f"/api/v1/stock/{sku}/{code}", headers=staff, json={"on_hand": on_hand}
    )
    assert stock.status_code == 200, stock.text
    return sku


async def create_cart(
    client: httpx.AsyncClient, headers: dict[str, str], items: list[tuple[str, int]]
) -> str:
    cart = await client.post("/api/v1/carts", headers=headers)
    assert cart.status_code in (200, 201), cart.text
    cart_id = str(cart.json()["id"])
    token = cart.headers.get("X-Cart-Token")
    item_headers = {**headers, "X-Cart-Token": token} if token else headers
    for sku, quantity in items:
        added = await client.post(
            f"/api/v1/carts/{cart_id}/items",
            headers=item_headers,
            json={"sku": sku, "quantity": quantity},
        )
        assert added.status_code == 200, added.text
    return cart_id


async def checkout(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    cart_id: str,
    *,
    key: str | None = None,
    **body: Any,
) -> httpx.Response:
    return await client.post(
        "/api/v1/orders",
        headers={**headers, "Idempotency-Key": key or str(uuid.uuid4())},
        json={"cart_id": cart_id, "shipping_address": ADDRESS, **body},
    )


async def stock_of(client: httpx.AsyncClient, staff: dict[str, str], sku: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/stock/{sku}", headers=staff)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


PlaceOrder = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def place_order(client: httpx.AsyncClient) -> PlaceOrder:
    """`await place_order(headers, [(sku, qty), ...])` -> the created order (201 asserted)."""

    async def place(headers: dict[str, str], items: list[tuple[str, int]]) -> dict[str, Any]:
        cart_id = await create_cart(client, headers, items)
        response = await checkout(client, headers, cart_id)
        assert response.status_code == 201, response.text
        order: dict[str, Any] = response.json()
        return order

    return place


def problem_slug(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    return str(response.json()["type"]).rsplit("/", 1)[-1]
